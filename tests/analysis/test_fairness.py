import numpy as np
import pandas as pd
import pytest

from runner.analysis import fairness
from runner.judge import gates

# Ten people, two groups. Scores are chosen so that at threshold 0.5:
#   group a (6 rows): y = 1 1 1 0 0 0, decided 1 1 0 1 0 0 -> selection 3/6, TPR 2/3, FPR 1/3
#   group b (4 rows): y = 1 1 0 0,     decided 1 0 0 0     -> selection 1/4, TPR 1/2, FPR 0
Y = np.array([1, 1, 1, 0, 0, 0, 1, 1, 0, 0])
SCORE = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.7, 0.4, 0.3, 0.2])
GROUPS = pd.Series(list("aaaaaabbbb"))


def test_group_table_matches_hand_counts():
    table = fairness.group_table(Y, SCORE, 0.5, GROUPS)
    assert table.loc["a", "count"] == 6 and table.loc["b", "count"] == 4
    assert table.loc["a", "selection_rate"] == pytest.approx(0.5)
    assert table.loc["b", "selection_rate"] == pytest.approx(0.25)
    assert table.loc["a", "tpr"] == pytest.approx(2 / 3) and table.loc["b", "fpr"] == pytest.approx(0.0)
    assert table.loc["a", "precision"] == pytest.approx(2 / 3) and table.loc["b", "precision"] == pytest.approx(1.0)
    # group b: positives 0.7, 0.4 against negatives 0.3, 0.2 -> perfectly separated
    assert table.loc["b", "roc_auc"] == pytest.approx(1.0)


def test_disparities_match_hand_computed_values():
    figures = fairness.disparities(Y, SCORE, 0.5, GROUPS, min_group_size=1)
    assert figures["disparate_impact_ratio"] == pytest.approx(0.25 / 0.5)
    assert figures["statistical_parity_difference"] == pytest.approx(0.25)
    assert figures["equal_opportunity_difference"] == pytest.approx(2 / 3 - 1 / 2)
    assert figures["average_odds_difference"] == pytest.approx(((2 / 3 - 1 / 2) + (1 / 3 - 0)) / 2)
    # group a: positives .9 .8 .3 vs negatives .6 .2 .1 -> 8 of 9 pairs ordered (.3 < .6)
    assert figures["worst_group_auc"] == pytest.approx(8 / 9)
    assert figures["excluded_groups"] == [] and figures["groups_compared"] == 2


def test_small_groups_are_left_out_and_named():
    groups = pd.Series(list("aaaaaabbbc"))
    figures = fairness.disparities(Y, SCORE, 0.5, groups, min_group_size=3)
    assert figures["excluded_groups"] == ["c"] and figures["groups_compared"] == 2
    assert figures["smallest_group_rows"] == 3 and figures["n_rows"] == 9  # b's three rows; c's one left out
    only_big = fairness.disparities(Y, SCORE, 0.5, groups, min_group_size=5)
    assert only_big == {"excluded_groups": ["b", "c"], "groups_compared": 1,
                        "not_applicable": "1 of 3 groups have at least min_group_size=5 test rows: "
                                          "no disparity can be measured"}
    single = fairness.disparities(Y, SCORE, 0.5, pd.Series(["F"] * len(Y)), min_group_size=3)
    assert single["not_applicable"] == "a single group ('F') in the test rows: there is nothing to compare it with"
    gate = {"id": "parity", "metric": "fairness.sex.disparate_impact_ratio", "min": 0.8}
    (checked,) = gates.evaluate([gate], {f"fairness.sex.{k}": v for k, v in single.items()})
    assert checked["status"] == "missing"  # fail closed, and the gate says why
    assert checked["message"].endswith("not applicable: a single group ('F') in the test rows: there is nothing to "
                                       "compare it with")
    assert len(fairness.group_table(Y, SCORE, 0.5, groups)) == 3  # the table still shows every group


def test_bootstrap_intervals_bracket_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    score = np.clip(0.3 * y + rng.random(600) * 0.7, 0, 1)
    groups = pd.Series(rng.choice(["x", "y"], 600))
    figures = fairness.disparities(y, score, 0.5, groups, min_group_size=30, n_boot=50, seed=1)
    low, high = figures["statistical_parity_difference_ci_low"], figures["statistical_parity_difference_ci_high"]
    assert low <= figures["statistical_parity_difference"] <= high
