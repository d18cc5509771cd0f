"""Split, train and persist the candidate model and its naive baseline.

The split is stored as row positions so later stages take exactly the rows the
model was trained and tested on without copying data.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from runner.config import MODEL_TYPES

# What skops must be told to trust, beyond scikit-learn's estimators, to load a model `build`
# makes.  Loading takes the list from here, never from a model artifact, which could name
# anything; a model that needs more is refused when it is logged.
TRUSTED_TYPES = (
    "builtins.object",
    "functools.partial",
    "numpy.asarray",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",  # a forest's fitted trees: scikit-learn's own node arrays, no code
    # the boosters' scikit-learn wrappers and their boosters, restored from the libraries' own model formats
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "sklearn.utils.validation.check_array",
)
SPLITS = ("train", "valid", "test")


def split(y: pd.Series, test_size: float, valid_size: float, seed: int, task: str = "binary") -> pd.Series:
    """Train/valid/test assignment, one label per row position: stratified for a classifier (every class
    in every split, in proportion), plain random for a regression."""
    positions = np.arange(len(y))
    strata = y if task != "regression" else None
    rest, test = train_test_split(positions, test_size=test_size, stratify=strata, random_state=seed)
    train, valid = train_test_split(
        rest, test_size=valid_size / (1 - test_size), stratify=None if strata is None else y.iloc[rest],
        random_state=seed,
    )
    labels = np.empty(len(y), dtype=object)
    labels[train], labels[valid], labels[test] = "train", "valid", "test"
    return pd.Series(labels, name="split")


def build(
    model_type: str, X: pd.DataFrame, seed: int, max_iter: int, learning_rate: float, max_depth: int = 3,
    task: str = "binary",
) -> Pipeline:
    """A scikit-learn pipeline that takes the raw feature frame, missing values and strings included,
    and learns ``task``: a classifier (binary or multiclass alike) or a regressor.

    ``max_iter``: boosting iterations, solver iterations, or the forest's trees; ``learning_rate`` and
    ``max_depth`` shape the boosters only (a forest's trees grow until their leaves hold 20 rows).
    ``linear`` is logistic regression for a classifier and ridge regression for a regressor.
    """
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numeric = [c for c in X.columns if c not in categorical]
    regression = task == "regression"
    if model_type == "hist_gradient_boosting":
        is_categorical = [True] * len(categorical) + [False] * len(numeric)
        # Shallow trees, large leaves and early stopping: credit tables are small and noisy, and
        # a booster with scikit-learn's defaults memorises them (train AUC 1.0, test far below).
        kind = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        model = kind(
            max_iter=max_iter, learning_rate=learning_rate, max_depth=max_depth, max_leaf_nodes=None,
            min_samples_leaf=50, early_stopping=True, categorical_features=is_categorical, random_state=seed,
        )
        return Pipeline([("encode", _ordinal(categorical, numeric)), ("model", model)])
    if model_type == "random_forest":
        # trees split on missing values themselves (scikit-learn >= 1.4); leaves of 20 rows keep the
        # probabilities smooth enough to calibrate and to learn a threshold from
        kind = RandomForestRegressor if regression else RandomForestClassifier
        model = kind(n_estimators=max_iter, min_samples_leaf=20, random_state=seed)
        return Pipeline([("encode", _ordinal(categorical, numeric)), ("model", model)])
    if model_type in ("xgboost", "lightgbm"):
        return Pipeline([("encode", _ordinal(categorical, numeric)),
                         ("model", _booster(model_type, seed, max_iter, learning_rate, max_depth, regression))])
    if model_type in ("linear", "logistic_regression"):
        if regression and model_type == "logistic_regression":
            raise ValueError("logistic_regression is a classifier: for a regression, model_type linear fits ridge")
        encode = ColumnTransformer(
            _branches(
                ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                              OneHotEncoder(handle_unknown="ignore")), categorical),
                ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            )
        )
        model = Ridge(random_state=seed) if regression else LogisticRegression(max_iter=max_iter, random_state=seed)
        return Pipeline([("encode", encode), ("model", model)])
    raise ValueError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")


def _booster(model_type: str, seed: int, max_iter: int, learning_rate: float, max_depth: int,
             regression: bool) -> Any:
    """XGBoost or LightGBM (the boosters extra) with the built-in booster's regularisation: shallow trees,
    leaves of at least 50 rows.  Both take missing values as they are."""
    if model_type == "xgboost":
        from xgboost import XGBClassifier, XGBRegressor

        return (XGBRegressor if regression else XGBClassifier)(
            n_estimators=max_iter, learning_rate=learning_rate, max_depth=max_depth, min_child_weight=10,
            random_state=seed)
    from lightgbm import LGBMClassifier, LGBMRegressor

    return (LGBMRegressor if regression else LGBMClassifier)(
        n_estimators=max_iter, learning_rate=learning_rate, max_depth=max_depth, min_child_samples=50,
        random_state=seed, verbose=-1)


def _ordinal(categorical: list[str], numeric: list[str]) -> ColumnTransformer:
    """Strings as integer codes (unknown and missing: -1), numbers as they are: for tree models."""
    return ColumnTransformer(
        _branches(
            ("categorical", make_pipeline(
                FunctionTransformer(np.asarray, kw_args={"dtype": object}, feature_names_out="one-to-one"),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
            ), categorical),
            ("numeric", "passthrough", numeric),
        ),
        verbose_feature_names_out=False,
    )


def _branches(*branches: tuple[str, Any, list[str]]) -> list[tuple[str, Any, list[str]]]:
    """The ColumnTransformer branches that have columns.  An empty branch trains fine but breaks
    scikit-learn's HTML display of the fitted pipeline (the notebook's last line shows it)."""
    return [branch for branch in branches if branch[2]]


def baseline(task: str = "binary") -> DummyClassifier | DummyRegressor:
    """The naive alternative every model must beat: predict the training prevalence of each class,
    or the training mean."""
    return DummyRegressor(strategy="mean") if task == "regression" else DummyClassifier(strategy="prior")


def fit_timed(estimator: Any, X: pd.DataFrame, y: pd.Series) -> float:
    """Fit and return the wall seconds it took (training time is release evidence)."""
    start = time.perf_counter()
    estimator.fit(X, y)
    return time.perf_counter() - start


def save(
    folder: Path, model: Any, base: Any, assignment: pd.Series, feature_names: list[str], facts: dict[str, Any]
) -> None:
    """Store what later stages need; ``facts`` (threshold, training time, ...) as JSON beside the model."""
    joblib.dump(model, folder / "model.joblib")
    joblib.dump(base, folder / "baseline.joblib")
    pd.DataFrame({"split": assignment}).to_parquet(folder / "split.parquet", index=False)
    pd.Series(feature_names, name="feature").to_frame().to_parquet(folder / "features.parquet", index=False)
    (folder / "training.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")


def load(folder: Path) -> dict[str, Any]:
    """What the train stage left: model, baseline, split labels, feature names and training facts."""
    if not (folder / "model.joblib").exists():
        raise FileNotFoundError(
            f"{folder / 'model.joblib'} does not exist: run the train stage (02_train.ipynb) first"
        )
    return {
        "model": joblib.load(folder / "model.joblib"),
        "baseline": joblib.load(folder / "baseline.joblib"),
        "split": pd.read_parquet(folder / "split.parquet")["split"],
        "features": pd.read_parquet(folder / "features.parquet")["feature"].tolist(),
        # runs from before task types trained binary models and did not say so
        "facts": {"task": "binary", "classes": ["0", "1"],
                  **json.loads((folder / "training.json").read_text(encoding="utf-8"))},
        "model_bytes": (folder / "model.joblib").stat().st_size,
    }


def trusted_types_needed(model: Any) -> list[str]:
    """Exactly the types skops must trust to load ``model``; refuses one outside :data:`TRUSTED_TYPES`."""
    import skops.io  # here, not at the top: 1.2 s of imports that only the infra stage and loading a logged model use

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    unknown = sorted(set(needed) - set(TRUSTED_TYPES))
    if unknown:
        raise ValueError(f"the model needs types Signoff does not trust: {', '.join(unknown)} "
                         "(add them to runner.analysis.modeling.TRUSTED_TYPES after review)")
    return needed


def load_skops(path: Path) -> Any:
    """A model file saved with skops, trusting only :data:`TRUSTED_TYPES`."""
    import skops.io

    return skops.io.load(path, trusted=list(TRUSTED_TYPES))


def load_champion(champion_dir: str) -> dict[str, Any] | None:
    """The current champion as the run fetched it (model files hash-checked), or None if there is none."""
    if not champion_dir:
        return None
    info = json.loads((Path(champion_dir) / "champion.json").read_text(encoding="utf-8"))
    model = load_skops(Path(info["model_dir"]) / "model.skops")
    return {**info, "model": model, "features": list(model.feature_names_in_)}


def split_rows(trained: dict[str, Any], name: str) -> np.ndarray:
    """Boolean mask of the rows in one split."""
    return (trained["split"] == name).to_numpy()


EVALUATE_ON = ("test", "current")


def evaluation_rows(trained: dict[str, Any], reference: pd.DataFrame, current: pd.DataFrame | None, target: str,
                    evaluate_on: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a model is scored on and their labels: the held-out test split of the training data,
    or, when monitoring with labels, every row of the current data."""
    if evaluate_on == "test":
        rows = reference[split_rows(trained, "test")]
    elif evaluate_on == "current":
        if current is None or target not in current.columns:
            raise ValueError(f"evaluate_on='current' needs current data (data.current_path) with the target "
                             f"column {target!r}")
        rows = current
    else:
        raise ValueError(f"evaluate_on: expected one of {', '.join(EVALUATE_ON)}, got {evaluate_on!r}")
    return rows, rows[target].to_numpy()
