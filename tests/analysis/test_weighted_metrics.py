"""Every intervalled metric on bootstrap weights: the same numbers as scikit-learn on the resampled rows
themselves (a slow loop over the same resamples), and intervals that cover a known population value about as
often as their level says."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import recall_score

from runner.analysis import metrics, resampling, weighted_metrics

rng = np.random.default_rng(7)
N = 400
Y_BINARY = rng.integers(0, 2, N)
SCORE = np.round(np.clip(0.3 * Y_BINARY + rng.random(N) * 0.7, 0, 1), 2)  # rounded: ties, as trees give
Y_CLASS = rng.integers(0, 3, N)
PROBA = rng.dirichlet([1, 1, 1], N) + np.eye(3)[Y_CLASS] * 0.4
PROBA = PROBA / PROBA.sum(axis=1, keepdims=True)
Y_REG = rng.gamma(2.0, 50.0, N) + 1
PRED_REG = Y_REG * rng.normal(1, 0.3, N)
CASES = {"binary": (Y_BINARY, SCORE, 0), "multiclass": (Y_CLASS, PROBA, 3), "regression": (Y_REG, PRED_REG, 0)}


@pytest.mark.parametrize("task", CASES)
def test_each_metric_equals_scikit_learn_on_the_resampled_rows(task):
    y, pred, n_classes = CASES[task]
    threshold = 0.5 if task == "binary" else None
    weights = np.concatenate(list(resampling.bootstrap_weights(N, 25, seed=3)))
    reference = metrics.statistics(task, y, n_classes) | {
        "recall": lambda t, p: recall_score(t, (p >= 0.5).astype(int), zero_division=0)}
    for name, weighted in weighted_metrics.metrics_for(task, n_classes, threshold).items():
        found = weighted(y, pred, weights)
        rows = [np.repeat(np.arange(N), w.astype(int)) for w in weights]
        slow = [reference[name](y[r], pred[r]) for r in rows]
        assert np.allclose(found, slow), name
        assert weighted(y, pred, np.ones((1, N)))[0] == pytest.approx(reference[name](y, pred)), name


def test_a_resample_without_a_class_has_no_auc_and_is_left_out():
    y = np.array([0, 0, 1, 1])
    weights = np.array([[2.0, 2, 0, 0], [1, 1, 1, 1]])  # the first resample drew no positive
    auc = weighted_metrics.roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8]), weights)
    assert np.isnan(auc[0]) and auc[1] == pytest.approx(0.75)
    assert np.isnan(weighted_metrics.average_precision(y, np.array([0.1, 0.4, 0.35, 0.8]), weights)[0])


def test_roc_auc_intervals_cover_the_population_value_at_their_level():
    """Positives score N(1, 1), negatives N(0, 1): the population ROC AUC is Phi(1 / sqrt 2) = 0.760.  Over 300
    samples of 500 rows the 95% intervals hold it 92-98% of the time."""
    truth, draws, hits = norm.cdf(1 / np.sqrt(2)), 300, 0
    sampler = np.random.default_rng(0)
    for draw in range(draws):
        y = (sampler.random(500) < 0.3).astype(int)
        score = sampler.normal(y, 1.0)
        low, high = metrics.intervals("binary", y, score, ["roc_auc"], 300, seed=draw)["roc_auc"]
        hits += low <= truth <= high
    assert 0.92 <= hits / draws <= 0.98, hits / draws
