import numpy as np

from runner.analysis import metrics


def test_threshold_meets_the_recall_requirement():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    proba = np.clip(y * 0.3 + rng.random(2000) * 0.7, 0, 1)
    for requirement in (0.5, 0.8, 0.95):
        threshold = metrics.threshold_for_recall(y, proba, requirement)
        assert metrics.at_threshold(y, proba, threshold)["recall"] >= requirement
        stricter = metrics.at_threshold(y, proba, threshold + 1e-6)["recall"]
        assert stricter < requirement  # the highest threshold that still meets it
