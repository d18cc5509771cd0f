"""Held-out metrics of every task, their bootstrap intervals (resamples as row weights), and the binary decision
threshold, as plain floats ready to be glued as evidence."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    median_absolute_error,
    precision_recall_curve,
    precision_recall_fscore_support,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from runner.analysis import resampling, weighted_metrics


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


def resampled(task: str, y: np.ndarray, pred: np.ndarray, names: list[str], n_boot: int, seed: int,
              n_classes: int = 0, threshold: float | None = None) -> dict[str, np.ndarray]:
    """Each named metric in each of ``n_boot`` bootstrap resamples of the rows (NaN where it is undefined),
    computed on the resamples' row weights (:mod:`runner.analysis.weighted_metrics`).  The same ``seed`` draws
    the same resamples: two models scored with one seed are compared on the same rows (a paired bootstrap)."""
    functions = weighted_metrics.metrics_for(task, n_classes, threshold)
    blocks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for weights in resampling.bootstrap_weights(len(y), n_boot, seed):
        for name in names:
            blocks[name].append(functions[name](y, pred, weights))
    return {name: np.concatenate(found) for name, found in blocks.items()}


def intervals(task: str, y: np.ndarray, pred: np.ndarray, names: list[str], n_boot: int, seed: int, level: float = 0.95,
              n_classes: int = 0, threshold: float | None = None) -> dict[str, tuple[float, float]]:
    """Percentile intervals at ``level`` of the named metrics, all from the same resamples of the rows."""
    found = resampled(task, y, pred, names, n_boot, seed, n_classes, threshold)
    return {name: interval(samples, len(y), level) for name, samples in found.items()}


def interval(samples: np.ndarray, n_rows: int, level: float) -> tuple[float, float]:
    """The percentile interval of a figure's resampled values, those where it is undefined left out; a figure
    undefined in more than 19 resamples in 20 (a class too rare to be drawn) is an error, not an interval
    made from a handful of lucky resamples."""
    if np.mean(~np.isnan(samples)) < 0.05:
        raise ValueError(f"a class is too rare in these {n_rows:,} rows to bootstrap: fewer than one resample "
                         "in 20 holds every class")
    return resampling.percentile_interval(samples, level)


# The headline metrics of each task, each with a bootstrap interval; for these, lower is better
HEADLINE = {
    "binary": ("roc_auc", "pr_auc"),
    "multiclass": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "log_loss", "roc_auc_ovr"),
    "regression": ("mae", "rmse", "r2", "median_ae", "mape"),
}
LOWER_IS_BETTER = {"log_loss", "brier", "mae", "rmse", "median_ae", "mape"}
GAP_METRIC = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "r2"}  # train-test gap on this


def statistics(task: str, y: np.ndarray, n_classes: int) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The task's metrics as functions of (labels, predictions): binary takes P(positive), multiclass the
    probability matrix, regression predicted values.  MAPE only when no target is 0 (it divides by it)."""
    if task == "binary":
        return {"roc_auc": roc_auc, "pr_auc": pr_auc,
                "log_loss": lambda t, p: float(log_loss(t, p, labels=[0, 1])),
                "brier": lambda t, p: float(brier_score_loss(t, p))}
    if task == "multiclass":
        labels = list(range(n_classes))
        return {
            "accuracy": lambda t, p: float(accuracy_score(t, p.argmax(axis=1))),
            "balanced_accuracy": lambda t, p: float(balanced_accuracy_score(t, p.argmax(axis=1))),
            "f1_macro": lambda t, p: float(f1_score(t, p.argmax(axis=1), average="macro", labels=labels,
                                                    zero_division=0)),
            "f1_weighted": lambda t, p: float(f1_score(t, p.argmax(axis=1), average="weighted", labels=labels,
                                                       zero_division=0)),
            "log_loss": lambda t, p: float(log_loss(t, p, labels=labels)),
            "roc_auc_ovr": lambda t, p: float(roc_auc_score(t, p, multi_class="ovr", average="macro", labels=labels)),
        }
    found = {
        "mae": lambda t, p: float(mean_absolute_error(t, p)),
        "rmse": lambda t, p: float(np.sqrt(mean_squared_error(t, p))),
        "r2": lambda t, p: float(r2_score(t, p)),
        "median_ae": lambda t, p: float(median_absolute_error(t, p)),
    }
    if not np.any(y == 0):
        found["mape"] = lambda t, p: float(mean_absolute_percentage_error(t, p))
    return found


