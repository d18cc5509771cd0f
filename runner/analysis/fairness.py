"""Does the model treat the groups of a sensitive feature alike, for each task?  Computed with fairlearn's
MetricFrame.

Groups smaller than ``min_group_size`` are listed in the per-group table but
left out of the disparity figures: a rate measured on a dozen rows is noise,
and a gate on it would block (or pass) by chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score, mean_absolute_error, precision_score, roc_auc_score

from runner.records import NOT_APPLICABLE

BOOT_ROWS = 20_000  # rows a fairness bootstrap resamples at most (see disparities)


def group_table(y: np.ndarray, pred: np.ndarray, threshold: float | None, groups: pd.Series, task: str = "binary",
                classes: list[str] | None = None) -> pd.DataFrame:
    """Per group: rows, and the task's per-group metrics (binary: selection rate, TPR, FPR, precision, ROC AUC;
    multiclass: accuracy and the share of rows given each class; regression: MAE, mean prediction, mean actual)."""
    if task == "binary":
        frame = MetricFrame(metrics=_decision_metrics(), y_true=y, y_pred=(pred >= threshold).astype(int),
                            sensitive_features=groups)
        table = frame.by_group.copy()
        table["roc_auc"] = MetricFrame(metrics=_auc, y_true=y, y_pred=pred, sensitive_features=groups).by_group
    elif task == "multiclass":
        table = MetricFrame(metrics=_multiclass_metrics(classes or []), y_true=y, y_pred=pred.argmax(axis=1),
                            sensitive_features=groups).by_group.copy()
    else:
        table = MetricFrame(metrics=_regression_metrics(), y_true=y, y_pred=pred, sensitive_features=groups).by_group
        table = table.copy()
    table["count"] = table["count"].astype(int)
    return table


def plotted(table: pd.DataFrame) -> list[str]:
    """The three per-group figures worth a bar chart: the first three after the row count."""
    return [c for c in table.columns if c != "count"][:3]


def disparities(
    y: np.ndarray,
    pred: np.ndarray,
    threshold: float | None,
    groups: pd.Series,
    min_group_size: int,
    n_boot: int = 0,
    seed: int = 0,
    boot_rows: int = BOOT_ROWS,
    task: str = "binary",
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """The fairness figures over the groups with at least ``min_group_size`` rows.

    Binary: ``statistical_parity_difference``, ``equal_opportunity_difference`` and the two
    halves of ``average_odds_difference`` are max - min over groups (0 is parity);
    ``disparate_impact_ratio`` is min / max selection rate (1 is parity, the
    four-fifths rule asks for >= 0.8).  Multiclass: ``accuracy_difference`` (max - min) and, per
    class, the disparate-impact ratio of the share of rows given that class
    (``disparate_impact_ratio_by_class``), whose smallest is ``disparate_impact_ratio``.  Regression
    (the bounded-group-loss view): ``mae_difference`` and ``mae_ratio`` (worst over best group error),
    and mean-prediction parity (``mean_prediction_difference``, ``mean_prediction_ratio`` min / max).

    With ``n_boot`` > 0, fairlearn's bootstrap gives 95% intervals of the differences.  Above
    ``boot_rows`` rows the bootstrap runs on a random ``boot_rows`` of them (fairlearn rebuilds a
    MetricFrame per resample: minutes on 200,000 rows) and each interval's distance from the sample's
    estimate is scaled by sqrt(m/n) around the full-data estimate (the m-out-of-n bootstrap).
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
    kept_groups = np.asarray(groups)[rows]
    y, pred = y[rows], pred[rows]
    if task == "binary":
        decided = (pred >= threshold).astype(int)
        figures, intervals = _binary(y, pred, decided, kept_groups), {"statistical_parity_difference": (
            "selection_rate", selection_rate), "equal_opportunity_difference": ("tpr", true_positive_rate)}
    elif task == "multiclass":
        decided = pred.argmax(axis=1)
        figures, intervals = _multiclass(y, decided, kept_groups, classes or []), {"accuracy_difference": (
            "accuracy", accuracy_score)}
    else:
        decided = pred
        figures, intervals = _regression(y, pred, kept_groups), {
            "mae_difference": ("mae", mean_absolute_error), "mean_prediction_difference": ("mean_prediction",
                                                                                           _mean_prediction)}
    figures |= {"groups_compared": int(len(kept)), "excluded_groups": excluded}
    if n_boot:
        offsets = _difference_intervals(y, decided, kept_groups, n_boot, seed, boot_rows, dict(intervals.values()))
        for name, (metric, _) in intervals.items():
            estimate = figures[name]
            figures[f"{name}_ci_low"], figures[f"{name}_ci_high"] = (estimate + d for d in offsets[metric])
    return figures


