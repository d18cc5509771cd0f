"""Comparing a candidate with the champion: paired intervals, prediction and importance shifts."""

from __future__ import annotations

import numpy as np
import pytest

from runner.analysis import comparison, metrics


def test_paired_delta_interval_and_prediction_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good = np.clip(y * 0.3 + rng.random(2000) * 0.7, 0, 1)
    worse = np.clip(y * 0.1 + rng.random(2000) * 0.9, 0, 1)
    delta, low, high = comparison.paired_delta("binary", y, good, worse, "roc_auc", 200, 1)
    assert delta == pytest.approx(metrics.roc_auc(y, good) - metrics.roc_auc(y, worse))
    assert 0 < low < delta < high
    same = comparison.prediction_difference("binary", good, good, (0.5, 0.5))
    assert same == {"champion_disagreement": 0.0, "champion_mean_abs_prob_diff": 0.0, "champion_rank_correlation": 1.0}
    other = comparison.prediction_difference("binary", good, worse, (0.5, 0.5))
    assert 0 < other["champion_disagreement"] < 1 and other["champion_rank_correlation"] < 1


def test_importance_shift_names_features_that_entered_or_left_the_top():
    new = {"a": 5, "b": 4, "c": 3, "d": 2, "e": 1, "f": 0.5}
    old = {"a": 5, "b": 4, "c": 3, "d": 2, "f": 1, "e": 0.5}
    shift = comparison.importance_shift(new, old)
    assert shift["entered_top"] == ["e"] and shift["left_top"] == ["f"] and 0.8 < shift["rank_correlation"] < 1
    flat = {"explain.mean_abs_shap.a": 1.0, "explain.mean_abs_shap.b": 2.0, "explain.top_feature": "b"}
    assert comparison.glued_mapping(flat, "explain.mean_abs_shap.") == {"a": 1.0, "b": 2.0}


