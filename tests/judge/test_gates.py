import math

from runner import records
from runner.judge import gates

GATES = [
    {"id": "auc", "metric": "validate.roc_auc", "min": 0.7, "why": "policy"},
    {"id": "gap", "metric": "validate.gap", "max": 0.1, "severity": "warn"},
]


def test_pass_and_fail_against_min_and_max():
    results = gates.evaluate(GATES, {"validate.roc_auc": 0.75, "validate.gap": 0.2})
    assert [r["status"] for r in results] == ["pass", "fail"]
    assert results[1]["observed"] == 0.2 and results[1]["threshold"] == {"max": 0.1}
    assert "above the maximum" in results[1]["message"]
    assert gates.verdict(results, stages_failed=False) == "WARN"


def test_missing_evidence_blocks_even_a_warning_gate():
    results = gates.evaluate(GATES, {"validate.roc_auc": 0.9})
    assert results[1]["status"] == "missing"
    assert gates.verdict(results, stages_failed=False) == "BLOCKED"


def test_values_that_are_not_finite_numbers_fail():
    for value in (math.nan, "0.9", True, [0.9], None):
        result = gates.evaluate(GATES[:1], {"validate.roc_auc": value})[0]
        assert result["status"] in ("fail", "missing"), value
        assert gates.verdict([result], stages_failed=False) == "BLOCKED"


def test_verdicts_and_exit_codes():
    passing = gates.evaluate(GATES, {"validate.roc_auc": 0.8, "validate.gap": 0.01})
    assert gates.verdict(passing, stages_failed=False) == "PASS"
    assert gates.verdict(passing, stages_failed=True) == "ERROR"
    assert gates.verdict([], stages_failed=False) == "PASS"
    assert [gates.exit_code(v) for v in gates.VERDICTS] == [0, 0, 1, 2]


def test_policy_changes_since_previous_run():
    before = [{"id": "auc", "metric": "validate.roc_auc", "min": 0.7}, {"id": "old", "metric": "eda.n_rows", "min": 1}]
    after = [{"id": "auc", "metric": "validate.roc_auc", "min": 0.65, "why": "relaxed"}, GATES[1]]
    changes = {c["id"]: c for c in gates.policy_changes(before, after)}
    assert changes["auc"]["change"] == "changed" and changes["auc"]["before"]["min"] == 0.7
    assert changes["gap"]["change"] == "added" and changes["old"]["change"] == "removed"
    assert gates.policy_changes(None, after) == []
    assert gates.policy_changes(after, after) == []


def test_gate_without_reason_is_a_warning():
    assert gates.warnings(GATES) == ["gate gap has no 'why': write down the reason for its threshold"]


VERSUS = {"id": "vs", "metric": "validate.roc_auc", "vs_champion": {"max_drop": 0.01}}


def test_champion_comparison_passes_without_champion_and_fails_closed_with_one():
    (alone,) = gates.evaluate([VERSUS], {"validate.roc_auc": 0.6})
    assert alone["status"] == "pass" and alone["message"].startswith("no champion")
    (held,) = gates.evaluate([VERSUS], {"validate.roc_auc": 0.795}, champion={"validate.roc_auc": 0.8})
    assert held["status"] == "pass" and held["champion"] == 0.8
    (dropped,) = gates.evaluate([VERSUS], {"validate.roc_auc": 0.78}, champion={"validate.roc_auc": 0.8})
    assert dropped["status"] == "fail" and "drops more than 0.01" in dropped["message"]
    gain = {**VERSUS, "vs_champion": {"min_gain": 0.005}}
    (small,) = gates.evaluate([gain], {"validate.roc_auc": 0.802}, champion={"validate.roc_auc": 0.8})
    assert small["status"] == "fail" and "gains less than" in small["message"]
    (unknown,) = gates.evaluate([VERSUS], {"validate.roc_auc": 0.9}, champion={})
    assert unknown["status"] == "missing" and gates.verdict([unknown], stages_failed=False) == "BLOCKED"


def test_champion_only_gate_waits_for_a_champion():
    gate = {"id": "delta", "metric": "validate.roc_auc_delta_vs_champion_ci_low", "min": -0.01, "champion_only": True}
    (alone,) = gates.evaluate([gate], {})
    assert alone["status"] == "pass"
    (missing,) = gates.evaluate([gate], {}, champion={"validate.roc_auc": 0.8})
    assert missing["status"] == "missing"


EOP = {"id": "eop", "metric": "fairness.sex.equal_opportunity_difference", "max": 0.1, "why": "parity"}


def with_interval(estimate, low, high, rows=3000):
    name = EOP["metric"]
    return {name: estimate, f"{name}_ci_low": low, f"{name}_ci_high": high, "fairness.sex.n_rows": rows}


def test_a_gate_on_a_figure_with_an_interval_judges_the_whole_interval():
    """Inside the bound: pass; wholly beyond it: fail; across it: inconclusive (a person decides, not BLOCKED)."""
    (clear,) = gates.evaluate([EOP], with_interval(0.03, 0.01, 0.08), level=0.9)
    (beyond,) = gates.evaluate([EOP], with_interval(0.2, 0.12, 0.28), level=0.9)
    (across,) = gates.evaluate([EOP], with_interval(0.118, 0.02, 0.21), level=0.9)
    (point_inside_interval_across,) = gates.evaluate([EOP], with_interval(0.098, 0.07, 0.101))
    assert [clear["status"], beyond["status"], across["status"]] == ["pass", "fail", "inconclusive"]
    assert point_inside_interval_across["status"] == "inconclusive"  # the point passes, its interval does not
    assert across["estimate"] == 0.118 and across["interval"] == [0.02, 0.21] and across["level"] == 0.9
    assert across["rows"] == 3000 and across["inconclusive"] == "warn"
    assert gates.verdict([across], stages_failed=False) == "WARN"  # never auto-promoted: a person signs off
    assert gates.verdict([beyond], stages_failed=False) == "BLOCKED"
    assert gates.verdict([clear], stages_failed=False) == "PASS"


