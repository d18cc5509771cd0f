"""Every task through real Papermill, each figure checked against scikit-learn or fairlearn computed here
on the run's own saved model and split: the example params files of the regression and multiclass tasks
on synthetic data, the binary example (the session's shared run), and a minimal params file on
scikit-learn's bundled real data."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import QUICK, quick, read_json, run_folders, signoff
from sklearn import datasets as bundled
from sklearn import metrics as skm

from runner import config
from runner.analysis import datasets

pytestmark = pytest.mark.slow

def quick_overrides(**stages_knobs) -> list[str]:
    """``-p`` options: the example's quick knobs (conftest.QUICK) plus ``stages_knobs`` ({stage: {knob: value}})."""
    knobs = quick({stage: stages_knobs.get(stage, {}) for stage in {*QUICK, *stages_knobs}})
    return [arg for stage, values in knobs.items() for knob, value in values.items()
            for arg in ("-p", f"stages.{stage}.{knob}={value}")]


def example_run(project, params_file, overrides):
    """``signoff run params/PARAMS_FILE`` with ``overrides``: its result, run folder, evidence and the very data
    it ran on (the generator's, recomputed from the same resolved params)."""
    result = signoff("run", f"params/{params_file}", *overrides, cwd=project)
    params = config.load_params(project / "params" / params_file, [o for o in overrides if o != "-p"])
    (run,) = run_folders(project, params["model"])
    frame, _ = datasets.load(params["data"], params["seed"], project / "data-cache")
    return result, run, read_json(run / "evidence.json"), frame


def saved(run, frame, target):
    """The run's own model and test rows, read back from its archived artifacts."""
    model = joblib.load(run / "artifacts" / "model.joblib")
    features = pd.read_parquet(run / "artifacts" / "features.parquet")["feature"].tolist()
    test = (pd.read_parquet(run / "artifacts" / "split.parquet")["split"] == "test").to_numpy()
    return model, frame[test][features], frame[test][target].to_numpy(), frame[test]


def every_stage_answered(run, evidence, task, model_type, passes):
    """All stages passed, every gate of the example found its evidence, the checklist knows the task."""
    verdict = read_json(run / "verdict.json")
    assert all(stage["status"] == "passed" for stage in verdict["stages"]) and evidence["train.task"] == task
    assert [g["id"] for g in verdict["gates"] if g["status"] == "missing"] == []  # every gate has its evidence
    assert next(g for g in verdict["gates"] if g["id"] == passes)["status"] == "pass"
    assert evidence["infra.loadable"] == 1 and evidence["train.model_type"] == model_type
    checklist = {item["id"]: item["status"] for item in verdict["checklist"]}
    assert checklist["model.metrics"] == "answered" and checklist["model.threshold"] == "not applicable"
    assert (run / "html" / "report.html").is_file() and (run / "evidently_drift.html").is_file()


