import datetime as dt
import json

import numpy as np
import pytest

from runner import archive, metrics, stages
from runner.errors import SignoffError

from conftest import ROOT, write_notebook


def test_committed_stages_and_their_dependencies():
    found = stages.discover(ROOT / "notebooks")
    assert [s.name for s in found] == ["eda", "train", "validate", "explain", "fairness", "drift", "infra"]
    assert found[0].needs == () and found[1].needs == ("eda",)
    assert all(stage.needs == ("train",) for stage in found[2:])  # the evidence stages run side by side


def test_a_new_numbered_notebook_joins_without_code_changes(tmp_path):
    write_notebook(tmp_path / "01_load.ipynb", "x = 1")
    write_notebook(tmp_path / "02_fit.ipynb", "x = 1")
    write_notebook(tmp_path / "03_check.ipynb", "x = 1", needs=["load"])
    write_notebook(tmp_path / "notes.ipynb", "x = 1")
    assert [(s.name, s.needs) for s in stages.discover(tmp_path)] == [
        ("load", ()), ("fit", ("load",)), ("check", ("load",))]


def test_needs_must_name_an_earlier_stage(tmp_path):
    write_notebook(tmp_path / "01_a.ipynb", "x = 1", needs=["b"])
    write_notebook(tmp_path / "02_b.ipynb", "x = 1")
    with pytest.raises(SignoffError, match="'b', which is not an earlier stage"):
        stages.discover(tmp_path)


def test_run_ids_sort_by_time_and_differ_within_one_instant():
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=dt.timezone.utc)
    same = {archive.new_run_id(now) for _ in range(50)}
    assert len(same) == 50
    later = archive.new_run_id(now + dt.timedelta(microseconds=1))
    assert all(later > run_id for run_id in same)


def test_finalize_hashes_every_file_chains_to_the_previous_run_and_leaves_it_read_only(tmp_path):
    first = archive.start(tmp_path, "m")
    (first.temp / "a.txt").write_text("hello")
    (first.temp / "work").mkdir()
    (first.temp / "work" / "big.parquet").write_text("scratch")
    sealed = archive.seal(first, "m", None)
    (first.temp / "html").mkdir()
    (first.temp / "html" / "a.html").write_text(f"<p>manifest {sealed['sha256']}</p>")
    final = archive.finalize(first, sealed)
    manifest = json.loads((final / "manifest.json").read_text())
    assert not first.temp.exists() and not (final / "work").exists()
    assert manifest["files"] == {"a.txt": {"sha256": archive.sha256_file(final / "a.txt"), "size": 5}}
    assert manifest["html"] == {"html/a.html": {"sha256": archive.sha256_file(final / "html" / "a.html"),
                                                "size": (final / "html" / "a.html").stat().st_size}}
    assert manifest["previous"] is None and manifest["sha256"] == archive.core_sha256(manifest)
    for path in [final, *final.rglob("*")]:
        assert path.stat().st_mode & 0o022 == 0, path  # nothing writable by group or others
        assert path.is_dir() or path.stat().st_mode & 0o200 == 0, path  # files read-only
    second = archive.start(tmp_path, "m")
    assert archive.previous_run(tmp_path / "m") == final
    final2 = archive.finalize(second, archive.seal(second, "m", final))
    assert json.loads((final2 / "manifest.json").read_text())["previous"] == archive.sha256_file(final / "manifest.json")
    assert archive.finished_runs(tmp_path / "m") == [final, final2]


def test_threshold_meets_the_recall_requirement():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    proba = np.clip(y * 0.3 + rng.random(2000) * 0.7, 0, 1)
    for requirement in (0.5, 0.8, 0.95):
        threshold = metrics.threshold_for_recall(y, proba, requirement)
        assert metrics.at_threshold(y, proba, threshold)["recall"] >= requirement
        stricter = metrics.at_threshold(y, proba, threshold + 1e-6)["recall"]
        assert stricter < requirement  # the highest threshold that still meets it


def test_warm_up_imports_every_module_a_notebook_imports():
    import nbformat

    from runner.execute import imported_modules

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import numpy as np, json\nfrom runner import data as datasets, plots"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport never_seen"),  # magics: skipped, not an error
        nbformat.v4.new_code_cell("def f():\n    from os import path\n    return path\nfrom . import local"),
        nbformat.v4.new_markdown_cell("import not_code"),
    ]
    assert imported_modules(nb) == ["numpy", "json", "runner", "runner.data", "runner.plots", "os", "os.path"]
