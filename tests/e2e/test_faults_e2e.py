"""Real data and real faults, through the real CLI: bad data refused up front, awkward data run to a
verdict, signals, two runs creating one store, output roots that are a file, read-only or full."""

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import decide, keep_stages, read_json, run_folders, signoff, start_signoff, write_notebook
from filelock import FileLock

from runner import mlflow_store, records
from runner.audit import archive, journal
from runner.release import mlflow_registry


def params_for(project, name, data_line, gates="[]", extra=""):
    path = project / "params" / f"{name}.yaml"
    path.write_text(f"extends: credit.yaml\nmodel: {name}\ndata: {data_line}\ngates: {gates}\n{extra}",
                    encoding="utf-8")
    return f"params/{name}.yaml"


def labelled(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "sex": rng.choice(["F", "M"], n),
                         "y": (x + rng.normal(size=n) > 0).astype(int)})


@pytest.mark.slow  # six `signoff` processes: in CI, not in the inner loop
def test_bad_data_and_bad_places_are_refused_before_any_notebook_runs(project, tmp_path):
    labelled().head(0).to_csv(tmp_path / "empty.csv", index=False)
    labelled().assign(y=0).to_csv(tmp_path / "one_class.csv", index=False)
    labelled().to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "not-a-folder").write_text("a file")
    data = "{{path: {path}, target: y, sensitive_features: [sex]{more}}}"
    cases = [
        (data.format(path=tmp_path / "empty.csv", more=""), [], "empty.csv: no rows (only a header: x, z, sex, y)"),
        (data.format(path=tmp_path / "one_class.csv", more=""), [],
         "one_class.csv: target column 'y' holds a single class (0) in all 400 rows"),
        (data.format(path=tmp_path / "folder.csv", more=""), [], "folder.csv: is a directory"),
        (data.format(path=tmp_path / "train.csv", more=f", current_path: {tmp_path / 'empty.csv'}"), [],
         "empty.csv: no rows (only a header: x, z, sex, y)"),
        (data.format(path=tmp_path / "train.csv", more=""), ["--output-root", str(tmp_path / "not-a-folder")],
         "not-a-folder: the output root is a file; expected a folder (--output-root)"),
    ]
    for number, (data_line, options, message) in enumerate(cases):
        name = f"bad{number}"
        result = decide("run", params_for(project, name, data_line), *options, cwd=project)
        assert result.returncode == 2 and message in result.stderr, (message, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert run_folders(project, name) == []  # refused before the lock: no folder, nothing ran
    gate = "[{id: band, metric: validate.roc_auc, min: 0.9, max: 0.6}]"
    result = decide("run", params_for(project, "badgate", "{}", gate), cwd=project)
    assert result.returncode == 2 and "gates[0] (band): min 0.9 is greater than max 0.6" in result.stderr


@pytest.mark.slow
def test_wide_numeric_data_with_awkward_column_names_runs_to_a_verdict_and_reaches_mlflow(project, tmp_path):
    keep_stages(project, "eda", "train", "validate", "fairness", "drift", "infra")
    rng = np.random.default_rng(3)
    n = 1500
    awkward = ["annual income €", "ratio (%)", "<b>debt</b>", "class", "lambda", "import", "Größe"]
    numbers = pd.DataFrame(rng.normal(size=(n, 200)), columns=[*awkward, *(f"f{i}" for i in range(193))])
    frame = numbers.assign(
        **{
            "customer id": [f"C{i:06d}" for i in range(n)],
            "region": 1,
            "outcome": (numbers["annual income €"] + numbers["f0"] + rng.normal(size=n) > 0).astype(int),
        }
    )
    frame.to_parquet(tmp_path / "wide.parquet")
    name = params_for(project, "wide", f"{{path: {tmp_path / 'wide.parquet'}, target: outcome, "
                                       "sensitive_features: [region]}",
                      "[{id: auc, metric: validate.roc_auc, min: 0.6, why: better than chance}]",
                      "registry: {promotion: auto}\nstages: {train: {model_type: random_forest, max_iter: 50}}\n")
    result = signoff("run", name, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = run_folders(project, "wide")
    verdict, evidence = read_json(run / "verdict.json"), read_json(run / "evidence.json")
    assert evidence["train.n_features"] == 200 and "customer id" not in evidence["train.features"]
    assert any("'customer id' dropped" in w and "identifier" in w for w in verdict["warnings"])
    assert evidence["fairness.region.not_applicable"].startswith("a single group ('1')")
    assert evidence["drift.not_applicable"].startswith("no current data")  # said, not crashed
    assert "eda.missing_rate.ratio (%)" in evidence  # the archive keeps the original names
    renamed = read_json(run / mlflow_registry.NAMES_FILE)
    assert renamed[mlflow_registry.mlflow_name("eda.missing_rate.<b>debt</b>")] == "eda.missing_rate.<b>debt</b>"
    client = mlflow_store.connect(mlflow_store.embedded_uri(project / "outputs"))
    metrics = client.get_run(verdict["mlflow_run_id"]).data.metrics
    for evidence_name in ("eda.missing_rate.annual income €", "eda.missing_rate.class", "validate.roc_auc"):
        assert metrics[mlflow_registry.mlflow_name(evidence_name)] == pytest.approx(evidence[evidence_name])
    assert mlflow_registry.alias(client, "wide", "champion") == "1"
    assert mlflow_registry.archived_runs(client, project / "outputs" / "wide") == {run.name}  # what verify checks
    assert mlflow_registry.archived_runs(client, tmp_path / "another-archive" / "wide") == set()
    ledger = [entry["event"] for entry in journal.read(project / "outputs" / "wide" / archive.LEDGER)]
    assert ledger == ["run finished", "registered", "promoted"]
    assert run.name in (project / "outputs" / "index.html").read_text(encoding="utf-8")


def wait_for(process, text, lines, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if text in line:
            return
        assert line or process.poll() is None, "".join(lines)
    raise AssertionError(f"{text!r} never came: {''.join(lines)}")


def output_once_ended(process, timeout, project):
    """All a stopped `signoff` printed.  One that does not end in time fails the test with where its
    threads are (SIGUSR1) and the kernels still alive, then is killed."""
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        running = process.poll() is None
        if running:
            process.send_signal(signal.SIGUSR1)
            time.sleep(2)
        kernels = kernels_under(project / "outputs")
        os.killpg(process.pid, signal.SIGKILL)
        for pid in kernels:
            os.kill(int(pid), signal.SIGKILL)
        try:
            printed = process.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            printed = "(its output was held open)"
        raise AssertionError(f"signoff {'still running' if running else 'ended, its output still open'} after "
                             f"{timeout} s; kernels alive: {kernels}\n{printed}") from None


def kernels_under(folder):
    """Kernel processes whose working directory is inside ``folder`` (a run's kernels work in its run folder):
    started as ``ipykernel_launcher``, or forked from the run's fork server (whose command line they keep)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if os.readlink(f"/proc/{pid}/cwd").startswith(str(folder)) and (
                    "ipykernel" in command or "runner.run.forkserver" in command):
                found.append(pid)
        except OSError:
            continue
    return found


def started_slow_run(project):
    """A real `signoff run` in its own process group (a signal reaches it alone, not its kernels), once its
    slow stage runs: the process and the lines it printed so far."""
    keep_stages(project, "eda")
    write_notebook(project / "notebooks" / "02_slow.ipynb", "import time\ntime.sleep(600)",
                   parameters='run_dir: str = ""\nmlflow_run_id: str = ""')  # it starts once the MLflow run is open
    process = start_signoff("run", "params/credit.yaml", "-p", "data.synthetic.n_rows=500", cwd=project)
    lines = []
    wait_for(process, "slow       started", lines)
    return process, lines


@pytest.mark.slow
def test_sigterm_stops_the_kernels_archives_the_run_as_error_and_frees_the_lock(project):
    process, _ = started_slow_run(project)
    assert kernels_under(project / "outputs")
    process.send_signal(signal.SIGTERM)
    output = output_once_ended(process, 120, project)
    assert process.returncode == 2, output
    (run,) = run_folders(project)
    assert f"signoff: stopped by SIGTERM; the run is archived at {run}" in output
    verdict = read_json(run / "verdict.json")
    assert verdict["verdict"] == "ERROR" and verdict["error"] == "the run stopped: stopped by SIGTERM"
    stages = {s["name"]: (s["status"], s["error"]) for s in verdict["stages"]}
    assert stages == {"eda": ("passed", None), "slow": ("failed", "interrupted: SIGTERM stopped the run")}
    assert (run / "notebooks" / "eda.ipynb").is_file() and (run / "html" / "eda.html").is_file()
    assert kernels_under(project / "outputs") == []
    model_dir = project / "outputs" / "credit-default"
    assert not (model_dir / ".lock.holder").exists()
    with FileLock(model_dir / ".lock", timeout=0):  # free: the next command need not wait
        pass
    client = mlflow_store.connect(mlflow_store.embedded_uri(project / "outputs"))
    (tracked,) = client.search_runs([client.get_experiment_by_name("credit-default").experiment_id])
    assert tracked.info.status == "KILLED" and tracked.data.tags["signoff.archived"] == str(run)
    assert decide("verify", cwd=project).returncode == 0


@pytest.mark.slow
def test_a_second_signal_exits_at_once_and_leaves_what_verify_notes(project):
    process, lines = started_slow_run(project)
    process.send_signal(signal.SIGHUP)
    wait_for(process, "SIGHUP: stopping", lines)
    process.send_signal(signal.SIGINT)
    output = "".join(lines) + output_once_ended(process, 60, project)
    assert process.returncode == 2, output
    assert "SIGINT again: exiting at once" in output
    assert run_folders(project) == []
    checked = decide("verify", str(project / "outputs" / "credit-default"), cwd=project)
    assert "unfinished run" in checked.stdout and ".lock.holder: left by a command that was killed" in checked.stdout


@pytest.mark.slow
def test_two_models_started_together_into_a_new_output_root_both_finish(project):
    keep_stages(project, "train", "infra")  # a model, logged: enough to register and promote it
    for name, model_type in (("first", "xgboost"), ("second", "lightgbm")):  # the boosters extra's, logged and served
        params_for(project, name, "{synthetic: {n_rows: 600}}",
                   extra=f"registry: {{promotion: auto}}\nstages: {{train: {{model_type: {model_type}}}}}\n")
    runs = [start_signoff("run", f"params/{name}.yaml", cwd=project) for name in ("first", "second")]
    outputs = [process.communicate(timeout=600)[0] for process in runs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    assert all("promoted to champion" in output for output in outputs)
    client = mlflow_store.connect(mlflow_store.embedded_uri(project / "outputs"))
    assert {mlflow_registry.alias(client, name, "champion") for name in ("first", "second")} == {"1"}
    assert decide("verify", cwd=project).returncode == 0


@contextmanager
def small_filesystem(path, size):
    """A tmpfs of ``size`` mounted at ``path``: needs root and a kernel that lets this process mount."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({mounted.stderr.decode().strip()}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_output_root_is_refused_before_anything_runs(project, tmp_path):
    with small_filesystem(tmp_path / "ro", "1m") as root:
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        result = signoff("run", "params/credit.yaml", "--output-root", str(root), cwd=project)
    assert result.returncode == 2, result.stderr
    assert f"{root}: cannot write to the output root: Read-only file system" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_full_disk_is_a_clear_error_and_the_archive_is_untouched(project, tmp_path):
    keep_stages(project, "eda")
    with small_filesystem(tmp_path / "small", "3m") as root:
        first = signoff("run", "params/credit.yaml", "-p", "data.synthetic.n_rows=300", "--output-root", str(root),
                        cwd=project, env={"MLFLOW_TRACKING_URI": mlflow_store.embedded_uri(tmp_path)})
        assert first.returncode == 1, first.stdout + first.stderr  # blocked (no infra stage), and archived
        (kept,) = archive.finished_runs(root / "credit-default")
        hashes = {p: records.sha256_file(p) for p in kept.rglob("*") if p.is_file()}
        free = os.statvfs(root)
        (root / "filler").write_bytes(b"\0" * max(0, free.f_bavail * free.f_frsize - 64 * 1024))
        full = signoff("run", "params/credit.yaml", "-p", "data.synthetic.n_rows=300", "--output-root", str(root),
                       cwd=project, env={"MLFLOW_TRACKING_URI": mlflow_store.embedded_uri(tmp_path)})
        assert full.returncode == 2, full.stdout + full.stderr
        assert "No space left on device" in full.stderr and "free space on that disk" in full.stderr
        assert "Traceback" not in full.stderr and "internal error" not in full.stderr
        assert {p: records.sha256_file(p) for p in kept.rglob("*") if p.is_file()} == hashes
