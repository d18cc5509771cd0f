"""Does the model treat the groups of a sensitive feature alike?  Computed with fairlearn's MetricFrame.

Groups smaller than ``min_group_size`` are listed in the per-group table but
left out of the disparity figures: a rate measured on a dozen rows is noise,
and a gate on it would block (or pass) by chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import precision_score, roc_auc_score

from runner.records import NOT_APPLICABLE

BOOT_ROWS = 20_000  # rows a fairness bootstrap resamples at most (see disparities)


def group_table(y: np.ndarray, score: np.ndarray, threshold: float, groups: pd.Series) -> pd.DataFrame:
    """Per group: rows, selection rate, TPR, FPR, precision and ROC AUC."""
    decided = (score >= threshold).astype(int)
    frame = MetricFrame(metrics=_decision_metrics(), y_true=y, y_pred=decided, sensitive_features=groups)
    table = frame.by_group.copy()
    table["roc_auc"] = MetricFrame(metrics=_auc, y_true=y, y_pred=score, sensitive_features=groups).by_group
    table["count"] = table["count"].astype(int)
    return table


def disparities(
    y: np.ndarray,
    score: np.ndarray,
    threshold: float,
    groups: pd.Series,
    min_group_size: int,
    n_boot: int = 0,
    seed: int = 0,
    boot_rows: int = BOOT_ROWS,
) -> dict[str, Any]:
    """The fairness figures over the groups with at least ``min_group_size`` rows.

    ``statistical_parity_difference``, ``equal_opportunity_difference`` and the two
    halves of ``average_odds_difference`` are max - min over groups (0 is parity);
    ``disparate_impact_ratio`` is min / max selection rate (1 is parity, the
    four-fifths rule asks for >= 0.8).  With ``n_boot`` > 0, fairlearn's bootstrap
    gives 95% intervals of the differences.  Above ``boot_rows`` rows the bootstrap runs
    on a random ``boot_rows`` of them (fairlearn rebuilds a MetricFrame per resample:
    minutes on 200,000 rows) and each interval's distance from the sample's estimate is
    scaled by sqrt(m/n) around the full-data estimate (the m-out-of-n bootstrap).
    """
    sizes = pd.Series(groups).value_counts()
    kept = sizes[sizes >= min_group_size].index
    excluded = sorted(map(str, sizes[sizes < min_group_size].index))
    rows = np.asarray(pd.Series(groups).isin(kept))
    if len(kept) < 2:
        shown = ", ".join(repr(str(g)) for g in sizes.index[:5])
        why = (f"a single group ({shown}) in the test rows: there is nothing to compare it with" if len(sizes) == 1 else
               f"{len(kept)} of {len(sizes)} groups have at least min_group_size={min_group_size} test rows: "
               "no disparity can be measured")
        return {"excluded_groups": excluded, "groups_compared": int(len(kept)), NOT_APPLICABLE: why}
    decided = (score[rows] >= threshold).astype(int)
    kept_groups = np.asarray(groups)[rows]
    frame = MetricFrame(metrics=_decision_metrics(), y_true=y[rows], y_pred=decided, sensitive_features=kept_groups)
    aucs = MetricFrame(metrics=_auc, y_true=y[rows], y_pred=score[rows], sensitive_features=kept_groups)
    difference, ratio = frame.difference(), frame.ratio()
    figures: dict[str, Any] = {
        "disparate_impact_ratio": float(ratio["selection_rate"]),
        "statistical_parity_difference": float(difference["selection_rate"]),
        "equal_opportunity_difference": float(difference["tpr"]),
        "average_odds_difference": float((difference["tpr"] + difference["fpr"]) / 2),
        "worst_group_auc": float(aucs.group_min()),
        "groups_compared": int(len(kept)),
        "excluded_groups": excluded,
    }
    if n_boot:
        intervals = _difference_intervals(y[rows], decided, kept_groups, n_boot, seed, boot_rows)
        for name, metric in (("statistical_parity_difference", "selection_rate"), ("equal_opportunity_difference",
                                                                                   "tpr")):
            estimate = figures[name]
            figures[f"{name}_ci_low"], figures[f"{name}_ci_high"] = (estimate + d for d in intervals[metric])
    return figures


def _difference_intervals(y: np.ndarray, decided: np.ndarray, groups: np.ndarray, n_boot: int, seed: int,
                          boot_rows: int) -> dict[str, tuple[float, float]]:
    """95% bootstrap interval of each rate difference, as offsets from the estimate on the rows used."""
    scale = 1.0
    if len(y) > boot_rows:
        scale = float(np.sqrt(boot_rows / len(y)))
        picked = np.random.default_rng(seed).choice(len(y), boot_rows, replace=False)
        y, decided, groups = y[picked], decided[picked], groups[picked]
    # only the two rates the intervals are reported for: fairlearn recomputes every metric on every resample
    metrics = {"selection_rate": selection_rate, "tpr": true_positive_rate}
    point = MetricFrame(metrics=metrics, y_true=y, y_pred=decided, sensitive_features=groups).difference()
    resampled = MetricFrame(metrics=metrics, y_true=y, y_pred=decided, sensitive_features=groups, n_boot=n_boot,
                            ci_quantiles=[0.025, 0.975], random_state=seed)
    low, high = resampled.difference_ci()
    return {m: ((float(low[m]) - float(point[m])) * scale, (float(high[m]) - float(point[m])) * scale) for m in metrics}


def _decision_metrics() -> dict[str, Any]:
    return {
        "count": count,
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": lambda y_true, y_pred: precision_score(y_true, y_pred, zero_division=0),
    }


def _auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, or NaN for a group holding one class only (where it is undefined)."""
    return float(roc_auc_score(y_true, score)) if len(np.unique(y_true)) == 2 else float("nan")
