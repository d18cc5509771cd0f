"""The gating report's helpers on a recorded run, and the serving figures on a real model."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from runner import records
from runner.analysis import report, serving

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
    assert "BLOCKED" in report.banner(RUN) and "gates not passed: auc" in report.banner(RUN)
    assert "credit&lt;b&gt;" in report.banner(RUN)
    table = report.gate_table(RUN)
    assert table.to_dict("records")[0] == {"gate": "auc", "metric": "validate.roc_auc", "observed": "0.8123",
                                           "threshold": "min 0.9", "severity": "block", "status": "FAIL",
                                           "why": "(no reason given)"}
    assert report.fairness_exclusions(RUN) == ["fairness.sex: left out of the figures: X"]
    page = report.checklist_html(RUN)
    assert "Q &lt;i&gt;" in page and '<a href="eda.html">x &amp; y</a>' in page


def test_serving_figures_are_positive_and_measured_on_single_rows():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    model = LogisticRegression().fit(rows, (rows["a"] > 0).astype(int))
    latency = serving.latency_ms(model, rows, calls=50)
    assert 0 < latency["latency_p50_ms"] <= latency["latency_p99_ms"] < 1000
    assert serving.throughput(model, rows) > 1000  # rows per second in one batch
