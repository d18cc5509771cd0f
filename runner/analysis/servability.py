"""Package the model as it will be served, and prove it loads where it will be served.

As TFX's InfraValidator does: logging a model is not enough, it has to load and
answer in a process that shares nothing with the one that trained it.  The check
downloads the logged model from the store, then calls :func:`serve_once` in a fresh process
(:mod:`runner.analysis.fresh`: forked from the run's fork server, else a new interpreter), which loads
that copy with ``mlflow.pyfunc.load_model`` and scores the input example logged with it (the store is
read once, by the kernel that has it open).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd

from runner import mlflow_store
from runner.analysis import fresh, modeling, workspace
from runner.errors import SignoffError

CHECK_TIMEOUT = 300  # seconds the fresh process may take to load and score
# imported inside functions, so that processes that never log or load a model go without them; a fork server
# that runs stages importing this module imports them ahead (runner/run/forkserver.py)
PRELOAD = ("mlflow.sklearn", "mlflow.models", "mlflow.pyfunc", "mlflow.store.tracking.sqlalchemy_store", "skops.io")


def tracking_uri() -> str:
    """The store the run gave this kernel (``MLFLOW_TRACKING_URI``), or the scratch store when run by hand."""
    return os.environ.get("MLFLOW_TRACKING_URI") or mlflow_store.embedded_uri(workspace.scratch_folder())


def serving_frame(X: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as floats: a served request with a missing value cannot be an integer column,
    and a signature that says int would reject it."""
    return X.astype({c: "float64" for c in X.columns if pd.api.types.is_integer_dtype(X[c])})


def log_model(model: Any, X: pd.DataFrame, mlflow_run_id: str, example_rows: int = 5,
              task: str = "binary") -> dict[str, Any]:
    """Log with ``mlflow.sklearn.log_model`` (skops, exactly the trusted types the model needs,
    signature and input example); returns the model URI and what was logged.  Served, a classifier
    answers with its class probabilities, a regressor with its predictions."""
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, imported by MLflow, in a kernel
    client = mlflow_store.connect(tracking_uri())
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    if not mlflow_run_id:
        mlflow_run_id = mlflow_store.start_run(client, "scratch", workspace.scratch_folder(), "by-hand")
    needed = modeling.trusted_types_needed(model)
    example = serving_frame(X.head(example_rows))
    predict_fn = "predict" if task == "regression" else "predict_proba"
    signature = infer_signature(serving_frame(X), getattr(model, predict_fn)(example))
    with mlflow.start_run(run_id=mlflow_run_id), _requirements_taken_as_given():
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, input_example=example, serialization_format="skops",
            skops_trusted_types=needed, pyfunc_predict_fn=predict_fn,
            # named, not inferred: inference imports the model in a subprocess and takes ~10 s
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        )
    return {"model_uri": info.model_uri, "trusted_types": needed, "mlflow_run_id": mlflow_run_id,
            "signature_inputs": len(signature.inputs.inputs)}


@contextmanager
def _requirements_taken_as_given() -> Iterator[None]:
    """MLflow checks the pip requirements against every installed distribution, about 2 s of metadata scans
    each time, only to warn of a mismatch: once when it writes them, once more when it loads the model back
    to try the input example.  They were just read from this very environment, so there is none."""
    import mlflow.pyfunc
    from mlflow.utils import environment

    with mock.patch.object(environment, "warn_dependency_requirement_mismatches", lambda requirements: None), \
            mock.patch.object(mlflow.pyfunc, "warn_dependency_requirement_mismatches", lambda requirements: None):
        yield


