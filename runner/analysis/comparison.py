"""The candidate against the champion, scored on the same rows.

Two point estimates from two runs say little about whether the new model is
better; scoring both models on the same test rows and resampling those rows
together (a paired bootstrap) gives the interval of the difference itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr

from runner.analysis import metrics

COMPARED = {"binary": ("roc_auc", "pr_auc"), "multiclass": ("accuracy", "roc_auc_ovr"), "regression": ("mae", "r2")}


def versus(task: str, y: np.ndarray, new: np.ndarray, old: np.ndarray, thresholds: tuple[float, float] | None,
           n_classes: int, n_boot: int, seed: int, level: float = 0.95) -> dict[str, float]:
    """The candidate against the champion on the same rows: how differently they predict, and the paired
    difference of the task's compared metrics (positive: the candidate scores higher)."""
    found = prediction_difference(task, new, old, thresholds)
    for name in COMPARED[task]:
        delta, low, high = paired_delta(task, y, new, old, name, n_boot, seed, n_classes, level)
        found |= {f"{name}_delta_vs_champion": delta, f"{name}_delta_vs_champion_ci_low": low,
                  f"{name}_delta_vs_champion_ci_high": high}
    return found


def prediction_difference(task: str, new: np.ndarray, old: np.ndarray,
                          thresholds: tuple[float, float] | None = None) -> dict[str, float]:
    """How differently the two models predict the same rows: binary models each decide at their own
    threshold; multiclass ones are compared by their top class and their probabilities' total variation."""
    if task == "regression":
        return {"champion_mean_abs_pred_diff": float(np.mean(np.abs(new - old))),
                "champion_rank_correlation": float(spearmanr(new, old).statistic)}
    if task == "multiclass":
        return {"champion_disagreement": float(np.mean(new.argmax(axis=1) != old.argmax(axis=1))),
                "champion_mean_abs_prob_diff": float(np.mean(np.abs(new - old).sum(axis=1) / 2))}
    t_new, t_old = thresholds
    return {
        "champion_disagreement": float(np.mean((new >= t_new) != (old >= t_old))),
        "champion_mean_abs_prob_diff": float(np.mean(np.abs(new - old))),
        "champion_rank_correlation": float(spearmanr(new, old).statistic),
    }


def paired_delta(task: str, y: np.ndarray, new: np.ndarray, old: np.ndarray, name: str, n_boot: int, seed: int,
                 n_classes: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``name`` of the new model minus that of the old, and its interval at ``level``: both models scored on
    the same resamples of the rows, so the interval is that of the difference itself."""
    statistic = metrics.statistics(task, y, n_classes)[name]
    resampled = [metrics.resampled(task, y, pred, [name], n_boot, seed, n_classes)[name] for pred in (new, old)]
    low, high = metrics.interval(resampled[0] - resampled[1], len(y), level)
    return statistic(y, new) - statistic(y, old), low, high


def importance_shift(new: dict[str, float], old: dict[str, float], top: int = 5) -> dict[str, Any]:
    """Rank correlation of global importances over the features both models know, and the top-``top`` churn."""
    shared = sorted(set(new) & set(old))
    correlation = float(spearmanr([new[f] for f in shared],
                                  [old[f] for f in shared]).statistic) if len(shared) > 1 else float("nan")
    top_new = sorted(new, key=new.get, reverse=True)[:top]
    top_old = sorted(old, key=old.get, reverse=True)[:top]
    return {
        "rank_correlation": correlation,
        "entered_top": [f for f in top_new if f not in top_old],
        "left_top": [f for f in top_old if f not in top_new],
    }


def glued_mapping(evidence: dict[str, Any], prefix: str) -> dict[str, float]:
    """A mapping a stage glued, back from the flat evidence (``explain.mean_abs_shap.income`` -> ``income``)."""
    return {key[len(prefix):]: value for key, value in evidence.items() if key.startswith(prefix)}
