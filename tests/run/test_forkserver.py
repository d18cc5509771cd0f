"""Kernels forked from the run's fork server: fresh processes that share its imports, and that end with it."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from conftest import write_notebook

from runner.run import forkserver, scheduling, stages
from runner.run.kernels import shutdown, start_kernel
from runner.run.progress import Progress
from runner.run.scheduling import run_stages

pytestmark = pytest.mark.slow  # starts kernels

LIMITS = {"cell_timeout": 60, "stage_timeout": 120}
REPORT = ("import json, os\nimport numpy as np\n"
          "print(json.dumps({'pid': os.getpid(), 'parent': os.getppid(), 'group': os.getpgid(0),"
          " 'draw': float(np.random.rand()),"
          " 'uri': os.environ.get('MLFLOW_TRACKING_URI')}))\n"
          "import user_module")


def told(notebook):
    """What a notebook made with :data:`REPORT` printed about its kernel."""
    outputs = nbformat.read(notebook, as_version=4).cells[0].outputs
    return json.loads(next(o["text"] for o in outputs if o.get("name") == "stdout"))


def test_every_stage_kernel_is_a_fresh_child_of_one_server_and_a_user_module_loads_in_the_kernel(tmp_path, monkeypatch):
    """Both kernels come from the same server (imports shared), each in its own process group, with the run's
    environment; numpy's unseeded draws differ, as in separate processes; a figure shows as in any kernel; a
    module that is neither Signoff's nor a package Signoff runs on is imported by the kernel itself, after
    the fork."""
    (tmp_path / "user_module.py").write_text("import os\nopen(f'imported-by-{os.getpid()}', 'w').close()\n",
                                             encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    notebooks, run_dir = tmp_path / "notebooks", tmp_path / "run"
    notebooks.mkdir()
    run_dir.mkdir()
    write_notebook(notebooks / "01_one.ipynb", REPORT, "import matplotlib.pyplot as plt\nplt.plot([1, 2])")
    write_notebook(notebooks / "02_two.ipynb", REPORT)
    found = stages.discover(notebooks)

    results, _ = run_stages(found, {s.name: {} for s in found}, run_dir, {}, LIMITS, 2, Progress(io.StringIO()),
                            env={"MLFLOW_TRACKING_URI": "sqlite:///x.db"})

    assert [r.status for r in results] == ["passed", "passed"], [r.error for r in results]
    one, two = (told(run_dir / "notebooks" / f"{name}.ipynb") for name in ("one", "two"))
    assert one["parent"] == two["parent"] != os.getpid()  # forked by the server, not started by this process
    assert {one["group"], two["group"]} == {one["pid"], two["pid"]}  # each its own process group
    assert one["draw"] != two["draw"] and one["uri"] == two["uri"] == "sqlite:///x.db"
    figure = nbformat.read(run_dir / "notebooks" / "one.ipynb", as_version=4).cells[1].outputs
    assert any("image/png" in o.get("data", {}) for o in figure)  # matplotlib, imported ahead, still displays
    assert sorted(p.name for p in run_dir.glob("imported-by-*")) == sorted(
        f"imported-by-{k['pid']}" for k in (one, two))  # imported by each kernel, never by the server


AHEAD = ("import json, sys, threadpoolctl\n"
         "print(json.dumps({'ahead': 'sklearn.ensemble' in sys.modules,"
         " 'threads': sorted({pool['num_threads'] for pool in threadpoolctl.threadpool_info()})}))")


def test_a_server_started_before_the_run_knows_its_notebooks_has_the_run_s_thread_limits_and_imports_them(
        tmp_path):
    """As `signoff run` starts it: before Papermill is imported and the notebooks are read.  The BLAS/OpenMP
    limits must be in its environment from the start (the libraries read them when they load, in the
    server); what the run's notebooks import is named later and is in the kernel before the notebook runs."""
    notebooks, run_dir = tmp_path / "notebooks", tmp_path / "run"
    notebooks.mkdir()
    run_dir.mkdir()
    write_notebook(notebooks / "01_only.ipynb", AHEAD)
    write_notebook(tmp_path / "later.ipynb", "import sklearn.ensemble")
    found = stages.discover(notebooks)
    jobs = os.cpu_count() or 1
    with forkserver.started(jobs, {}) as server:
        scheduling.preload(server, [tmp_path / "later.ipynb"])
        deadline = time.monotonic() + 60
        while "/sklearn/" not in Path(f"/proc/{server.process.pid}/maps").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # imported while the server waits for requests
        results, _ = run_stages(found, {"only": {}}, run_dir, {}, LIMITS, jobs, Progress(io.StringIO()),
                                server=server)
        assert server.process.poll() is None  # the caller's to close
    assert results[0].status == "passed", results[0].error
    outputs = nbformat.read(run_dir / "notebooks" / "only.ipynb", as_version=4).cells[0].outputs
    kernel = json.loads(next(o["text"] for o in outputs if o.get("name") == "stdout"))
    assert kernel == {"ahead": True, "threads": [1]}
    assert server.process.wait(timeout=30) == 0


def test_a_closed_server_ends_with_its_last_kernel_and_its_socket_goes_at_once(tmp_path):
    notebook = tmp_path / "stage.ipynb"
    write_notebook(notebook, "import pandas")
    server = forkserver.Server({})
    server.preload(["pandas"])
    km = start_kernel(notebook, tmp_path, server=server)
    assert km.provisioner.process.poll() is None
    server.close()
    assert not os.path.exists(os.path.dirname(server.socket))
    time.sleep(1.5)
    assert server.process.poll() is None  # a kernel of its own still runs
    shutdown(km)
    assert server.process.wait(timeout=30) == 0


def test_a_server_ended_by_a_signal_leaves_no_socket_behind(tmp_path):
    """A scheduler that stops a task signals its whole process group, the fork server with it."""
    server = forkserver.Server({})
    deadline = time.monotonic() + 30
    while not os.path.exists(server.socket) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.terminate()
    server.process.wait(timeout=30)
    server.close()
    assert not os.path.exists(os.path.dirname(server.socket))


KILLED_PARENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from runner.run import forkserver
    from runner.run.kernels import start_kernel

    server = forkserver.Server({})
    server.preload(["pandas"])
    km = start_kernel(Path(sys.argv[1]), Path(sys.argv[2]), server=server)
    print(server.process.pid, km.provisioner.process.pid, flush=True)
    sys.stdin.read()
""")


def test_when_signoff_is_killed_its_server_and_kernels_end(tmp_path):
    notebook = tmp_path / "stage.ipynb"
    write_notebook(notebook, "x = 1")
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(notebook), str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server, kernel = (int(pid) for pid in parent.stdout.readline().split())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (running(server) or running(kernel)):
        time.sleep(0.2)
    assert not running(server) and not running(kernel)


def running(pid):
    """Alive and not a zombie (a process that ended but nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_forking_can_be_switched_off_and_only_known_packages_are_imported_ahead(monkeypatch):
    assert forkserver.preloadable(["pandas", "sklearn.metrics", "json", "user_module", "torch.nn"]) == [
        "pandas", "sklearn.metrics", "json"]
    monkeypatch.setenv(forkserver.SWITCH, "0")
    assert not forkserver.available()