def _binary(y: np.ndarray, score: np.ndarray, decided: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    frame = MetricFrame(metrics=_decision_metrics(), y_true=y, y_pred=decided, sensitive_features=groups)
    aucs = MetricFrame(metrics=_auc, y_true=y, y_pred=score, sensitive_features=groups)
    difference, ratio = frame.difference(), frame.ratio()
    return {
        "disparate_impact_ratio": float(ratio["selection_rate"]),
        "statistical_parity_difference": float(difference["selection_rate"]),
        "equal_opportunity_difference": float(difference["tpr"]),
        "average_odds_difference": float((difference["tpr"] + difference["fpr"]) / 2),
        "worst_group_auc": float(aucs.group_min()),
    }


def _multiclass(y: np.ndarray, decided: np.ndarray, groups: np.ndarray, classes: list[str]) -> dict[str, Any]:
    frame = MetricFrame(metrics=_multiclass_metrics(classes), y_true=y, y_pred=decided, sensitive_features=groups)
    ratio = frame.ratio()
    by_class = {label: float(ratio[f"selection_rate_{label}"]) for label in classes}
    return {
        "accuracy_difference": float(frame.difference()["accuracy"]),
        "worst_group_accuracy": float(frame.group_min()["accuracy"]),
        "disparate_impact_ratio": min(by_class.values()),
        "disparate_impact_ratio_by_class": by_class,
    }


def _regression(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    frame = MetricFrame(metrics=_regression_metrics(), y_true=y, y_pred=pred, sensitive_features=groups)
    worst, best = frame.group_max()["mae"], frame.group_min()["mae"]
    return {
        "mae_difference": float(worst - best),
        "mae_ratio": float(worst / best) if best > 0 else float("inf"),
        "worst_group_mae": float(worst),
        "mean_prediction_difference": float(frame.difference()["mean_prediction"]),
        "mean_prediction_ratio": float(frame.ratio()["mean_prediction"]),
    }


def _difference_intervals(y: np.ndarray, decided: np.ndarray, groups: np.ndarray, n_boot: int, seed: int,
                          boot_rows: int, metrics: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """95% bootstrap interval of each metric's max - min difference, as offsets from the estimate on the
    rows used.  Only the metrics asked for: fairlearn recomputes every metric on every resample."""
    scale = 1.0
    if len(y) > boot_rows:
        scale = float(np.sqrt(boot_rows / len(y)))
        picked = np.random.default_rng(seed).choice(len(y), boot_rows, replace=False)
        y, decided, groups = y[picked], decided[picked], groups[picked]
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


def _multiclass_metrics(classes: list[str]) -> dict[str, Any]:
    shares = {f"selection_rate_{label}": _share_of(code) for code, label in enumerate(classes)}
    return {"count": count, "accuracy": accuracy_score, **shares}


def _share_of(code: int) -> Any:
    return lambda y_true, y_pred: float(np.mean(np.asarray(y_pred) == code))


def _regression_metrics() -> dict[str, Any]:
    return {"count": count, "mae": mean_absolute_error, "mean_prediction": _mean_prediction,
            "mean_actual": lambda y_true, y_pred: float(np.mean(y_true))}


def _mean_prediction(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_pred))


def _auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, or NaN for a group holding one class only (where it is undefined)."""
    return float(roc_auc_score(y_true, score)) if len(np.unique(y_true)) == 2 else float("nan")
