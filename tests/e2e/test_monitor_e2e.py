"""`signoff monitor` end to end: the registry's champion, real kernels, healthy and drifted data."""

import pandas as pd
import pytest
from conftest import decide, read_json, run_folders, signoff

from runner.analysis import datasets

pytestmark = pytest.mark.slow


def current_file(project, name, drift):
    """Production's newest rows: the generator's current sample (with labels), drifted or not."""
    _, current = datasets.synthetic_credit(6000, 11, 0.0, drift)
    path = project / f"{name}.parquet"
    current.to_parquet(path)
    return path


def test_monitor_refuses_a_model_with_no_champion(project):
    healthy = current_file(project, "healthy", 0.0)
    nothing = decide("monitor", "params/credit.yaml", "--current", str(healthy), cwd=project)
    assert nothing.returncode == 2 and "has no champion" in nothing.stderr
    assert not (project / "outputs" / "credit-default.monitor").exists()


def test_monitor_is_healthy_on_fresh_data_alerts_on_drift_and_archives_both(example):
    project, champion_run = example.project, example.run
    healthy, drifted = current_file(project, "healthy", 0.0), current_file(project, "drifted", 1.5)

    fine = signoff("monitor", "params/credit.yaml", "--current", str(healthy), "--labels", cwd=project)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "monitor:        HEALTHY" in fine.stdout
    alert = signoff("monitor", "params/credit.yaml", "--current", str(drifted), cwd=project)
    assert alert.returncode == 1, alert.stdout + alert.stderr
    assert "not evaluated: live-discrimination (validate.roc_auc)" in alert.stdout

    first, second = run_folders(project, "credit-default.monitor")
    ok, bad = read_json(first / "verdict.json"), read_json(second / "verdict.json")
    assert ok["kind"] == "monitor" and ok["verdict"] == "PASS" and ok["champion"]["version"] == "1"
    assert ok["champion"]["signoff_run_id"] == champion_run.name
    evidence = read_json(first / "evidence.json")
    assert evidence["validate.roc_auc"] > 0.7 and evidence["validate.n_eval_rows"] == len(pd.read_parquet(healthy))
    assert 0 <= evidence["monitor.champion_age_days"] < 1 and evidence["drift.share_drifted_columns"] <= 0.3
    failed = {g["id"] for g in bad["gates"] if g["status"] == "fail"}
    assert {"drift-share", "domain-shift"} <= failed and bad["verdict"] == "BLOCKED"
    assert [g["id"] for g in bad["not_evaluated"]] == ["live-discrimination"]
    for folder in (first, second):  # archived like a run: notebooks, report, manifest, chained
        assert (folder / "html" / "report.html").is_file() and (folder / "notebooks" / "drift.ipynb").is_file()
    assert read_json(second / "manifest.json")["previous"] is not None
    assert run_folders(project) == [champion_run]  # the training chain is untouched
    index = (project / "outputs" / "index.html").read_text(encoding="utf-8")  # monitors under their model
    assert "credit-default.monitor" not in index and '<b class="BLOCKED">BLOCKED</b>' in index  # the last monitor
    model_page = (project / "outputs" / "index-credit-default.html").read_text(encoding="utf-8")
    assert first.name in model_page and second.name in model_page
    assert decide("verify", cwd=project).returncode == 0

    missing = decide("monitor", "params/credit.yaml", "--current", str(project / "none.csv"), cwd=project)
    assert missing.returncode == 2 and "none.csv: no such data file (--current)" in missing.stderr
    lacking = project / "lacking.csv"
    pd.read_parquet(healthy).drop(columns=["income", "purpose"]).to_csv(lacking, index=False)
    refused = decide("monitor", "params/credit.yaml", "--current", str(lacking), cwd=project)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "lacking.csv: current data lacks the training data's feature columns 'income', 'purpose'" in refused.stderr
    assert run_folders(project, "credit-default.monitor") == [first, second]  # nothing ran, nothing archived
