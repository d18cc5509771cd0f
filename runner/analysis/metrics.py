"""Held-out metrics and the decision threshold, as plain floats ready to be glued as evidence."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Threshold-free metrics of predicted probabilities of the positive class."""
    return {
        "roc_auc": roc_auc(y, proba),
        "pr_auc": pr_auc(y, proba),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y, proba)),
    }


def threshold_for_recall(y: np.ndarray, proba: np.ndarray, min_recall: float) -> float:
    """The highest threshold whose recall still meets the requirement.

    The highest such threshold has the best precision among those that satisfy
    the stated recall, which is what "catch at least 80% of defaults" asks for.
    """
    _, recall, thresholds = precision_recall_curve(y, proba)
    meets = recall[:-1] >= min_recall
    if not meets.any():
        return float(thresholds.min())
    return float(thresholds[meets].max())


def at_threshold(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (proba >= threshold).astype(int)
    return {
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
    }


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """Row-weighted gap between predicted and observed default rates over equal-width bins."""
    bins = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in np.unique(bins):
        members = bins == b
        error += members.mean() * abs(y[members].mean() - proba[members].mean())
    return float(error)


def bootstrap_ci(
    y: np.ndarray,
    proba: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of a metric over resamples of the rows, so a gate can use the lower bound.

    Resamples that hold a single class (where ROC AUC is undefined) are drawn again.
    """
    rng = np.random.default_rng(seed)
    values: list[float] = []
    while len(values) < n_boot:
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() != y[rows].max():
            values.append(statistic(y[rows], proba[rows]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y, proba))


def pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(average_precision_score(y, proba))


def recall_at(threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda y, proba: float(recall_score(y, (proba >= threshold).astype(int), zero_division=0))
