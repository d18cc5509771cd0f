"""A function called in a fresh process: a new interpreter, or a child of the run's fork server in a run; either
way nothing of the caller's state, the caller's environment and folder, and the function's error as the message."""

import io
import json
import os
import tempfile
import textwrap
import time

import nbformat
import pytest
from conftest import write_notebook

from runner.analysis import fresh
from runner.run import stages
from runner.run.progress import Progress
from runner.run.scheduling import run_stages

PROBE = textwrap.dedent("""
    import os

    STATE = None  # set by the caller; a fresh process never sees it


    def describe(word):
        return {"pid": os.getpid(), "parent": os.getppid(), "word": word, "state": STATE,
                "extra": os.environ.get("SIGNOFF_TEST_EXTRA"), "cwd": os.getcwd()}


    def fail():
        raise ValueError("the model does not load")


    def importable(name):
        import importlib.util

        return importlib.util.find_spec(name) is not None
""")


@pytest.fixture()
def probe(tmp_path, monkeypatch):
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(fresh.SOCKET, raising=False)
    return tmp_path


@pytest.mark.parametrize("server", ["none", "gone"])
def test_without_a_fork_server_the_function_runs_in_a_new_interpreter(probe, monkeypatch, server):
    import probe as caller_copy

    if server == "gone":  # a kernel of a run whose server no longer takes requests
        monkeypatch.setenv(fresh.SOCKET, str(probe / "ended" / "socket"))
    caller_copy.STATE = "the caller's"
    told = fresh.call("probe:describe", ["hello"], {"SIGNOFF_TEST_EXTRA": "1"}, 60)
    assert told["pid"] != os.getpid() and told["parent"] == os.getpid()
    assert told == {**told, "word": "hello", "state": None, "extra": "1", "cwd": str(probe)}
    with pytest.raises(fresh.Failed, match="ValueError: the model does not load"):
        fresh.call("probe:fail", [], {}, 60)


CALLER = ("import json, os, probe\n"
          "from runner.analysis import fresh\n"
          "probe.STATE = \"the kernel's\"\n"
          "told = fresh.call('probe:describe', ['hello'], {'SIGNOFF_TEST_EXTRA': '1'}, 60)\n"
          "told['beside_signoff'] = fresh.call('probe:importable', ['beside_signoff'], {}, 60)\n"
          "try:\n"
          "    fresh.call('probe:fail', [], {}, 60)\n"
          "except fresh.Failed as exc:\n"
          "    told['error'] = str(exc)\n"
          "print(json.dumps({**told, 'kernel': os.getpid(), 'server': os.getppid(),"
          " 'socket': os.environ[fresh.SOCKET]}))")


@pytest.mark.slow  # starts a fork server and a kernel
@pytest.mark.parametrize("socket_fits", [True, False])
def test_in_a_run_a_kernel_s_fresh_process_is_forked_from_the_server_and_its_socket_goes_with_it(
        probe, monkeypatch, socket_fits):
    """Where the socket's path is too long for a socket address (a deep TMPDIR), the kernel starts a new
    interpreter instead, and the run goes on."""
    if not socket_fits:
        deep = probe / ("deep" * 30)
        deep.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(deep))
    notebooks, run_dir = probe / "notebooks", probe / "run"
    notebooks.mkdir()
    run_dir.mkdir()
    write_notebook(notebooks / "01_caller.ipynb", CALLER)
    project = probe / "project"  # where `signoff` runs; a module here is on no served model's path
    project.mkdir()
    (project / "beside_signoff.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(project)
    found = stages.discover(notebooks)

    results, _ = run_stages(found, {"caller": {}}, run_dir, {}, {"cell_timeout": 60, "stage_timeout": 120}, 1,
                            Progress(io.StringIO()))

    assert results[0].status == "passed", results[0].error
    outputs = nbformat.read(run_dir / "notebooks" / "caller.ipynb", as_version=4).cells[0].outputs
    told = json.loads(next(o["text"] for o in outputs if o.get("name") == "stdout"))
    assert told["parent"] == (told["server"] if socket_fits else told["kernel"])
    assert told["pid"] not in (told["kernel"], told["server"])
    assert told == {**told, "word": "hello", "state": None, "extra": "1", "cwd": str(run_dir)}
    assert told["error"] == "ValueError: the model does not load"
    assert told["beside_signoff"] is False  # as in a new interpreter started in the run folder
    deadline = time.monotonic() + 30
    while os.path.exists(os.path.dirname(told["socket"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(os.path.dirname(told["socket"]))  # removed when the server ended
