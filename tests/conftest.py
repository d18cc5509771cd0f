"""Shared fixtures: a throwaway copy of the project, the real `signoff` command, and the README's
example run made once per session for the many checks that read it or build on it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from runner import cli, mlflow_store, startup

ROOT = Path(__file__).resolve().parents[1]

startup.skip_unused_imports()  # as in every process of Signoff's: seconds off each import of nbformat


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The notebooks under nbval start kernels: out of the inner loop (``-m "not slow"``).  Tests of the
    shared example run go to one worker, which makes that run once."""
    for item in items:
        if item.nodeid.startswith("notebooks/"):
            item.add_marker(pytest.mark.slow)
        elif "example" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("example"))
    items.sort(key=_cost_order)


def _cost_order(item: pytest.Item) -> int:
    """The longest work first (the shared example's tests, the notebooks, the other end-to-end runs), the unit
    tests last: with xdist, the workers then end together instead of one waiting for a late long run."""
    if "example" in getattr(item, "fixturenames", ()):
        return 0
    if item.nodeid.startswith("notebooks/"):
        return 1
    return 2 if item.get_closest_marker("slow") else 3


def pytest_configure(config: pytest.Config) -> None:
    # a plugin, not hooks of this conftest: those would see only the items under tests/
    config.pluginmanager.register(NbvalKernels(config), "signoff-nbval-kernels")


