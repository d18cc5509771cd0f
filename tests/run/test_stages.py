import shutil

import pytest
from conftest import ROOT, write_notebook

from runner.errors import SignoffError
from runner.run import stages


def test_committed_stages_and_their_dependencies():
    found = stages.discover(ROOT / "notebooks")
    assert [s.name for s in found] == ["eda", "train", "validate", "explain", "fairness", "drift", "infra"]
    assert found[0].needs == () and found[1].needs == ()  # training does not wait for the EDA: they run side by side
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


def test_a_stage_s_own_notebook_runs_in_its_place_with_its_own_declarations(tmp_path):
    from runner import config

    (tmp_path / "params").mkdir()
    shutil.copy(ROOT / "templates" / "train_own.ipynb", tmp_path / "params" / "mine.ipynb")
    (tmp_path / "params" / "p.yaml").write_text("model: m\nstages:\n  train: {notebook: mine.ipynb, n_estimators: 9}\n")
    params = config.load_params(tmp_path / "params" / "p.yaml")
    assert params["stages"]["train"]["notebook"] == str(tmp_path / "params" / "mine.ipynb")  # relative to the file
    committed = stages.discover(ROOT / "notebooks")
    found = stages.replace(committed, params["stages"], tmp_path / "p.yaml")
    train = next(s for s in found if s.name == "train")
    assert train.path == tmp_path / "params" / "mine.ipynb" and train.needs == committed[1].needs  # its place kept
    assert "train.task" in train.declared() and [s.name for s in found][:3] == ["eda", "train", "validate"]
    from runner.run import paramcheck

    given = paramcheck.stage_parameters(found, params, tmp_path / "p.yaml")["train"]
    assert given["n_estimators"] == 9 and "notebook" not in given


@pytest.mark.parametrize(("value", "message"), [
    ("nope.ipynb", r"stages.train.notebook: expected a .ipynb file, got '.*nope.ipynb' \(no such file\)"),
    (3, "stages.train.notebook: expected a .ipynb file, got 3"),
])
def test_an_own_notebook_that_is_not_there_is_refused(tmp_path, value, message):
    with pytest.raises(SignoffError, match=message):
        stages.replace(stages.discover(ROOT / "notebooks"), {"train": {"notebook": value}}, tmp_path / "p.yaml")


def test_stages_start_after_what_they_need_then_longest_first_then_in_pipeline_order():
    from runner.run.scheduling import priority

    found = [stages.Stage("load", ROOT, ()), stages.Stage("fit", ROOT, ("load",)),
             stages.Stage("check", ROOT, ("fit",)), stages.Stage("plot", ROOT, ("fit",)),
             stages.Stage("serve", ROOT, ("fit",))]
    assert priority(found, {}) == {"load": 0, "fit": 1, "check": 2, "plot": 3, "serve": 4}
    assert priority(found, {"serve": 9.0, "plot": 2.0, "load": 1.0}) == {"load": 0, "fit": 1, "serve": 2, "plot": 3,
                                                                         "check": 4}