def check_loadable(model_uri: str) -> dict[str, Any]:
    """Download ``model_uri`` and load and score it in a fresh process; ``loadable`` 1 or 0 and why."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            mlflow_store.connect(tracking_uri())
            import mlflow.artifacts

            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        except Exception as exc:  # noqa: BLE001 - whatever the store says is why the model is not loadable
            return {"loadable": 0, "error": f"cannot download {model_uri}: {type(exc).__name__}: {exc}",
                    "seconds": round(time.monotonic() - start, 3)}
        try:
            # the fresh process compares the artifact's trusted types with Signoff's list before loading
            served = fresh.call("runner.analysis.servability:serve_once", [local],
                                {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}, CHECK_TIMEOUT)
        except (fresh.Failed, TimeoutError) as exc:
            return {"loadable": 0, "error": str(exc), "seconds": round(time.monotonic() - start, 3)}
    return {"loadable": 1, "error": "", "seconds": round(time.monotonic() - start, 3), **served}


NATIVE_XGBOOST = ("xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor")  # mlflow.xgboost models it loads
SKLEARN_LIKE = ("sklearn", "lightgbm")  # flavours that store a scikit-learn(-API) model with skops (or a pickle)


def logged_model(model_uri: str, allow_pickle: bool, features: list[str], key: str, store: str) -> dict[str, Any]:
    """What a model logged elsewhere is, read from its MLmodel file alone (nothing of it is loaded):
    refuses, naming ``key``, a URI that does not resolve, a pickle unless ``allow_pickle``, skops types
    Signoff does not trust, and inputs the data's feature columns do not provide."""
    import mlflow
    import yaml

    try:
        with tempfile.TemporaryDirectory() as tmp:
            described = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{model_uri.rstrip('/')}/MLmodel",
                                                                 dst_path=tmp)).read_text(encoding="utf-8")
    except Exception as exc:
        raise SignoffError(f"{key}: {model_uri} does not resolve in MLflow at {store} "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0]}); expected models:/NAME/VERSION, "
                           "models:/NAME@ALIAS or runs:/RUN_ID/PATH of a logged model") from None
    meta = yaml.safe_load(described)
    flavors = meta.get("flavors", {})
    native = flavors.get("xgboost")
    if native is not None and "sklearn" not in flavors:  # mlflow.xgboost: the booster in XGBoost's own format
        _require_boosters(key, model_uri, "XGBoost")
        if native.get("model_class") not in NATIVE_XGBOOST:
            raise SignoffError(f"{key}: {model_uri} is an XGBoost {native.get('model_class')}; Signoff scores "
                               f"{' or '.join(NATIVE_XGBOOST)} (log the scikit-learn wrapper with mlflow.xgboost)")
        described_model = {"serialization": "xgboost", "model_class": native["model_class"], "file": native["data"]}
        return {**described_model, "features": _signature_inputs(meta, model_uri, features, key)}
    flavour = next((name for name in SKLEARN_LIKE if name in flavors), None)
    if flavour is None:
        raise SignoffError(f"{key}: {model_uri} has no scikit-learn, XGBoost or LightGBM flavour (it has "
                           f"{', '.join(flavors) or 'none'}); log the model with mlflow.sklearn.log_model (any "
                           "scikit-learn-compatible estimator), mlflow.xgboost or mlflow.lightgbm")
    described_flavour = flavors[flavour]
    if flavour == "lightgbm":
        _require_boosters(key, model_uri, "LightGBM")
        if described_flavour.get("model_class", "").endswith(".Booster"):
            raise SignoffError(f"{key}: {model_uri} is a bare LightGBM Booster, which cannot score a data frame the "
                               "way Signoff does; log the scikit-learn wrapper (LGBMClassifier, LGBMRegressor)")
    serialization = described_flavour.get("serialization_format", "cloudpickle")
    if serialization != "skops" and not allow_pickle:
        raise SignoffError(f"{key}: {model_uri} is stored as a pickle ({serialization}), and loading a pickle runs "
                           "whatever code its author put in it; log it with serialization_format='skops', or set "
                           "stages.train.allow_pickle: true if you trust whoever wrote it (the verdict will say so)")
    untrusted = sorted(set(described_flavour.get("skops_trusted_types") or []) - set(modeling.TRUSTED_TYPES))
    if serialization == "skops" and untrusted:
        raise SignoffError(f"{key}: {model_uri} asks skops to trust {', '.join(untrusted)}, which Signoff does not "
                           "trust (add them to runner.analysis.modeling.TRUSTED_TYPES after review)")
    return {"serialization": serialization, "flavour": flavour,
            "features": _signature_inputs(meta, model_uri, features, key)}


def _require_boosters(key: str, model_uri: str, library: str) -> None:
    if importlib.util.find_spec(library.lower()) is None:
        raise SignoffError(f"{key}: {model_uri} is a {library} model, and the boosters extra is not installed: "
                           "pip install -e '.[boosters]'")


def _signature_inputs(meta: dict[str, Any], model_uri: str, features: list[str], key: str) -> list[str]:
    inputs = [column["name"] for column in json.loads((meta.get("signature") or {}).get("inputs") or "[]")
              if "name" in column]
    if not inputs:
        raise SignoffError(f"{key}: {model_uri} was logged without a signature naming its input columns; log it with "
                           "signature=infer_signature(X, ...) so that Signoff can check it against the data")
    lacking = [c for c in inputs if c not in features]
    if lacking:
        raise SignoffError(f"{key}: {model_uri} expects columns the data's features lack: {', '.join(lacking)} "
                           f"(features: {', '.join(features)})")
    return inputs


def load_logged(model_uri: str, allow_pickle: bool, features: list[str]) -> tuple[Any, list[str]]:
    """The scikit-learn model at ``model_uri`` and the feature columns it takes, after :func:`logged_model`'s
    checks: a skops file is loaded trusting Signoff's own list, an XGBoost model from XGBoost's own format into
    a class of :data:`NATIVE_XGBOOST`, a pickle only with ``allow_pickle``."""
    import mlflow

    described = logged_model(model_uri, allow_pickle, features, "model_uri", tracking_uri())
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        if described["serialization"] == "skops":
            (path,) = local.glob("*.skops")
            return modeling.load_skops(path), described["features"]
        if described["serialization"] == "xgboost":  # the class from Signoff's own list, the trees from XGBoost's file
            import xgboost

            model = getattr(xgboost, described["model_class"].rsplit(".", 1)[1])()
            model.load_model(str(local / described["file"]))
            return model, described["features"]
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"  # allow_pickle: the params file said so
        loader = importlib.import_module(f"mlflow.{described['flavour']}")
        return loader.load_model(str(local)), described["features"]


def serve_once(model_dir: str) -> dict[str, Any]:
    """In the fresh process: check trusted types and hash, load with pyfunc, score the example."""
    import mlflow.pyfunc
    import yaml

    local = Path(model_dir)
    flavor = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8"))["flavors"]["sklearn"]
    declared = flavor.get("skops_trusted_types") or []
    untrusted = sorted(set(declared) - set(modeling.TRUSTED_TYPES))
    if untrusted:
        raise SystemExit(f"the artifact asks to trust {', '.join(untrusted)}, which Signoff does not trust")
    # the requirements were just written from this very environment: skip MLflow's 2-3 s
    # scan of every installed distribution for mismatches
    model = mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
    example = model.input_example
    if example is None:
        raise SystemExit("the logged model has no input example to score")
    scores = model.predict(example)
    shape = getattr(scores, "shape", (len(scores),))
    return {"rows": int(len(scores)), "outputs": int(shape[1]) if len(shape) > 1 else 1,
            "model_sha256": mlflow_store.model_files_sha256(local)}
