"""Shared fixtures: a throwaway copy of the project, and the real `signoff` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from runner import startup

ROOT = Path(__file__).resolve().parents[1]

startup.skip_unused_imports()  # as in every process of Signoff's: seconds off each import of nbformat


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """notebooks/, templates/ and params/ copied, so a test may edit a stage without touching the repo."""
    for folder in ("notebooks", "templates", "params"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


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


def start_signoff(*args: str, cwd: Path) -> subprocess.Popen:
    """The CLI in the background, in its own process group (so a test can kill it with its kernels)."""
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=cwd, env=_environment(cwd, None),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _environment(cwd: Path, extra: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "SIGNOFF_SCRATCH": str(cwd / "scratch"), **(extra or {})}


def keep_stages(project: Path, *names: str, rows: int | None = None) -> None:
    """Drop every other stage notebook, its params and the gates on its evidence (and, with ``rows``, use
    that many synthetic rows): a faster run."""
    for path in (project / "notebooks").glob("*.ipynb"):
        if path.stem.split("_", 1)[1] not in names:
            path.unlink()
    example = project / "params" / "credit.yaml"
    params = yaml.safe_load(example.read_text(encoding="utf-8"))
    params["stages"] = {k: v for k, v in params["stages"].items() if k in names}
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


def edit_cell(path: Path, old: str, new: str) -> None:
    """Replace text in the one code cell of a committed notebook that contains it."""
    nb = nbformat.read(path, as_version=4)
    matches = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
    assert len(matches) == 1, f"{old!r} found in {len(matches)} cells of {path.name}"
    matches[0].source = matches[0].source.replace(old, new)
    nbformat.write(nb, path)


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