def test_an_inconclusive_gate_that_says_so_blocks_and_a_warning_gate_only_warns():
    strict = {**EOP, "inconclusive": "block"}
    (blocked,) = gates.evaluate([strict], with_interval(0.118, 0.02, 0.21))
    assert blocked["status"] == "inconclusive" and gates.verdict([blocked], stages_failed=False) == "BLOCKED"
    (warned,) = gates.evaluate([{**strict, "severity": "warn"}], with_interval(0.118, 0.02, 0.21))
    assert gates.verdict([warned], stages_failed=False) == "PASS"  # a warning gate undecided: it would not block
    (failed,) = gates.evaluate([{**EOP, "severity": "warn"}], with_interval(0.2, 0.12, 0.28))
    assert gates.verdict([failed], stages_failed=False) == "WARN"
    assert gates.policy_changes([EOP], [strict])[0]["after"]["inconclusive"] == "block"


def test_an_inconclusive_gate_says_how_many_more_rows_would_decide_it():
    """The interval reaches 0.095 below the estimate, which is 0.018 above the bound, on 3,000 rows:
    (0.095 / 0.018)² x 3,000 rows in all decide it, about 80,600 more.  Only the side facing the bound
    counts: a skewed interval far from the bound on its other side changes nothing."""
    (across,) = gates.evaluate([EOP], with_interval(0.118, 0.023, 0.9))
    assert abs(across["more_rows"] - (3000 * (0.095 / 0.018) ** 2 - 3000)) <= 1
    (skewed,) = gates.evaluate([EOP], with_interval(0.01, 0.005, 0.118))  # reaches 0.108 up, 0.09 from 0.1
    assert abs(skewed["more_rows"] - (3000 * (0.108 / 0.09) ** 2 - 3000)) <= 1
    assert f"about {across['more_rows']:,} more test rows" in across["message"]
    (on_the_line,) = gates.evaluate([EOP], with_interval(0.1, 0.05, 0.15))
    assert on_the_line["more_rows"] is None and "more rows alone would not decide" in on_the_line["message"]
    shift = {"drift.prediction_ks": 0.13, "drift.prediction_ks_ci_low": 0.09, "drift.prediction_ks_ci_high": 0.17,
             "drift.n_rows": 2000}  # the current rows compared decide a drift figure
    (drifted,) = gates.evaluate([{"id": "shift", "metric": "drift.prediction_ks", "max": 0.15}], shift)
    assert drifted["rows"] == 2000 and f"about {drifted['more_rows']:,} more current rows" in drifted["message"]


def test_a_figure_whose_groups_are_too_small_for_an_interval_is_undecided_not_judged_on_its_point():
    """A group with no positive among its test rows: the point says 0.0 (passes), the interval is undefined."""
    evidence = {"fairness.sex.equal_opportunity_difference": 0.0, "fairness.sex.n_rows": 64,
                "fairness.sex.smallest_group_rows": 31, "fairness.sex.equal_opportunity_difference_ci_low": math.nan,
                "fairness.sex.equal_opportunity_difference_ci_high": math.nan}
    (warned,) = gates.evaluate([EOP], evidence, level=0.95)
    assert warned["status"] == "inconclusive" and not records.blocks(warned)
    assert "groups it compares are too small to decide (the smallest has 31 test rows)" in warned["message"]
    (blocked,) = gates.evaluate([{**EOP, "inconclusive": "block"}], evidence, level=0.95)
    assert blocked["status"] == "inconclusive" and records.blocks(blocked)


def test_a_figure_without_an_interval_is_judged_on_its_point_and_a_broken_interval_decides_nothing():
    name = EOP["metric"]
    (point,) = gates.evaluate([EOP], {name: 0.05})
    assert point["status"] == "pass" and "interval" not in point
    for broken in ({f"{name}_ci_low": math.nan, f"{name}_ci_high": 0.2}, {f"{name}_ci_low": 0.3,
                                                                         f"{name}_ci_high": 0.1}):
        (result,) = gates.evaluate([EOP], {name: 0.05, **broken})
        assert result["status"] == "inconclusive" and "has no interval" in result["message"]


def test_a_champion_gate_judges_the_paired_change_where_the_run_measured_it():
    paired = {"validate.roc_auc": 0.79, "validate.roc_auc_delta_vs_champion": -0.012,
              "validate.roc_auc_delta_vs_champion_ci_low": -0.03, "validate.roc_auc_delta_vs_champion_ci_high": 0.004,
              "validate.n_eval_rows": 2000}
    (result,) = gates.evaluate([VERSUS], paired, champion={"validate.roc_auc": 0.8}, level=0.95)
    assert result["status"] == "inconclusive" and result["interval"] == [-0.03, 0.004] and result["rows"] == 2000
    assert result["estimate"] == -0.012 and result["champion"] == 0.8
    worse = {**paired, "validate.roc_auc_delta_vs_champion_ci_high": -0.011}
    (result,) = gates.evaluate([VERSUS], worse, champion={"validate.roc_auc": 0.8})
    assert result["status"] == "fail"
