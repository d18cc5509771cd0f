"""The candidate against the champion, scored on the same rows.

Two point estimates from two runs say little about whether the new model is
better; scoring both models on the same test rows and resampling those rows
together (a paired bootstrap) gives the interval of the difference itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from runner.analysis import metrics


def prediction_difference(p_new: np.ndarray, p_old: np.ndarray, t_new: float, t_old: float) -> dict[str, float]:
    """How differently the two models decide on the same rows, each at its own threshold."""
    return {
        "champion_disagreement": float(np.mean((p_new >= t_new) != (p_old >= t_old))),
        "champion_mean_abs_prob_diff": float(np.mean(np.abs(p_new - p_old))),
        "champion_rank_correlation": float(spearmanr(p_new, p_old).statistic),
    }


def paired_delta(
    y: np.ndarray, p_new: np.ndarray, p_old: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float], n_boot: int, seed: int,
) -> tuple[float, float, float]:
    """``metric(new) - metric(old)`` and its 95% interval, the rows resampled once for both models."""
    both = np.column_stack([p_new, p_old])

    def delta(y_rows: np.ndarray, p_rows: np.ndarray) -> float:
        return metric(y_rows, p_rows[:, 0]) - metric(y_rows, p_rows[:, 1])

    low, high = metrics.bootstrap_ci(y, both, delta, n_boot, seed)
    return delta(y, both), low, high


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
