"""The stage scheduler on three-cell notebooks: dependencies, skips, and the report's kernel warmed ahead."""

import io

import nbformat
import pytest
from conftest import write_notebook
from jupyter_core.utils import run_sync

from runner.run import stages
from runner.run.kernels import handed_over
from runner.run.progress import Progress
from runner.run.scheduling import execute, run_stages

pytestmark = pytest.mark.slow  # starts kernels

LIMITS = {"cell_timeout": 60, "stage_timeout": 120}


def test_a_failed_stage_skips_its_dependants_and_the_reports_kernel_is_handed_over_warm(tmp_path):
    notebooks, run_dir = tmp_path / "notebooks", tmp_path / "run"
    notebooks.mkdir()
    run_dir.mkdir()
    write_notebook(notebooks / "01_load.ipynb", "raise ValueError('no rows')")
    write_notebook(notebooks / "02_fit.ipynb", "x = 1", needs=["load"])
    write_notebook(notebooks / "03_other.ipynb", "import json\nprint(json.dumps({'ok': True}))", needs=[])
    write_notebook(tmp_path / "report.ipynb", "import json\nprint('report')")
    found = stages.discover(notebooks)
    progress = Progress(io.StringIO())

    results, warm = run_stages(found, {s.name: {} for s in found}, run_dir, {}, LIMITS, 2, progress,
                               then=tmp_path / "report.ipynb")

    assert [(r.name, r.status) for r in results] == [("load", "failed"), ("fit", "skipped"), ("other", "passed")]
    assert "ValueError: no rows" in results[0].error and results[1].error == "needs load"
    assert not (run_dir / "notebooks" / "fit.ipynb").exists()
    with handed_over(warm) as km:
        assert run_sync(km.is_alive)()
        report = execute("report", tmp_path / "report.ipynb", run_dir / "report.ipynb", {}, run_dir, LIMITS,
                         progress, km)
    assert report.status == "passed" and not km.has_kernel


def test_a_warm_kernel_nobody_used_is_shut_down(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_only.ipynb", "x = 1")
    write_notebook(tmp_path / "report.ipynb", "x = 2")
    found = stages.discover(notebooks)
    _, warm = run_stages(found, {"only": {}}, tmp_path, {}, LIMITS, 1, Progress(io.StringIO()),
                         then=tmp_path / "report.ipynb")
    with pytest.raises(RuntimeError, match="the report could not run"), handed_over(warm):
        raise RuntimeError("the report could not run")
    assert not warm.has_kernel


def test_the_slot_goes_to_the_longest_stage_of_the_previous_run_and_each_finished_notebook_is_handed_on(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for number, name in enumerate("abcd", 1):
        write_notebook(notebooks / f"0{number}_{name}.ipynb", "x = 1", needs=[])
    found = stages.discover(notebooks)
    handed = []

    results, warm = run_stages(found, {s.name: {} for s in found}, tmp_path, {}, LIMITS, 1, Progress(io.StringIO()),
                               finished=lambda result: handed.append(result.name), expected={"c": 5.0, "b": 3.0})

    began = {r.name: nbformat.read(tmp_path / r.notebook, as_version=4).metadata.papermill.start_time for r in results}
    assert sorted(began, key=began.get) == ["c", "b", "a", "d"]  # timed stages longest first, then pipeline order
    assert sorted(handed) == ["a", "b", "c", "d"] and all(r.status == "passed" for r in results)


def test_a_running_notebook_is_written_at_its_start_and_end_not_after_every_cell(tmp_path, monkeypatch):
    import papermill.engines

    from runner.run import kernels

    write_notebook(tmp_path / "many.ipynb", *[f"x{i} = {i}" for i in range(12)])
    writes = []
    real = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), real(nb, path)))
    kernels.run_notebook(tmp_path / "many.ipynb", tmp_path / "out.ipynb", {}, cell_timeout=60, stage_timeout=120,
                         cwd=tmp_path)
    done = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert all(cell.metadata.papermill.status == "completed" for cell in done.cells)
    assert len(writes) <= 3  # papermill alone: 26 (before and after each cell, and at both ends)
