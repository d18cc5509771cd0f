"""The release checklist: answered by evidence, attested in the params file, or open."""

from conftest import ROOT

from runner.judge import checklist


def test_checklist_items_are_answered_attested_or_open():
    items = checklist.load(ROOT / "templates" / "checklist.yaml")
    assert len(items) == 36 and items[0]["id"] == "problem.statement"
    evidence = {"validate.baseline_roc_auc": 0.5, "validate.roc_auc_lift": 0.3, "fairness.sex.groups_compared": 2,
                "eda.positive_rate": 0.2}
    answers = {a["id"]: a for a in checklist.answer(items, evidence, True,
                                                    {"problem.kpi": "loss rate, A. B., 2026-01-01"})}
    assert (
        answers["problem.baseline"]["status"] == "answered" and answers["problem.baseline"]["link"] == "validate.html"
    )
    assert "validate.roc_auc_lift = 0.3" in answers["problem.baseline"]["answer"]
    assert answers["data.representative"]["status"] == "answered"
    assert answers["problem.kpi"] == {**answers["problem.kpi"], "status": "attested",
                                      "answer": "loss rate, A. B., 2026-01-01"}
    assert answers["model.runs"]["status"] == "answered" and answers["model.leakage"]["status"] == "open"
    failed = {a["id"]: a["status"] for a in checklist.answer(items, evidence, False, {})}
    assert failed["model.runs"] == "open"  # a stage failed