class NbvalKernels:
    """nbval's kernels go without :data:`runner.startup.SKIPPED_IMPORTS`, as the kernels Signoff starts do:
    an IPython startup file, given to nbval's kernels alone (Signoff's own are tested as they are).  About
    6 s off each notebook's ``import scrapbook``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.users = os.environ.get("IPYTHONDIR")

    @pytest.hookimpl(tryfirst=True)  # before pytest sets up the notebook, which starts nbval's kernel
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if item.nodeid.startswith("notebooks/"):
            os.environ["IPYTHONDIR"] = str(self.folder())

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        if item.nodeid.startswith("notebooks/"):
            if self.users is None:
                os.environ.pop("IPYTHONDIR", None)
            else:
                os.environ["IPYTHONDIR"] = self.users

    def folder(self) -> Path:
        folder = self.config._tmp_path_factory.getbasetemp() / "nbval-ipython"
        startup_file = folder / "profile_default" / "startup" / "00-skip-unused-imports.py"
        if not startup_file.exists():
            startup_file.parent.mkdir(parents=True, exist_ok=True)
            startup_file.write_text(f"import sys\nfor name in {startup.SKIPPED_IMPORTS!r}:\n"
                                    "    sys.modules.setdefault(name, None)\n", encoding="utf-8")
        return folder


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's ``loadgroup``, and every notebook on one worker in file order: nbval runs a notebook's
    cells in one kernel, and a stage run on its own reads what the stage before it left in the
    scratch folder."""
    from xdist.scheduler import LoadGroupScheduling

    class NotebooksInOrder(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if nodeid.startswith("notebooks/") else super()._split_scope(nodeid)

    return NotebooksInOrder(config, log)


def copy_project(target: Path) -> Path:
    """notebooks/, templates/ and params/ copied, so a test may edit a stage without touching the repo."""
    for folder in ("notebooks", "templates", "params"):
        shutil.copytree(ROOT / folder, target / folder)
    return target


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


SECRET = "tok-9f8e7d6c5b4a"  # a value only the tests know
URI_PASSWORD = "pw-0a1b2c3d4e"
HOSTILE = ('<script>document.title="pwned"</script>'
           '<img src="x" onerror="document.title=\'pwned\'">'
           '<a id="bad" href="javascript:document.title=\'pwned\'">click me</a>')


def leaky_stage(project: Path) -> None:
    """A stage that does what careless notebooks do: prints a token, a URI with a password, raw HTML, and a
    table far wider than a page."""
    write_notebook(
        project / "notebooks" / "08_leaky.ipynb",
        "import os\nimport pandas as pd\nfrom IPython.display import HTML, display",
        'print("token in use:", os.environ["SIGNOFF_TEST_API_TOKEN"])\n'
        f'print("store: https://ann:{URI_PASSWORD}@mlflow.example/")\nprint("note:", note)',
        f"display(HTML({HOSTILE!r}))",
        'pd.DataFrame([[f"column {i} value" for i in range(60)]], columns=[f"feature_{i}" for i in range(60)])',
        parameters='note: str = ""',
        needs=["eda"],
    )


@dataclass(frozen=True)
class Example:
    project: Path
    run: Path  # its run folder
    result: subprocess.CompletedProcess
    env: dict[str, str]
    snapshot: Path


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Example:
    """The README's example with automatic promotion (`signoff run params/credit.yaml -p
    registry.promotion=auto`: 10,000 rows, every stage, promoted to champion in a new embedded MLflow
    store), plus a careless stage that prints a secret from the
    environment and a secret stage parameter: made once, then kept as a snapshot."""
    base = tmp_path_factory.mktemp("example")
    project = copy_project(base / "project")
    leaky_stage(project)
    env = {"SIGNOFF_TEST_API_TOKEN": SECRET}
    result = signoff("run", "params/credit.yaml", "-p", f"stages.leaky.note={SECRET}", "-p", "registry.promotion=auto",
                     cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = run_folders(project)
    shutil.copytree(project, base / "snapshot", symlinks=True)
    return Example(project, run, result, env, base / "snapshot")


@pytest.fixture
def example(example_run: Example) -> Example:
    """The example project as its run left it, whatever an earlier test did to it: put back at the same
    absolute path, since MLflow and the archive record absolute paths."""
    remove_tree(example_run.project)
    shutil.copytree(example_run.snapshot, example_run.project, symlinks=True)
    return example_run


def remove_tree(path: Path) -> None:
    """Delete a project with archived (read-only) run folders in it."""
    for folder, _, _ in os.walk(path):
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR | stat.S_IXUSR)
    shutil.rmtree(path)


MLFLOW_GLOBALS = (("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
                  ("mlflow.tracking._model_registry.utils", "_registry_uri"))


@pytest.fixture(autouse=True)
def mlflow_uris_restored():
    """``registry.connect`` points MLflow's process-wide URIs at a test's store, and MLflow exports them as
    MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI for subprocesses: all are put back after every test, so that
    no later test, nor a `signoff` it starts, talks to that store."""
    variables = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    before = {key: getattr(sys.modules[key[0]], key[1]) for key in MLFLOW_GLOBALS if key[0] in sys.modules}
    yield
    mlflow_store.forget_engines()  # a store put back from a copy (the example's) is read afresh by the next test
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for module, name in MLFLOW_GLOBALS:
        if module in sys.modules:
            setattr(sys.modules[module], name, before.get((module, name)))


def signoff(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user's shell would: a separate process, real exit code, no terminal."""
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=_environment(cwd, env),
                          capture_output=True, text=True, timeout=900)


def decide(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command that runs no notebook (verify, list, the registry's decisions, a run or monitor refused
    before any notebook) through the CLI's own entry point, in this process, with the environment
    :func:`signoff` gives: the same code and exit code as from a shell, without paying the imports (MLflow's
    ~5 s) again for each one.  Runs, and decisions that must race, go through :func:`signoff`."""
    out, err = io.StringIO(), io.StringIO()
    previous, scratch = os.getcwd(), os.environ.get("SIGNOFF_SCRATCH")
    os.chdir(cwd)
    os.environ["SIGNOFF_SCRATCH"] = _environment(cwd, None)["SIGNOFF_SCRATCH"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        os.chdir(previous)
        if scratch is None:
            os.environ.pop("SIGNOFF_SCRATCH", None)
        else:
            os.environ["SIGNOFF_SCRATCH"] = scratch
    return subprocess.CompletedProcess(["signoff", *args], code, out.getvalue(), err.getvalue())


def start_signoff(*args: str, cwd: Path) -> subprocess.Popen:
    """The CLI in the background, in its own process group (so a test can kill it with its kernels)."""
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=cwd, env=_environment(cwd, None),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _environment(cwd: Path, extra: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "SIGNOFF_SCRATCH": str(cwd / "scratch"), **(extra or {})}


# Each stage's costliest knobs turned down, for runs whose checks do not read what they buy (finer
# intervals, more plots, more SHAP rows): the same code paths, a fraction of the time.
QUICK = {
    "eda": {"plot_columns": 3},
    "validate": {"n_boot": 50},
    "explain": {"shap_rows": 200, "permutation_repeats": 2, "wrong_examples": 1},
    "fairness": {"n_boot": 20},
    "drift": {"sample_rows": 1500},
}


def quick(stages: dict[str, dict]) -> dict[str, dict]:
    """``stages`` (a params file's mapping) with :data:`QUICK`'s knobs for every stage it names; its own win."""
    return {name: {**QUICK.get(name, {}), **(values or {})} for name, values in stages.items()}


def keep_stages(project: Path, *names: str, rows: int | None = None) -> None:
    """Drop every other stage notebook, its params and the gates on its evidence (and, with ``rows``, use
    that many synthetic rows): a faster run, with :data:`QUICK` knobs."""
    for path in (project / "notebooks").glob("*.ipynb"):
        if path.stem.split("_", 1)[1] not in names:
            path.unlink()
    example = project / "params" / "credit.yaml"
    params = yaml.safe_load(example.read_text(encoding="utf-8"))
    params["stages"] = quick({name: params["stages"].get(name, {}) for name in names})
    for key in ("gates", "monitor_gates"):
        params[key] = [g for g in params[key] if g["metric"].split(".")[0] in names]
    if rows is not None:
        params["data"]["synthetic"]["n_rows"] = rows
    example.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def run_folders(project: Path, model: str = "credit-default") -> list[Path]:
    folder = project / "outputs" / model
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_notebook(path: Path, *sources: str, parameters: str | None = None, needs: list[str] | None = None,
                   evidence: list[str] | None = None) -> None:
    """A small stage notebook: an optional parameters cell, then one code cell per source."""
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    declared = {"needs": needs, "evidence": evidence}
    if any(value is not None for value in declared.values()):
        nb.metadata["signoff"] = {key: value for key, value in declared.items() if value is not None}
    nbformat.write(nb, path)


def make_key(folder: Path, principal: str) -> Path:
    """A new ed25519 key pair without a passphrase, made by ssh-keygen: the private key's path."""
    key = folder / principal.split("@")[0]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)], check=True)
    return key


def allowed_line(principal: str, key: Path) -> str:
    """A line of an allowed-signers file: the principal, then the key type and key of its .pub file."""
    return f"{principal} {' '.join(Path(f'{key}.pub').read_text().split()[:2])}\n"


class ActiveContent(HTMLParser):
    """Every element of a page that could run script: <script>, on* handlers, javascript: links."""

    def __init__(self, page):
        super().__init__()
        self.found = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}={value}")
