"""Held-out metrics and the decision threshold, as plain floats ready to be glued as evidence."""

from __future__ import annotations

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
        "roc_auc": float(roc_auc_score(y, proba)),
        "pr_auc": float(average_precision_score(y, proba)),
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
