"""A model trained elsewhere (`stages.train.model_uri`): judged by a real run from a real MLflow store,
refused before any notebook when it would run its author's code."""

import pytest
from conftest import decide, keep_stages, read_json, run_folders, signoff

from runner import config, mlflow_store
from runner.analysis import datasets, metrics, modeling, servability

pytestmark = pytest.mark.slow

# named, as a team's pipeline would: without them MLflow infers them by importing the model in a subprocess
REQUIREMENTS = ["scikit-learn", "xgboost", "lightgbm"]

def logged_elsewhere(project, name, serialization):
    """What another team's pipeline did: a forest on two columns, registered in the project's store."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    frame, _ = datasets.synthetic_credit(2000, seed=7)
    X, y = frame[["income", "debt_ratio"]], frame["default"]
    model = modeling.build("random_forest", X, 0, 50, 0.1).fit(X, y)
    mlflow_store.connect(mlflow_store.embedded_uri(project / "outputs"))
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, serialization_format=serialization,
            signature=infer_signature(servability.serving_frame(X), model.predict_proba(X.head())),
            pip_requirements=REQUIREMENTS,
            **({"skops_trusted_types": modeling.trusted_types_needed(model)} if serialization == "skops" else {}),
        )
    return f"models:/{name}/1", model


def test_a_model_logged_elsewhere_is_judged_and_a_pickle_only_when_allowed(project, monkeypatch):
    keep_stages(project, "train", "validate", "infra", rows=3000)
    uri, model = logged_elsewhere(project, "scorecard", "skops")
    result = signoff("run", "params/credit.yaml", "-p", f"stages.train.model_uri={uri}", cwd=project)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # judged: a verdict, whatever it is
    (run,) = run_folders(project)
    evidence = read_json(run / "evidence.json")
    assert evidence["train.model_uri"] == uri and evidence["train.training_seconds"] == 0
    assert evidence["train.features"] == ["income", "debt_ratio"] and evidence["infra.loadable"] == 1
    assert evidence["train.model_type"] == "RandomForestClassifier"
    reference, _ = datasets.load(config.load_params(project / "params" / "credit.yaml")["data"], 42, project / "x")
    test = modeling.split(reference["default"], 0.2, 0.2, 42) == "test"
    rows = reference[test.to_numpy()]  # the run's test split, recomputed here: the score is the model's own
    assert evidence["validate.roc_auc"] == pytest.approx(
        metrics.roc_auc(rows["default"].to_numpy(), model.predict_proba(rows[["income", "debt_ratio"]])[:, 1]))

    pickled, _ = logged_elsewhere(project, "legacy", "cloudpickle")
    refused = decide("run", "params/credit.yaml", "-p", f"stages.train.model_uri={pickled}", cwd=project)
    assert refused.returncode == 2 and "stages.train.model_uri" in refused.stderr
    assert "is stored as a pickle (cloudpickle)" in refused.stderr and "allow_pickle: true" in refused.stderr
    assert len(run_folders(project)) == 1  # refused before anything ran
    missing = decide("run", "params/credit.yaml", "-p", "stages.train.model_uri=models:/nosuch/3", cwd=project)
    assert missing.returncode == 2 and "models:/nosuch/3 does not resolve in MLflow" in missing.stderr

    keep_stages(project, "train")  # loading it is what is in question
    allowed = signoff("run", "params/credit.yaml", "-p", f"stages.train.model_uri={pickled}",
                      "-p", "stages.train.allow_pickle=true", cwd=project)
    assert allowed.returncode in (0, 1), allowed.stdout + allowed.stderr
    verdict = read_json(run_folders(project)[-1] / "verdict.json")
    assert any("allow_pickle" in w and pickled in w for w in verdict["warnings"])
    assert read_json(run_folders(project)[-1] / "evidence.json")["train.allow_pickle"] is True

    # the boosters' own MLflow flavours, loaded as the train stage loads them: no pickle
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.embedded_uri(project / "outputs"))
    rows = reference[["income", "debt_ratio"]].head(50)
    for logged in (logged_with_xgboost, logged_with_lightgbm):
        uri, original = logged(project, logged.__name__.rsplit("_", 1)[1])
        loaded, features = servability.load_logged(uri, False, list(reference.columns))
        assert type(loaded) is type(original) and features == ["income", "debt_ratio"]
        assert (loaded.predict_proba(rows) == original.predict_proba(rows)).all()


def logged_with_xgboost(project, name):
    import mlflow
    import mlflow.xgboost
    from mlflow.models import infer_signature
    from xgboost import XGBClassifier

    frame, _ = datasets.synthetic_credit(2000, seed=8)
    X = frame[["income", "debt_ratio"]]
    model = XGBClassifier(n_estimators=20, max_depth=3).fit(X, frame["default"])
    mlflow_store.connect(mlflow_store.embedded_uri(project / "outputs"))
    with mlflow.start_run():
        mlflow.xgboost.log_model(model, name="model", registered_model_name=name,
                                 signature=infer_signature(X, model.predict_proba(X.head())),
                                 pip_requirements=REQUIREMENTS)
    return f"models:/{name}/1", model


def test_the_data_scientist_s_own_training_notebook_through_a_full_run_and_a_rerun(project):
    import shutil

    import joblib
    import pandas as pd
    import yaml
    from conftest import ROOT
    from sklearn.metrics import roc_auc_score

    shutil.copy(ROOT / "templates" / "train_own.ipynb", project / "params" / "my_train.ipynb")
    keep_stages(project, "train", "validate", "infra", rows=3000)  # a model scored, and served from its artifacts
    params = yaml.safe_load((project / "params" / "credit.yaml").read_text(encoding="utf-8"))
    params["stages"]["train"] = {"notebook": "my_train.ipynb", "model_type": "xgboost"}
    (project / "params" / "own.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    refused = decide("run", "params/own.yaml", cwd=project)  # checked like any stage notebook, before it runs
    assert refused.returncode == 2 and "my_train.ipynb declares no parameter 'model_type'" in refused.stderr
    params["stages"]["train"] = {"notebook": "my_train.ipynb", "n_estimators": 60, "min_recall": 0.75}
    (project / "params" / "own.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    result = signoff("run", "params/own.yaml", cwd=project)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    (run,) = run_folders(project)
    verdict, evidence = read_json(run / "verdict.json"), read_json(run / "evidence.json")
    assert all(stage["status"] == "passed" for stage in verdict["stages"]), verdict["stages"]
    assert evidence["train.model_type"] == "RandomForestClassifier" and evidence["train.min_recall"] == 0.75
    model = joblib.load(run / "artifacts" / "model.joblib")
    assert [name for name, _ in model.steps] == ["preprocess", "forest"]  # the notebook's own pipeline
    reference, _ = datasets.load(params["data"], 42, project / "x")
    test = (pd.read_parquet(run / "artifacts" / "split.parquet")["split"] == "test").to_numpy()
    rows = reference[test]
    assert evidence["validate.roc_auc"] == pytest.approx(
        roc_auc_score(rows["default"], model.predict_proba(rows[evidence["train.features"]])[:, 1]))
    assert evidence["infra.loadable"] == 1

    (project / "params" / "my_train.ipynb").unlink()  # a re-run takes the archived source, not today's file
    again = signoff("rerun", str(run), cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reproduced: every evidence value agrees" in again.stdout


def logged_with_lightgbm(project, name):
    import mlflow
    import mlflow.lightgbm
    from lightgbm import LGBMClassifier
    from mlflow.models import infer_signature

    frame, _ = datasets.synthetic_credit(2000, seed=9)
    X = frame[["income", "debt_ratio"]]
    model = LGBMClassifier(n_estimators=20, verbose=-1).fit(X, frame["default"])
    mlflow_store.connect(mlflow_store.embedded_uri(project / "outputs"))
    with mlflow.start_run():
        mlflow.lightgbm.log_model(model, name="model", registered_model_name=name,
                                  signature=infer_signature(X, model.predict_proba(X.head())),
                                 pip_requirements=REQUIREMENTS)
    return f"models:/{name}/1", model
