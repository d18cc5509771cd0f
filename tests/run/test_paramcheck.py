from pathlib import Path

import pytest
from conftest import ROOT, decide, write_notebook

from runner.config import load_params
from runner.errors import SignoffError
from runner.judge import evidence
from runner.run import stages
from runner.run.paramcheck import gate_metrics, stage_parameters


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


def check_gates(tmp_path: Path, text: str, notebooks: Path = ROOT / "notebooks") -> None:
    path = tmp_path / "p.yaml"
    path.write_text("model: m\n" + text, encoding="utf-8")
    params, found = load_params(path), stages.discover(notebooks)
    gate_metrics(params["gates"], "gates", found, evidence.RUN_FACTS, path)
    gate_metrics(params["monitor_gates"], "monitor_gates", found, evidence.MONITOR_FACTS, path)


@pytest.mark.parametrize(
    ("gates_text", "message"),
    [
        ("gates: [{id: auc, metric: validate.roc_acu, min: 0.7}]",
         r"gates\[0\].metric \(auc\): no stage records validate.roc_acu; did you mean validate.roc_auc\b"),
        ("monitor_gates: [{id: d, metric: drift.share_drifted_column, max: 0.3}]",
         r"monitor_gates\[0\].metric \(d\): .*did you mean drift.share_drifted_columns\b"),
        ("gates: [{id: di, metric: fairness.sex.disparate_impact_rato, min: 0.8}]",
         r"did you mean fairness.sex.disparate_impact_ratio\b"),
        ("gates: [{id: x, metric: deploy.cost, max: 1}]", r"evidence names start with a stage \(eda, train"),
        ("monitor_gates: [{id: o, metric: checklist.open_items, max: 0}]", r"no stage records checklist.open_items"),
    ],
)
def test_a_gate_on_evidence_no_stage_declares_is_refused_with_the_closest_names(tmp_path, gates_text, message):
    with pytest.raises(SignoffError, match=message) as caught:
        check_gates(tmp_path, gates_text + "\n")
    assert str(tmp_path / "p.yaml") in str(caught.value) and caught.value.exit_code == 2


def test_declared_names_patterns_and_run_facts_pass(tmp_path):
    check_gates(tmp_path, "gates: [{id: a, metric: fairness.age_band.equal_opportunity_difference_ci_high, max: 1},\n"
                          "        {id: b, metric: eda.missing_rate.annual income €, max: 0.1},\n"
                          "        {id: c, metric: checklist.open_items, max: 0}]\n"
                          "monitor_gates: [{id: d, metric: monitor.champion_age_days, max: 90}]\n")


def test_a_stage_that_declares_nothing_is_named(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    write_notebook(notebooks / "01_score.ipynb", "import scrapbook as sb\nsb.glue('rows', 1)")
    with pytest.raises(SignoffError, match=r"score.rows: 01_score.ipynb declares no evidence; list the names"):
        check_gates(tmp_path, "gates: [{id: r, metric: score.rows, min: 1}]\n", notebooks)
    write_notebook(notebooks / "01_score.ipynb", "import scrapbook as sb\nsb.glue('rows', 1)", evidence=["rows"])
    check_gates(tmp_path, "gates: [{id: r, metric: score.rows, min: 1}]\n", notebooks)


def test_evidence_no_declaration_covers_is_a_warning():
    facts = {"validate.roc_auc": 0.8, "validate.new_metric": 1, "fairness.sex.worst_group_auc": 0.7}
    assert evidence.undeclared(facts, ["validate.roc_auc", "fairness.*.worst_group_auc"]) == [
        "evidence recorded but not declared in its stage notebook's metadata signoff.evidence: validate.new_metric"]
    assert evidence.undeclared(facts, ["validate.*", "fairness.*"]) == []


def test_signoff_run_refuses_a_mistyped_gate_before_any_notebook(project):
    (project / "params" / "typo.yaml").write_text(
        "extends: credit.yaml\ngates: [{id: auc, metric: validate.roc_acu, min: 0.7}]\n", encoding="utf-8")
    result = decide("run", "params/typo.yaml", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "params/typo.yaml: gates[0].metric (auc): no stage records validate.roc_acu; " \
           "did you mean validate.roc_auc" in result.stderr
    assert not (project / "outputs").exists() or not list((project / "outputs").rglob("verdict.json"))
