import pytest
from conftest import ROOT, write_notebook

from runner.errors import SignoffError
from runner.run import stages


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
