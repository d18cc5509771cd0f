"""The gating report's helpers on a recorded run, the serving figures on a real model, and the model logged
as it will be served."""

import json
from unittest import mock

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from runner import records
from runner.analysis import report, servability, serving

RUN = {
    "folder": None,
    "evidence": {"validate.roc_auc": 0.81234567, "fairness.sex.excluded_groups": ["X"], "eda.n_rows": 10},
    "verdict": records.Verdict(
        model="credit<b>", run_id="r1", verdict="BLOCKED",
        gates=[{"id": "auc", "metric": "validate.roc_auc", "observed": 0.81234567, "threshold": {"min": 0.9},
                "severity": "block", "status": "fail", "why": None},
               {"id": "rows", "metric": "eda.n_rows", "observed": 10, "threshold": {"min": 1}, "severity": "warn",
                "status": "pass", "why": "enough data"}],
        checklist=[{"id": "a.b", "question": "Q <i>", "status": "answered", "answer": "x & y", "link": "eda.html"}],
    ).to_json(),
}


def test_report_tables_show_the_recorded_verdict_readably_and_escaped():
    assert "BLOCKED by auc (validate.roc_auc 0.8123, fail against min 0.9)." in report.banner(RUN)
    undecided = {**RUN, "verdict": {**RUN["verdict"], "verdict": "WARN", "gates": [
        {**g, "status": "inconclusive", "interval": [0.7, 0.95], "level": 0.95} if g["id"] == "auc" else g
        for g in RUN["verdict"]["gates"]]}}
    assert records.why(undecided["verdict"]) == (
        "WARN: nothing blocks, but auc (validate.roc_auc 0.8123 95% [0.7, 0.95], inconclusive against min 0.9); "
        "a person must approve before it is released.")
    passed = {**RUN["verdict"], "verdict": "PASS", "gates": [{**g, "status": "pass"} for g in RUN["verdict"]["gates"]]}
    assert records.why(passed) == "PASS: all 2 gates passed."
    open_warning = {**passed, "gates": [passed["gates"][0], {**passed["gates"][1], "status": "inconclusive"}]}
    assert records.why(open_warning) == ("PASS: 1 of 2 gates passed and none failed; rows (warnings) could not decide "
                                         "on these rows.")
    crashed = {**RUN["verdict"], "verdict": "ERROR", "stages": [{"name": "train", "status": "failed"}]}
    assert records.why(crashed) == "ERROR: stage train failed; nothing can be released from this run."
    missing = {**RUN["verdict"], "gates": [{**g, "status": "missing"} for g in RUN["verdict"]["gates"]]}
    assert records.why(missing) == "BLOCKED by auc (no evidence validate.roc_auc); rows (no evidence eda.n_rows)."
    assert "credit&lt;b&gt;" in report.banner(RUN)
    passed_first = {**RUN, "verdict": {**RUN["verdict"], "gates": RUN["verdict"]["gates"][::-1]}}
    rows = report.gate_table(passed_first).reset_index().to_dict("records")  # the failed gate comes first anyway
    assert rows[0] == {"gate": "auc", "metric": "validate.roc_auc", "observed": "0.8123", "interval": "",
                       "threshold": "min 0.9", "severity": "block", "status": "FAIL", "why": "(no reason given)"}
    assert report.fairness_exclusions(RUN) == ["fairness.sex: left out of the figures: X"]
    page = report.checklist_html(RUN)
    assert "Q &lt;i&gt;" in page and '<a href="eda.html">x &amp; y</a>' in page


