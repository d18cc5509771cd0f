"""Every task through real Papermill on scikit-learn's bundled real data, each figure checked against
scikit-learn or fairlearn computed here on the run's own saved model and split; the example params
files of the regression and multiclass tasks on synthetic data."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import read_json, run_folders, signoff
from sklearn import datasets as bundled
from sklearn import metrics as skm

pytestmark = pytest.mark.slow

PARAMS = """\
model: {model}
data:
  path: {file}
  target: {target}
  sensitive_features: {sensitive}
stages:
  train: {{model_type: {model_type}, max_iter: 60}}
  validate: {{n_boot: 50}}
  fairness: {{n_boot: 20, min_group_size: 10}}
gates:
{gates}
"""


def real_project(project, frame, name, target, sensitive, model_type, gates):
    frame.to_csv(project / f"{name}.csv", index=False)
    lines = "\n".join(f"  - {{id: {gate_id}, metric: {metric}, {bound}: {value}, why: bundled data}}"
                      for gate_id, metric, bound, value in gates)
    (project / "params" / f"{name}.yaml").write_text(PARAMS.format(
        model=name, file=f"../{name}.csv", target=target, sensitive=sensitive, model_type=model_type, gates=lines))
    result = signoff("run", f"params/{name}.yaml", cwd=project)
    (run,) = run_folders(project, name)
    return result, run, read_json(run / "evidence.json")


def saved(run, frame, target):
    """The run's own model and test rows, read back from its archived artifacts."""
    model = joblib.load(run / "artifacts" / "model.joblib")
    features = pd.read_parquet(run / "artifacts" / "features.parquet")["feature"].tolist()
    test = (pd.read_parquet(run / "artifacts" / "split.parquet")["split"] == "test").to_numpy()
    return model, frame[test][features], frame[test][target].to_numpy(), frame[test]


