"""The bootstrap of per-group sums, as weights: the same numbers as a slow loop over the same weights, and
intervals that cover a known population value about as often as their level says."""

import numpy as np
import pandas as pd
import pytest

from runner.analysis import fairness, resampling


def test_group_sums_equal_a_loop_over_the_same_resamples(monkeypatch):
    rng = np.random.default_rng(3)
    values, codes = rng.random((500, 3)), rng.integers(0, 4, 500)
    monkeypatch.setattr(resampling, "WEIGHTS_AT_ONCE", 7 * 500)  # blocks of 7 resamples: blocks join up right
    found = resampling.group_sums(values, codes, 4, 30, seed=11)
    weights = np.concatenate(list(resampling.bootstrap_weights(500, 30, seed=11)))
    assert weights.shape == (30, 500) and weights.sum(axis=1).tolist() == [500] * 30
    for b in range(30):
        for g in range(4):
            rows = codes == g
            assert np.allclose(found[b, g], (weights[b, rows, None] * values[rows]).sum(axis=0))
    assert np.array_equal(found, resampling.group_sums(values, codes, 4, 30, seed=11))  # a rerun reproduces


def test_undefined_rates_are_left_out_of_the_interval():
    assert np.isnan(resampling.rate(np.array([1.0, 0.0]), np.array([2.0, 0.0]))).tolist() == [False, True]
    per_group = np.array([[0.2, 0.5], [np.nan, np.nan], [0.1, np.nan]])  # a group without the figure: undefined
    assert np.allclose(resampling.spread(per_group), [0.3, np.nan, np.nan], equal_nan=True)
    assert resampling.percentile_interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)


@pytest.mark.parametrize("rates", [(0.30, 0.22), (0.25, 0.25)], ids=["unequal", "alike"])
def test_intervals_cover_the_population_difference_and_ratio_at_their_level(rates):
    """Groups a and b selected with these probabilities (unequal: a difference of 0.08, a ratio of 0.733; alike:
    a fair model, 0 and 1, where a gap's percentile interval lies above the truth about half the time): over
    400 samples of 1,000 rows, the 95% intervals hold the population values 92-98% of the time."""
    rng = np.random.default_rng(0)
    hits = np.zeros(2)
    draws = 400
    for draw in range(draws):
        codes = (rng.random(1000) < 0.4).astype(int)
        chosen = (rng.random(1000) < np.where(codes == 0, *rates)).astype(float)
        n, selected = np.moveaxis(resampling.group_sums(np.column_stack([np.ones(1000), chosen]), codes, 2, 200,
                                                        seed=draw), -1, 0)
        observed = np.bincount(codes, weights=chosen) / np.bincount(codes)
        selection = resampling.rate(selected, n)
        [(low, high)] = resampling.largest_gaps([observed], [selection])
        [(log_low, log_high)] = resampling.largest_gaps([np.log(observed)], [np.log(selection)])
        hits += [low <= abs(rates[0] - rates[1]) <= high,
                 np.exp(-log_high) <= min(rates) / max(rates) <= np.exp(-log_low)]
    assert 0.92 <= hits[0] / draws <= 0.98 and 0.92 <= hits[1] / draws <= 0.98, hits / draws


def test_gaps_over_many_groups_hold_together_and_start_at_zero_across_it():
    """Three alike groups: the largest gap's interval reaches 0 as often as the level says, though three pairs
    are compared (each pair's own 95% interval would miss one of them more often)."""
    rng = np.random.default_rng(1)
    reaches_zero = 0
    for draw in range(300):
        codes = rng.integers(0, 3, 1500)
        chosen = (rng.random(1500) < 0.3).astype(float)
        n, selected = np.moveaxis(resampling.group_sums(np.column_stack([np.ones(1500), chosen]), codes, 3, 200,
                                                        seed=draw), -1, 0)
        observed = np.bincount(codes, weights=chosen) / np.bincount(codes)
        [(low, high)] = resampling.largest_gaps([observed], [resampling.rate(selected, n)])
        assert low <= np.ptp(observed) <= high
        reaches_zero += low == 0
    assert 0.92 <= reaches_zero / 300 <= 0.99, reaches_zero / 300


def test_a_rate_undefined_for_a_group_has_no_folded_interval():
    drawn = np.array([[0.2, 0.3], [0.25, 0.2]])
    assert resampling.largest_gaps([np.array([0.2, np.nan])], [drawn]) is None
    assert resampling.largest_gaps([np.array([-np.inf, 0.0])], [np.log(drawn)]) is None


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_difference_and_ratio_has_an_interval_around_its_estimate(task):
    rng = np.random.default_rng(5)
    groups = pd.Series(rng.choice(["x", "y", "z"], 900))
    if task == "multiclass":
        y, pred = rng.integers(0, 3, 900), rng.dirichlet([1, 1, 1], 900)
    else:
        y = rng.integers(0, 2, 900) if task == "binary" else rng.normal(10, 2, 900)
        pred = np.clip(0.3 * y + rng.random(900) * 0.7, 0, 1) if task == "binary" else y + rng.normal(0, 1, 900)
    figures = fairness.disparities(y, pred, 0.5, groups, 30, n_boot=200, seed=1, task=task,
                                   classes=["a", "b", "c"])
    named = [k.removesuffix("_ci_low") for k in figures if k.endswith("_ci_low")]
    expected = {"binary": {"statistical_parity_difference", "disparate_impact_ratio", "equal_opportunity_difference",
                           "average_odds_difference"},
                "multiclass": {"accuracy_difference", "disparate_impact_ratio"},
                "regression": {"mae_difference", "mae_ratio", "mean_prediction_difference", "mean_prediction_ratio"}}
    assert set(named) == expected[task]
    for name in named:
        assert figures[f"{name}_ci_low"] <= figures[name] <= figures[f"{name}_ci_high"], name