def test_gates_judged_on_intervals_show_them_say_what_would_decide_them_and_are_drawn_against_their_bounds():
    from runner.judge import gates

    evidence = {"fairness.sex.equal_opportunity_difference": 0.118, "fairness.sex.n_rows": 600,
                "fairness.sex.equal_opportunity_difference_ci_low": 0.02,
                "fairness.sex.equal_opportunity_difference_ci_high": 0.21, "eda.n_rows": 3000}
    checked = gates.evaluate([{"id": "eop", "metric": "fairness.sex.equal_opportunity_difference", "max": 0.1},
                              {"id": "rows", "metric": "eda.n_rows", "min": 1000}], evidence, level=0.9)
    run = {"folder": None, "evidence": evidence,
           "verdict": records.Verdict(model="m", run_id="r", verdict="WARN", gates=checked).to_json()}
    rows = report.gate_table(run).reset_index().to_dict("records")
    assert rows[0]["interval"] == "90% [0.02, 0.21]" and rows[0]["status"] == "INCONCLUSIVE"
    assert rows[1]["interval"] == ""
    (said,) = report.undecided(run)
    assert said.startswith("**eop** is inconclusive") and f"about {checked[0]['more_rows']:,} more test rows" in said
    figure = report.forest_plot(run)
    (axes,) = figure.axes  # one row: the one gate judged on an interval
    assert [line.get_xdata()[0] for line in axes.lines if line.get_linestyle() == "--"] == [0.1]  # its bound
    assert axes.get_xlim()[0] < 0.02 and axes.get_xlim()[1] > 0.21
    assert report.forest_plot(RUN) is None  # no gate with an interval: no plot


def test_serving_figures_are_positive_and_measured_on_single_rows():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    model = LogisticRegression().fit(rows, (rows["a"] > 0).astype(int))
    latency = serving.latency_ms(model, rows, calls=50)
    assert 0 < latency["latency_p50_ms"] <= latency["latency_p99_ms"] < 1000
    assert serving.throughput(model, rows) > 1000  # rows per second in one batch


def test_a_logged_model_scores_as_trained_without_scanning_every_installed_distribution(tmp_path, monkeypatch):
    """MLflow compares the requirements with every installed distribution (about 2 s each time) when it writes
    them and again when it loads the model back to try the input example; Signoff wrote them from this
    environment, so neither scan runs."""
    from mlflow.utils import requirements_utils

    monkeypatch.setenv("SIGNOFF_SCRATCH", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    X = pd.DataFrame({"income": np.linspace(1, 9, 40), "late_payments": np.arange(40) % 3})
    model = LogisticRegression().fit(X, np.arange(40) % 2)
    scans = mock.Mock(wraps=requirements_utils._check_requirement_satisfied)
    with mock.patch.object(requirements_utils, "_check_requirement_satisfied", scans):
        logged = servability.log_model(model, X, "", example_rows=3)
    assert scans.call_count == 0
    import mlflow

    served = mlflow.pyfunc.load_model(logged["model_uri"], suppress_warnings=True)
    assert np.allclose(served.predict(servability.serving_frame(X.head(3))), model.predict_proba(X.head(3)))


def test_the_report_opened_by_hand_shows_the_newest_model_run_not_a_monitor(tmp_path, monkeypatch):
    for folder in ("notebooks", "params"):
        (tmp_path / folder).mkdir()
    for model_folder, run_id in (("credit", "run-1"), ("credit.monitor", "monitor-2")):  # the monitor is newer
        run = tmp_path / "outputs" / model_folder / run_id
        run.mkdir(parents=True)
        (run / "verdict.json").write_text(json.dumps({"model": "credit", "run_id": run_id, "verdict": "PASS"}))
        (run / "evidence.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert report.load("")["verdict"]["run_id"] == "run-1"


def test_the_champion_comparison_reads_each_paired_change_by_its_interval():
    first, _ = report.champion_comparison({"evidence": {"champion.version": "none"}})
    assert first.startswith("No champion to compare with")
    same = {"champion.version": "3", "validate.champion_disagreement": 0.0125,
            "validate.roc_auc_delta_vs_champion": 0.001, "validate.roc_auc_delta_vs_champion_ci_low": -0.004,
            "validate.roc_auc_delta_vs_champion_ci_high": 0.006}
    sentence, table = report.champion_comparison({"evidence": same})
    assert sentence.startswith("No measurable difference from champion version 3")
    assert "1.2% of the test rows" in sentence and list(table["reading"]) == ["no measurable difference"]
    worse = {**same, "validate.mae_delta_vs_champion": 40.0, "validate.mae_delta_vs_champion_ci_low": 12.0,
             "validate.mae_delta_vs_champion_ci_high": 70.0}  # a larger error: worse, though the change is positive
    sentence, table = report.champion_comparison({"evidence": worse})
    assert sentence.startswith("Against champion version 3: mae worse.")
    assert table["reading"].to_dict() == {"mae": "worse", "roc_auc": "no measurable difference"}
