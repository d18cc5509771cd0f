"""The intervalled metrics of every task on many weightings of the same rows at once: a bootstrap resample is
a weighting (how often each row was drawn), so ``(n_resamples, n_rows)`` weights in, one value per resample
out.

Each function equals scikit-learn's metric on the resampled rows (the tests compare them on the same
resamples), but sorts the rows once and then works with cumulative sums and matrix products over all the
resamples of a block: ROC AUC and average precision from per-score positive and negative weights,
classification metrics from weighted confusion counts, the median error from cumulative weights.  A value
that is undefined in a resample (an AUC where a class drew no row) is NaN there, and left out of the interval.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runner.analysis.resampling import rate

EPS = np.finfo(np.float64).eps  # scikit-learn's clip of probabilities in log loss, and its MAPE floor


def roc_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """P(a positive scores above a negative), ties counting half: the Mann-Whitney form of the ROC AUC."""
    pos, neg = _per_score(y, score, weights, descending=False)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower than each score
    return rate((pos * (below + neg / 2)).sum(axis=1), pos.sum(axis=1) * neg.sum(axis=1))


def average_precision(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Precision at each score, weighted by the recall gained there (scikit-learn's ``average_precision_score``)."""
    pos, neg = _per_score(y, score, weights, descending=True)
    caught, alarms = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    found = np.where(pos > 0, rate(pos, caught[:, -1:]) * rate(caught, caught + alarms), 0.0).sum(axis=1)
    return np.where(caught[:, -1] > 0, found, np.nan)  # no positive drawn: undefined


def _per_score(y: np.ndarray, score: np.ndarray, weights: np.ndarray, descending: bool) -> tuple[np.ndarray, ...]:
    """Each resample's positive and negative weight at each distinct score, the scores in order."""
    order = np.argsort(-score if descending else score, kind="mergesort")
    ordered, truth = score[order], y[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    drawn = weights[:, order]
    return np.add.reduceat(drawn * truth, starts, axis=1), np.add.reduceat(drawn * (1 - truth), starts, axis=1)


def mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean of one value per row, in every resample."""
    return rate(weights @ values, weights.sum(axis=1))


def recall(y: np.ndarray, decided: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return rate(weights @ (y * decided).astype(np.float64), weights @ y.astype(np.float64))


def binary_log_loss(y: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    clipped = np.clip(proba, EPS, 1 - EPS)
    return mean(-np.where(y == 1, np.log(clipped), np.log(1 - clipped)), weights)


def multiclass_log_loss(y: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    clipped = np.clip(proba, EPS, 1 - EPS)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return mean(-np.log(clipped[np.arange(len(y)), y]), weights)


def confusion(y: np.ndarray, decided: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """``(n_resamples, true class, decided class)`` weighted counts."""
    cells = (y * n_classes + decided)[:, None] == np.arange(n_classes * n_classes)[None, :]
    return (weights @ cells.astype(np.float64)).reshape(-1, n_classes, n_classes)


def accuracy(counts: np.ndarray) -> np.ndarray:
    return rate(np.trace(counts, axis1=1, axis2=2), counts.sum(axis=(1, 2)))


def balanced_accuracy(counts: np.ndarray) -> np.ndarray:
    """The mean recall over the classes present in the resample (scikit-learn leaves absent ones out)."""
    recalls = rate(np.diagonal(counts, axis1=1, axis2=2), counts.sum(axis=2))
    present = ~np.isnan(recalls)
    return rate(np.where(present, recalls, 0).sum(axis=1), present.sum(axis=1))


def f1(counts: np.ndarray, average: str) -> np.ndarray:
    """Macro (every class alike, 0 for a class neither present nor decided) or support-weighted F1."""
    hits = np.diagonal(counts, axis1=1, axis2=2)
    support = counts.sum(axis=2)
    per_class = np.nan_to_num(rate(2 * hits, support + counts.sum(axis=1)))
    if average == "macro":
        return per_class.mean(axis=1)
    return rate((per_class * support).sum(axis=1), support.sum(axis=1))


def roc_auc_ovr(y: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The macro mean of each class's one-vs-rest ROC AUC; undefined when a class drew no row."""
    return np.mean([roc_auc((y == k).astype(int), proba[:, k], weights) for k in range(proba.shape[1])], axis=0)


def r2(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1)
    centre = rate(weights @ y, total)
    spread = weights @ (y * y) - total * centre * centre
    return 1 - rate(weights @ ((y - pred) ** 2), spread)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The median of the resampled rows as :func:`numpy.median` takes it (the middle two averaged when a
    resample holds an even number of rows); weights are whole numbers of draws."""
    order = np.argsort(values, kind="mergesort")
    ordered, drawn = values[order], np.cumsum(weights[:, order], axis=1)
    total = drawn[:, -1]
    low = (drawn > ((total - 1) // 2)[:, None]).argmax(axis=1)
    high = (drawn > (total // 2)[:, None]).argmax(axis=1)
    return (ordered[low] + ordered[high]) / 2


WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def metrics_for(task: str, n_classes: int, threshold: float | None = None) -> dict[str, WeightedMetric]:
    """The task's intervalled metrics (``metrics.HEADLINE``, and a binary model's recall at its threshold) as
    functions of (labels, predictions, weights)."""
    if task == "binary":
        found: dict[str, WeightedMetric] = {"roc_auc": roc_auc, "pr_auc": average_precision,
                                            "log_loss": binary_log_loss}
        if threshold is not None:
            found["recall"] = lambda y, p, w: recall(y, (p >= threshold).astype(int), w)
        return found
    if task == "multiclass":
        def counted(score: Callable[[np.ndarray], np.ndarray]) -> WeightedMetric:
            return lambda y, p, w: score(confusion(y, p.argmax(axis=1), n_classes, w))

        return {"accuracy": counted(accuracy), "balanced_accuracy": counted(balanced_accuracy),
                "f1_macro": counted(lambda c: f1(c, "macro")), "f1_weighted": counted(lambda c: f1(c, "weighted")),
                "log_loss": multiclass_log_loss, "roc_auc_ovr": roc_auc_ovr}
    return {
        "mae": lambda y, p, w: mean(np.abs(y - p), w),
        "rmse": lambda y, p, w: np.sqrt(mean((y - p) ** 2, w)),
        "r2": r2,
        "median_ae": lambda y, p, w: weighted_median(np.abs(y - p), w),
        "mape": lambda y, p, w: mean(np.abs(y - p) / np.maximum(np.abs(y), EPS), w),
    }
