"""Does the model treat the groups of a sensitive feature alike, for each task?  Computed with fairlearn's
MetricFrame; their intervals with a bootstrap of per-group sums (:mod:`runner.analysis.resampling`).

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

from runner.analysis import resampling
from runner.records import NOT_APPLICABLE


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
    task: str = "binary",
    classes: list[str] | None = None,
    level: float = 0.95,
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

    With ``n_boot`` > 0, every difference and ratio gets a percentile interval at ``level``
    (``<figure>_ci_low``, ``<figure>_ci_high``) from ``n_boot`` bootstrap resamples of all the
    compared rows, each figure computed from the same resamples.
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
        figures = _binary(y, pred, (pred >= threshold).astype(int), kept_groups)
    elif task == "multiclass":
        figures = _multiclass(y, pred.argmax(axis=1), kept_groups, classes or [])
    else:
        figures = _regression(y, pred, kept_groups)
    figures |= {"groups_compared": int(len(kept)), "excluded_groups": excluded, "n_rows": int(rows.sum()),
                "smallest_group_rows": int(sizes[kept].min())}
    if n_boot:
        codes, uniques = pd.factorize(kept_groups)
        for name, samples in _resampled(y, pred, threshold, codes, len(uniques), task, n_boot, seed).items():
            figures[f"{name}_ci_low"], figures[f"{name}_ci_high"] = resampling.percentile_interval(samples, level)
    return figures


def _resampled(y: np.ndarray, pred: np.ndarray, threshold: float | None, codes: np.ndarray, n_groups: int,
               task: str, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Each difference and ratio :func:`disparities` reports, in every resample, from one pass of per-group
    weighted sums."""
    def sums(*columns: np.ndarray) -> list[np.ndarray]:
        found = resampling.group_sums(np.column_stack(columns), codes, n_groups, n_boot, seed)
        return [found[..., i] for i in range(len(columns))]

    rows = np.ones(len(y))
    if task == "binary":
        decided = (pred >= threshold).astype(float)
        n, chosen, positives, caught, negatives, false_alarms = sums(
            rows, decided, y, y * decided, 1 - y, (1 - y) * decided)
        selection = resampling.rate(chosen, n)
        tpr, fpr = resampling.rate(caught, positives), resampling.rate(false_alarms, negatives)
        return {"statistical_parity_difference": resampling.spread(selection),
                "disparate_impact_ratio": resampling.min_over_max(selection),
                "equal_opportunity_difference": resampling.spread(tpr),
                "average_odds_difference": (resampling.spread(tpr) + resampling.spread(fpr)) / 2}
    if task == "multiclass":
        decided = pred.argmax(axis=1)
        n, right, *given = sums(rows, (decided == y).astype(float),
                                *((decided == code).astype(float) for code in range(pred.shape[1])))
        by_class = np.column_stack([resampling.min_over_max(resampling.rate(g, n)) for g in given])
        return {"accuracy_difference": resampling.spread(resampling.rate(right, n)),
                "disparate_impact_ratio": np.fmin.reduce(by_class, axis=1)}  # over the classes anyone was given
    n, errors, predicted = sums(rows, np.abs(y - pred), pred)
    mae, mean_prediction = resampling.rate(errors, n), resampling.rate(predicted, n)
    best, worst = resampling.extremes(mae)
    return {"mae_difference": worst - best, "mae_ratio": resampling.rate(worst, best),
            "mean_prediction_difference": resampling.spread(mean_prediction),
            "mean_prediction_ratio": resampling.min_over_max(mean_prediction)}


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
