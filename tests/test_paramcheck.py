from pathlib import Path

import pytest

from runner import stages
from runner.config import load_params
from runner.errors import SignoffError
from runner.paramcheck import stage_parameters

from conftest import ROOT, write_notebook


def resolve(tmp_path: Path, text: str, notebooks: Path = ROOT / "notebooks"):
    path = tmp_path / "p.yaml"
    path.write_text("model: m\n" + text, encoding="utf-8")
    return stage_parameters(stages.discover(notebooks), load_params(path), path)


def test_example_parameters_reach_each_stage(tmp_path):
    resolved = resolve(tmp_path, "seed: 3\nstages: {train: {max_iter: 50, learning_rate: 1}, validate: {n_boot: 50}}")
    assert resolved["train"]["max_iter"] == 50
    assert resolved["train"]["learning_rate"] == 1  # an int is a valid float
    assert resolved["train"]["seed"] == 3 and resolved["eda"]["data"]["target"] == "default"
    assert resolved["train"]["run_dir"] == ""  # filled in with the run folder when the run starts


@pytest.mark.parametrize(
    ("stages_text", "message"),
    [
        ("{train: {no_such_param: 1}}", r"stages.train.no_such_param: 02_train.ipynb declares no parameter"),
        ("{train: {max_iter: fifty}}", r"stages.train.max_iter: expected int .*got 'fifty'"),
        ("{train: {max_iter: true}}", r"stages.train.max_iter: expected int"),
        ("{train: {min_recall: [0.8]}}", r"stages.train.min_recall: expected float"),
        ("{eda: {previous_run: /tmp}}", r"stages.eda.previous_run: previous_run is set by Signoff for each run"),
        ("{train: {seed: 1}}", r"stages.train.seed: seed is set by the top-level 'seed' key"),
        ("{deploy: {x: 1}}", r"stages.deploy: no stage notebook named \*_deploy.ipynb"),
        ('{train: {"x=1\\nimport os": 1}}', r"not a parameter name"),
    ],
)
def test_wrong_parameters_are_refused_before_running(tmp_path, stages_text, message):
    with pytest.raises(SignoffError, match=message) as caught:
        resolve(tmp_path, f"stages: {stages_text}\n")
    assert str(tmp_path / "p.yaml") in str(caught.value) and caught.value.exit_code == 2


def test_required_parameter_must_be_given(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    write_notebook(notebooks / "01_score.ipynb", "print(label)",
                   parameters="from typing import Optional\nlabel: str = None\nnote: Optional[str] = None")
    with pytest.raises(SignoffError, match=r"stages.score.label: required by 01_score.ipynb \(str, no default\)"):
        resolve(tmp_path, "", notebooks)
    assert resolve(tmp_path, "stages: {score: {label: ok}}\n", notebooks)["score"] == {"label": "ok"}
