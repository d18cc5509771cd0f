import math

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
