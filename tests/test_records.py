"""The run's records: one Verdict type that reads every verdict.json written so far, one reader of a run folder."""

import json

import pytest

from runner import records
from runner.errors import SignoffError

# verdict.json as Signoff wrote it before the typed records: a monitor's, with its own keys
MONITOR = {
    "model": "credit-default", "run_id": "20261125T101010.000001Z-abcdef", "params_file": "params/credit.yaml",
    "started": "2026-11-25T10:10:10+00:00", "started_by": "cron", "rerun_of": None, "kind": "monitor",
    "current": "new.csv", "labels": False, "verdict": "WARN", "gates": [{"id": "drift", "status": "fail"}],
    "stages": [{"name": "drift", "status": "passed"}], "warnings": [], "checklist": [], "gate_policy_changes": [],
    "not_evaluated": [{"id": "auc", "metric": "validate.roc_auc", "why": "its stage did not run (no --labels)"}],
    "finished": "2026-11-25T10:11:00+00:00",
}


def test_an_old_verdict_reads_and_writes_back_with_every_key(tmp_path):
    (tmp_path / records.VERDICT).write_text(json.dumps(MONITOR), encoding="utf-8")
    verdict = records.Verdict.read(tmp_path / records.VERDICT)
    assert verdict.verdict == "WARN" and verdict.extra["kind"] == "monitor" and verdict.failed_gates == ["drift"]
    verdict.write(tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text(encoding="utf-8"))
    assert {k: again[k] for k in MONITOR} == MONITOR  # every key kept, in value
    assert {k: v for k, v in again.items() if k not in MONITOR} == {"tracking_uri": None, "mlflow_run_id": None,
                                                                   "champion": None}  # fields a monitor leaves empty


def test_a_verdict_without_its_name_fails_closed_and_errors_are_written_only_when_there_are_some():
    verdict = records.Verdict.from_json({"model": "m", "run_id": "r"})
    assert verdict.verdict == "ERROR"
    assert "error" not in verdict.to_json() and "registry_error" not in verdict.to_json()
    verdict.error = "the run stopped: SIGTERM"
    assert verdict.to_json()["error"] == "the run stopped: SIGTERM"


def test_a_run_folder_is_read_lazily_and_a_missing_or_broken_file_is_named(tmp_path):
    run = records.ArchivedRun(tmp_path)
    (tmp_path / records.EVIDENCE).write_text('{"validate.roc_auc": 0.8}', encoding="utf-8")
    (tmp_path / records.PARAMS).write_text("model: m\ngates: []\n", encoding="utf-8")
    (tmp_path / records.DECISIONS).write_text('{"event": "approved"}\n', encoding="utf-8")
    assert run.evidence == {"validate.roc_auc": 0.8} and run.params["model"] == "m"
    assert run.decisions == [{"event": "approved"}] and not run.sealed
    with pytest.raises(SignoffError, match=rf"{tmp_path}: not an archived run folder \(verdict.json: .*No such file"):
        run.verdict  # noqa: B018 - the property reads the file
    (tmp_path / records.MANIFEST).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SignoffError, match=r"manifest.json: .*expected a JSON object"):
        run.manifest  # noqa: B018