def test_a_regression_on_the_diabetes_data(project):
    frame = bundled.load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].map({1.0: "one", 2.0: "two"})
    result, run, evidence = real_project(project, frame, "diabetes", "target", "[sex]", "lightgbm", [
        ("r2", "validate.r2_ci_low", "min", 0.0), ("error-parity", "fairness.sex.mae_ratio", "max", 2.0)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert evidence["train.task"] == "regression" and "train.threshold" not in evidence
    model, X, y, rows = saved(run, frame, "target")
    pred = model.predict(X)
    assert evidence["validate.mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert evidence["validate.rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert evidence["validate.r2"] == pytest.approx(skm.r2_score(y, pred)) and evidence["validate.r2"] > 0.2
    assert evidence["validate.mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert evidence["validate.mae_lift"] > 0 and evidence["validate.r2_ci_low"] < evidence["validate.r2"]
    errors = pd.Series(np.abs(y - pred)).groupby(rows["sex"].to_numpy()).mean()
    assert evidence["fairness.sex.mae_ratio"] == pytest.approx(errors.max() / errors.min())
    assert evidence["explain.max_single_feature_r2"] < 0.5 and evidence["infra.loadable"] == 1
    assert "drift.not_applicable" in evidence  # no current data: said, not crashed
    card = (run / "model_card.md").read_text(encoding="utf-8")
    assert "| R² |" in card and "ROC AUC |" not in card


def test_a_multiclass_model_on_the_wine_data(project):
    frame = bundled.load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame["site"] = np.where(np.arange(len(frame)) % 2, "north", "south")  # a group column to compare
    result, run, evidence = real_project(project, frame, "wine", "target", "[site]", "xgboost", [
        ("auc", "validate.roc_auc_ovr_ci_low", "min", 0.8), ("parity", "fairness.site.accuracy_difference", "max",
                                                               0.5)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert evidence["train.task"] == "multiclass" and evidence["train.classes"] == ["barbera", "barolo", "grignolino"]
    model, X, y, rows = saved(run, frame, "target")
    codes = pd.Series(y).map({"barbera": 0, "barolo": 1, "grignolino": 2}).to_numpy()
    proba = model.predict_proba(X)
    assert evidence["validate.accuracy"] == pytest.approx(skm.accuracy_score(codes, proba.argmax(axis=1)))
    assert evidence["validate.f1_macro"] == pytest.approx(skm.f1_score(codes, proba.argmax(axis=1), average="macro"))
    assert evidence["validate.log_loss"] == pytest.approx(skm.log_loss(codes, proba))
    assert evidence["validate.roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(codes, proba, multi_class="ovr"))
    right = pd.Series(proba.argmax(axis=1) == codes).groupby(rows["site"].to_numpy()).mean()
    assert evidence["fairness.site.accuracy_difference"] == pytest.approx(right.max() - right.min())
    assert set(evidence) >= {f"fairness.site.disparate_impact_ratio_by_class.{c}" for c in ("barbera", "barolo")}
    assert evidence["infra.loadable"] == 1 and evidence["explain.top_feature"] in frame.columns


def test_a_binary_model_on_the_breast_cancer_data(project):
    frame = bundled.load_breast_cancer(as_frame=True).frame
    frame["cohort"] = np.where(np.arange(len(frame)) % 3 == 0, "early", "late")  # a group column to compare
    result, run, evidence = real_project(project, frame, "cancer", "target", "[cohort]", "random_forest", [
        ("auc", "validate.roc_auc", "min", 0.9), ("parity", "fairness.cohort.disparate_impact_ratio", "min", 0.5)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert evidence["train.task"] == "binary" and 0 < evidence["train.threshold"] < 1
    model, X, y, rows = saved(run, frame, "target")
    score = model.predict_proba(X)[:, 1]
    assert evidence["validate.roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    selected = pd.Series(score >= evidence["train.threshold"]).groupby(rows["cohort"].to_numpy()).mean()
    assert evidence["fairness.cohort.disparate_impact_ratio"] == pytest.approx(selected.min() / selected.max())
    assert evidence["infra.loadable"] == 1


def test_a_minimal_params_file_on_real_data_without_current_data_or_sensitive_features(project):
    frame = bundled.load_breast_cancer(as_frame=True).frame
    result, run, evidence = real_project(project, frame, "minimal", "target", "[]", "logistic_regression", [
        ("auc", "validate.roc_auc", "min", 0.9)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no sensitive features" in evidence["fairness.not_applicable"]
    assert "no current data" in evidence["drift.not_applicable"]
    verdict = read_json(run / "verdict.json")
    assert all(stage["status"] == "passed" for stage in verdict["stages"])
    checklist = {item["id"]: item["status"] for item in verdict["checklist"]}
    assert checklist["model.threshold"] == "answered"


@pytest.mark.parametrize(("params", "model", "task", "model_type", "passes"), [
    ("loss.yaml", "credit-loss", "regression", "linear", "beats-baseline"),  # ridge, through the fresh-process load
    ("grade.yaml", "credit-grade", "multiclass", "hist_gradient_boosting", "discrimination"),
])
def test_the_example_of_each_task_runs_on_synthetic_data(project, params, model, task, model_type, passes):
    result = signoff("run", f"params/{params}", "-p", "data.synthetic.n_rows=3000", "-p", "stages.train.max_iter=80",
                     "-p", f"stages.train.model_type={model_type}", cwd=project)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # on 3,000 rows a fairness gate may block
    (run,) = run_folders(project, model)
    verdict, evidence = read_json(run / "verdict.json"), read_json(run / "evidence.json")
    assert all(stage["status"] == "passed" for stage in verdict["stages"]) and evidence["train.task"] == task
    assert [g["id"] for g in verdict["gates"] if g["status"] == "missing"] == []  # every gate has its evidence
    assert next(g for g in verdict["gates"] if g["id"] == passes)["status"] == "pass"
    assert evidence["infra.loadable"] == 1 and evidence["train.model_type"] == model_type
    checklist = {item["id"]: item["status"] for item in verdict["checklist"]}
    assert checklist["model.metrics"] == "answered" and checklist["model.threshold"] == "not applicable"
    assert (run / "html" / "report.html").is_file() and (run / "evidently_drift.html").is_file()