def test_the_regression_example_its_errors_and_error_parity(project):
    """params/loss.yaml, with ridge (served through the fresh-process load)."""
    result, run, evidence, frame = example_run(project, "loss.yaml", ["-p", "data.synthetic.n_rows=3000",
                                                                      *quick_overrides(train={"model_type": "linear"})])
    assert result.returncode in (0, 1), result.stdout + result.stderr  # on 3,000 rows a fairness gate may block
    every_stage_answered(run, evidence, "regression", "linear", "beats-baseline")
    assert "train.threshold" not in evidence
    model, X, y, rows = saved(run, frame, "loss")
    pred = model.predict(X)
    assert evidence["validate.mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert evidence["validate.rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert evidence["validate.r2"] == pytest.approx(skm.r2_score(y, pred)) and evidence["validate.r2"] > 0.2
    assert evidence["validate.mae_lift"] > 0 and evidence["validate.r2_ci_low"] < evidence["validate.r2"]
    if (y != 0).all():
        assert evidence["validate.mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    else:
        assert "validate.mape" not in evidence  # undefined with a zero target: left out, not infinite
    errors = pd.Series(np.abs(y - pred)).groupby(rows["sex"].to_numpy()).mean()
    assert evidence["fairness.sex.mae_ratio"] == pytest.approx(errors.max() / errors.min())
    assert evidence["explain.max_single_feature_r2"] < 0.5
    card = (run / "model_card.md").read_text(encoding="utf-8")
    assert "| R² |" in card and "ROC AUC |" not in card


def test_the_multiclass_example_its_scores_and_accuracy_parity(project):
    """params/grade.yaml, with XGBoost (the boosters extra, served from skops)."""
    result, run, evidence, frame = example_run(project, "grade.yaml", [
        "-p", "data.synthetic.n_rows=3000", *quick_overrides(train={"model_type": "xgboost", "max_iter": 80})])
    assert result.returncode in (0, 1), result.stdout + result.stderr
    every_stage_answered(run, evidence, "multiclass", "xgboost", "discrimination")
    assert evidence["train.classes"] == ["A", "B", "C", "D"]
    model, X, codes, rows = saved(run, frame, "grade")  # the data as the stages read it: grades coded 0-3
    proba = model.predict_proba(X)
    assert evidence["validate.accuracy"] == pytest.approx(skm.accuracy_score(codes, proba.argmax(axis=1)))
    assert evidence["validate.f1_macro"] == pytest.approx(skm.f1_score(codes, proba.argmax(axis=1), average="macro"))
    assert evidence["validate.log_loss"] == pytest.approx(skm.log_loss(codes, proba))
    assert evidence["validate.roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(codes, proba, multi_class="ovr"))
    right = pd.Series(proba.argmax(axis=1) == codes).groupby(rows["sex"].to_numpy()).mean()
    assert evidence["fairness.sex.accuracy_difference"] == pytest.approx(right.max() - right.min())
    assert set(evidence) >= {f"fairness.sex.disparate_impact_ratio_by_class.{c}" for c in "ABCD"}
    assert evidence["explain.top_feature"] in frame.columns


def test_the_binary_example_s_figures_are_the_model_s_own(example, tmp_path):
    """The README's example run (the session's shared one): its ROC AUC and disparate impact recomputed."""
    params = config.load_params(example.project / "params" / "credit.yaml")
    frame, _ = datasets.load(params["data"], params["seed"], tmp_path)
    evidence = read_json(example.run / "evidence.json")
    assert evidence["train.task"] == "binary" and 0 < evidence["train.threshold"] < 1
    model, X, y, rows = saved(example.run, frame, "default")
    score = model.predict_proba(X)[:, 1]
    assert evidence["validate.roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    selected = pd.Series(score >= evidence["train.threshold"]).groupby(rows["sex"].to_numpy()).mean()
    assert evidence["fairness.sex.disparate_impact_ratio"] == pytest.approx(selected.min() / selected.max())


def test_a_minimal_params_file_on_real_data_without_current_data_or_sensitive_features(project):
    """scikit-learn's breast-cancer data as a CSV, a logistic regression, one gate: nothing else declared."""
    bundled.load_breast_cancer(as_frame=True).frame.to_csv(project / "cancer.csv", index=False)
    (project / "params" / "minimal.yaml").write_text(
        "model: minimal\ndata: {path: ../cancer.csv, target: target, sensitive_features: []}\n"
        "stages: {train: {model_type: logistic_regression}}\n"
        "gates: [{id: auc, metric: validate.roc_auc, min: 0.9, why: bundled data}]\n", encoding="utf-8")
    result = signoff("run", "params/minimal.yaml", *quick_overrides(), cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = run_folders(project, "minimal")
    evidence, verdict = read_json(run / "evidence.json"), read_json(run / "verdict.json")
    assert "no sensitive features" in evidence["fairness.not_applicable"]
    assert "no current data" in evidence["drift.not_applicable"]
    assert all(stage["status"] == "passed" for stage in verdict["stages"])
    checklist = {item["id"]: item["status"] for item in verdict["checklist"]}
    assert checklist["model.threshold"] == "answered"
