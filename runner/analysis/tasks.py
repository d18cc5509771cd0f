"""Which problem a target poses (binary, multiclass or regression) and how a model's output is read for it.

The task is settled once, from the target column or from ``data.task``, before any notebook
runs: a regression target taken for 200 classes, or a 3-level grade taken for a number, would
be judged by the wrong metrics for the whole run.  Every stage then reads the model the same
way through :func:`predictions`: the positive class's probability for a binary model, one
probability per class for a multiclass one, the predicted value for a regressor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runner.errors import SignoffError

TASKS = ("binary", "multiclass", "regression")
DECLARABLE = ("auto", *TASKS)
MAX_CLASSES = 20  # a target with more distinct labels is refused as a class label: set data.task: regression


def infer(column: pd.Series, declared: str, where: Path | str, name: str) -> str:
    """The task of a target column: ``declared`` checked against the data, or inferred when it is ``auto``.

    Inferred: two distinct values are binary; numbers with fractional values, or more than
    :data:`MAX_CLASSES` distinct integers, are regression; up to :data:`MAX_CLASSES` strings are
    multiclass.  A few distinct integers could be classes or counts: that is the user's call.
    """
    distinct = column.nunique()
    if distinct < 2:
        shown = f" ({plain(column.iloc[0])!r})" if len(column) else ""
        raise SignoffError(f"{where}: target column {name!r} holds a single class{shown} in all {len(column):,} rows; "
                           "a model needs examples of at least two outcomes")
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    whole = numeric and bool(np.all(np.mod(column.to_numpy(dtype=float), 1) == 0))
    if declared == "auto":
        if distinct == 2:
            return "binary"
        if numeric and (not whole or distinct > MAX_CLASSES):
            return "regression"
        if not numeric and distinct <= MAX_CLASSES:
            return "multiclass"
        if numeric:
            raise SignoffError(f"{where}: target column {name!r} holds {distinct} distinct whole numbers: classes or "
                               "a count? Set data.task to multiclass or regression")
        raise SignoffError(f"{where}: target column {name!r} holds {distinct} distinct labels, more than the "
                           f"{MAX_CLASSES} classes Signoff takes; group them, or set data.task: regression if they "
                           "are numbers")
    if declared == "binary" and distinct != 2:
        raise SignoffError(f"{where}: data.task is binary but target column {name!r} holds {distinct} distinct "
                           f"values ({_some(column)}); set data.task to multiclass or regression")
    if declared == "multiclass" and not 3 <= distinct <= MAX_CLASSES:
        hint = "set data.task: binary" if distinct == 2 else f"at most {MAX_CLASSES} classes are taken"
        raise SignoffError(f"{where}: data.task is multiclass but target column {name!r} holds {distinct} distinct "
                           f"values ({_some(column)}); {hint}")
    if declared == "regression" and not numeric:
        raise SignoffError(f"{where}: data.task is regression but target column {name!r} is not numeric "
                           f"({column.dtype}, e.g. {_some(column)}); convert it to numbers or set data.task")
    return declared


def encode(column: pd.Series, task: str, labels: dict[str, Any], where: Path | str, name: str) -> tuple[pd.Series,
                                                                                                         list[str]]:
    """The target as models learn it, and the class names in code order.

    Binary: 0/1, the positive class being ``labels["positive_label"]`` (or 1/True); multiclass:
    codes 0..K-1 in sorted label order (the order scikit-learn gives ``predict_proba``'s columns,
    so a model trained elsewhere on the raw labels reads the same); regression: floats.
    ``labels["classes"]``, when given, fixes the classes (current data must use the training data's).
    """
    if task == "regression":
        return column.astype("float64"), []
    values = _sorted(column.unique().tolist())
    if task == "binary":
        positive = labels.get("positive_label")
        if positive is not None:
            if positive not in values and not labels.get("classes"):  # current data may lack it; training may not
                raise SignoffError(f"{where}: target column {name!r} must hold data.positive_label {positive!r}; "
                                   f"found {sorted(map(str, values))}")
            other = next((v for v in values if v != positive), "other")
            return (column == positive).astype("int64"), [str(other), str(positive)]
        if set(values) <= {0, 1} or set(values) <= {True, False}:
            return column.astype("int64"), ["0", "1"]
        raise SignoffError(f"{where}: target column {name!r} must be 0/1 or boolean, or name data.positive_label; "
                           f"found {sorted(map(str, values))[:10]}")
    classes = labels.get("classes") or [str(v) for v in values]
    codes = column.astype(str).map({label: code for code, label in enumerate(classes)})
    if codes.isna().any():
        unknown = sorted(set(column.astype(str)) - set(classes))
        raise SignoffError(f"{where}: target column {name!r} holds labels the training data does not: "
                           f"{', '.join(unknown[:10])} (classes: {', '.join(classes)})")
    return codes.astype("int64"), classes


def is_classification(task: str) -> bool:
    return task != "regression"


def predictions(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """What every stage scores: P(positive) for binary, an (n, K) probability matrix for multiclass,
    predicted values for regression."""
    if task == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    return proba[:, 1] if task == "binary" else proba


def decisions(pred: np.ndarray, task: str, threshold: float | None = None) -> np.ndarray:
    """The label a classifier's scores decide (binary at the learned threshold, multiclass the most probable)."""
    if task == "binary":
        return (pred >= threshold).astype(int)
    return np.argmax(pred, axis=1)


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so a message says ``1``, not ``np.int64(1)``."""
    return value.item() if isinstance(value, np.generic) else value


def _sorted(values: list[Any]) -> list[Any]:
    """Labels in scikit-learn's order (numbers numerically), or as text when they do not compare."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _some(column: pd.Series) -> str:
    values = sorted(map(str, column.dropna().unique()[:6]))
    return ", ".join(values[:5]) + (", ..." if column.nunique() > 5 else "")
