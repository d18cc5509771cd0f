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

    With ``n_boot`` > 0, every difference and ratio gets an interval at ``level`` (``<figure>_ci_low``,
    ``<figure>_ci_high``) from ``n_boot`` bootstrap resamples of all the compared rows, each figure computed
    from the same resamples, signed group differences folded at 0 (:func:`_gap`): it holds a fair model's 0
    or 1 as often as the level says.
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
        for name, (low, high) in _intervals(y, pred, threshold, codes, len(uniques), task, n_boot, seed, level).items():
            figures[f"{name}_ci_low"], figures[f"{name}_ci_high"] = low, high
    return figures


def _intervals(y: np.ndarray, pred: np.ndarray, threshold: float | None, codes: np.ndarray, n_groups: int,
               task: str, n_boot: int, seed: int, level: float) -> dict[str, tuple[float, float]]:
    """The interval of each difference and ratio :func:`disparities` reports, from one pass of per-group
    weighted sums: the per-group rates, as observed and in every resample, give each figure's interval by
    :func:`_gap` (a ratio min / max is exp(-gap) of the log rates)."""
    def rates(*pairs: tuple[np.ndarray, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group, each numerator's weighted sum over its denominator's, observed and in every resample."""
        table = np.column_stack([column for pair in pairs for column in pair]).astype(np.float64)
        observed = np.stack([np.bincount(codes, weights=column, minlength=n_groups) for column in table.T], axis=-1)
        drawn = resampling.group_sums(table, codes, n_groups, n_boot, seed)
        return [(resampling.rate(observed[:, 2 * k], observed[:, 2 * k + 1]),
                 resampling.rate(drawn[..., 2 * k], drawn[..., 2 * k + 1])) for k in range(len(pairs))]

    rows = np.ones(len(y))
    if task == "binary":
        decided = (pred >= threshold).astype(float)
        selection, tpr, fpr = rates((decided, rows), (y * decided, y), ((1 - y) * decided, 1 - y))
        return {"statistical_parity_difference": _gap([selection], level),
                "disparate_impact_ratio": _gap([selection], level, ratio=True),
                "equal_opportunity_difference": _gap([tpr], level),
                "average_odds_difference": _gap([tpr, fpr], level, mean=True)}
    if task == "multiclass":
        decided = pred.argmax(axis=1)
        right, *given = rates(((decided == y), rows), *(((decided == code), rows) for code in range(pred.shape[1])))
        anyone = [share for share in given if np.nanmax(share[0]) > 0]  # the classes anyone was given
        return {"accuracy_difference": _gap([right], level), "disparate_impact_ratio": _gap(anyone, level, ratio=True)}
    mae, mean_prediction = rates((np.abs(y - pred), rows), (pred, rows))
    best_over_worst = _gap([mae], level, ratio=True)
    return {"mae_difference": _gap([mae], level), "mae_ratio": (1 / best_over_worst[1], 1 / best_over_worst[0]),
            "mean_prediction_difference": _gap([mean_prediction], level),
            "mean_prediction_ratio": _gap([mean_prediction], level, ratio=True)}


def _gap(figures: list[tuple[np.ndarray, np.ndarray]], level: float, ratio: bool = False,
        mean: bool = False) -> tuple[float, float]:
    """The interval of the largest gap between groups of one figure (max - min) or, with several, of the largest
    over all of them (``mean``: of the mean of their gaps, as the average odds difference is); ``ratio``: of
    min / max instead, through the gap of the logs.  Folded signed differences
    (:func:`runner.analysis.resampling.largest_gaps`), which hold a true gap of 0; where a group's rate is 0 or
    undefined (no log, no sign), the percentile interval of the resampled figure instead."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = [(np.log(point), np.log(drawn)) for point, drawn in figures] if ratio else figures
    found = resampling.largest_gaps([point for point, _ in logged], [drawn for _, drawn in logged], level)
    if found is None:
        spreads = [resampling.min_over_max(drawn) if ratio else resampling.spread(drawn) for _, drawn in figures]
        combined = np.mean(spreads, axis=0) if mean else (np.fmin.reduce(spreads) if ratio else np.fmax.reduce(spreads))
        return resampling.percentile_interval(combined, level)
    lows, highs = zip(*found)
    low, high = (np.mean(lows), np.mean(highs)) if mean else (max(lows), max(highs))
    return (float(np.exp(-high)), float(np.exp(-low))) if ratio else (float(low), float(high))


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