ABSOLUTE_ERRORS = {"mae", "median_ae", "mape"}  # a regression's baseline for these is the median, not the mean


def evaluate(task: str, y: np.ndarray, pred: np.ndarray, baseline_pred: np.ndarray, n_classes: int, n_boot: int,
             seed: int, median_pred: np.ndarray | None = None, level: float = 0.95) -> dict[str, float]:
    """The task's held-out evidence: every metric for the model and the baseline, the lift over the baseline
    (positive: the model is better, whichever way the metric points) and the headline intervals at ``level``.

    A regression's baseline is the training mean for squared errors and R², and with ``median_pred``
    the training median for absolute errors (the constant each kind of error is smallest for)."""
    found = statistics(task, y, n_classes)
    model = {name: statistic(y, pred) for name, statistic in found.items()}
    evidence = dict(model)
    for name, statistic in found.items():
        base_pred = median_pred if median_pred is not None and name in ABSOLUTE_ERRORS else baseline_pred
        evidence[f"baseline_{name}"] = base = statistic(y, base_pred)
        evidence[f"{name}_lift"] = base - model[name] if name in LOWER_IS_BETTER else model[name] - base
    headline = [name for name in HEADLINE[task] if name in found]
    for name, (low, high) in intervals(task, y, pred, headline, n_boot, seed, level, n_classes).items():
        evidence[f"{name}_ci_low"], evidence[f"{name}_ci_high"] = low, high
    return evidence


def table(evidence: dict[str, float]) -> pd.DataFrame:
    """The held-out evidence of :func:`evaluate` as one row per metric: model, baseline, lift, interval."""
    names = [k[len("baseline_"):] for k in evidence if k.startswith("baseline_")]
    return pd.DataFrame({
        "model": [evidence[n] for n in names],
        "baseline": [evidence[f"baseline_{n}"] for n in names],
        "lift": [evidence[f"{n}_lift"] for n in names],
        "ci_low": [evidence.get(f"{n}_ci_low") for n in names],
        "ci_high": [evidence.get(f"{n}_ci_high") for n in names],
    }, index=pd.Index(names, name="metric"))


def overfitting(task: str, y_train: np.ndarray, pred_train: np.ndarray, test_value: float,
                n_classes: int) -> dict[str, float]:
    """The task's gap metric on the training rows and its train-test gap (positive: better on train).
    Binary and multiclass: ``train_test_auc_gap``; regression: ``train_test_r2_gap``."""
    name = GAP_METRIC[task]
    train_value = statistics(task, y_train, n_classes)[name](y_train, pred_train)
    gap = "train_test_r2_gap" if task == "regression" else "train_test_auc_gap"
    return {f"train_{name}": train_value, gap: train_value - test_value}


def top_label_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """A multiclass model's calibration: how far the probability of its top class is from how often the
    top class is right, row-weighted over confidence bins."""
    return expected_calibration_error((proba.argmax(axis=1) == y).astype(float), proba.max(axis=1), n_bins)


def per_class(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Precision, recall and support of every class, the model deciding its most probable class."""
    precision, recall, _, support = precision_recall_fscore_support(
        y, proba.argmax(axis=1), labels=list(range(len(classes))), zero_division=0)
    return pd.DataFrame({"precision": precision, "recall": recall, "support": support},
                        index=pd.Index(classes, name="class"))


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y, proba))


def pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(average_precision_score(y, proba))
