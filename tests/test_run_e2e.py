"""`signoff run` end to end: real Papermill, real kernels, the real CLI in its own process."""

import json

import nbformat
import pytest

from runner import archive

from conftest import edit_cell, read_json, run_folders, signoff, write_notebook

pytestmark = pytest.mark.slow

SMALL = ["-p", "data.synthetic.n_rows=2000"]


def test_example_run_passes_and_archives_everything(project):
    result = signoff("run", "params/credit.yaml", *SMALL, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = run_folders(project)
    for stage in ("eda", "train", "validate"):
        assert f"{stage:<12} started" in result.stdout and f"{stage:<12} passed" in result.stdout
        assert (run / "notebooks" / f"{stage}.ipynb").is_file() and (run / "html" / f"{stage}.html").is_file()
    assert f"run folder: {run}" in result.stdout and "verdict: PASS" in result.stdout
    for name in ("params.yaml", "report.ipynb", "html/report.html", "evidence.json", "verdict.json"):
        assert (run / name).is_file(), name
    verdict = read_json(run / "verdict.json")
    assert verdict["verdict"] == "PASS" and verdict["model"] == "credit-default"
    assert {g["status"] for g in verdict["gates"]} == {"pass"}
    assert {g["id"] for g in verdict["gates"]} >= {"discrimination", "beats-baseline"}
    for gate in verdict["gates"]:
        assert set(gate) >= {"id", "metric", "status", "observed", "threshold", "severity", "message"}
    assert [(s["name"], s["status"]) for s in verdict["stages"]] == [
        ("eda", "passed"), ("train", "passed"), ("validate", "passed")]
    evidence = read_json(run / "evidence.json")
    assert 0.6 < evidence["validate.roc_auc"] <= 1 and evidence["validate.baseline_roc_auc"] == 0.5
    assert evidence["validate.roc_auc_lift"] == pytest.approx(evidence["validate.roc_auc"] - 0.5)
    assert evidence["eda.n_rows"] == 2000 and "eda.missing_rate.income" in evidence
    assert evidence["train.test_rows"] == 400
    manifest = read_json(run / "manifest.json")
    files = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    assert all(manifest["files"][f]["sha256"] == archive.sha256_file(run / f) for f in files)
    assert not (run / "work").exists() and not list((project / "outputs" / "credit-default").glob(".tmp-*"))
    report = (run / "html" / "report.html").read_text(encoding="utf-8")
    assert "PASS" in report and "discrimination" in report and "data:image/png" in report


def test_impossible_gate_blocks_and_the_policy_change_is_reported(project):
    assert signoff("run", "params/credit.yaml", *SMALL, cwd=project).returncode == 0
    (project / "params" / "strict.yaml").write_text(
        "extends: credit.yaml\n"
        "gates:\n"
        "  - {id: discrimination, metric: validate.roc_auc, min: 0.999, why: impossible on purpose}\n",
        encoding="utf-8",
    )
    result = signoff("run", "params/strict.yaml", *SMALL, cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: BLOCKED" in result.stdout
    first, second = run_folders(project)
    verdict = read_json(second / "verdict.json")
    (gate,) = verdict["gates"]
    assert gate["status"] == "fail" and gate["threshold"] == {"min": 0.999} and gate["observed"] < 0.999
    changes = {c["id"]: c["change"] for c in verdict["gate_policy_changes"]}
    assert changes["discrimination"] == "changed" and changes["calibration"] == "removed"
    assert read_json(second / "manifest.json")["previous"] == archive.sha256_file(first / "manifest.json")
    assert "BLOCKED" in (second / "html" / "report.html").read_text(encoding="utf-8")


def test_unknown_stage_parameter_stops_before_any_notebook(project):
    result = signoff("run", "params/credit.yaml", "-p", "stages.train.no_such_param=1", cwd=project)
    assert result.returncode == 2
    assert "params/credit.yaml: stages.train.no_such_param" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "outputs").exists() and not (project / "scratch").exists()


def test_injected_parameter_name_is_refused(project):
    (project / "params" / "evil.yaml").write_text(
        'extends: credit.yaml\nstages:\n  train:\n    "x=1\\nimport os": 1\n', encoding="utf-8")
    result = signoff("run", "params/evil.yaml", cwd=project)
    assert result.returncode == 2 and "not a parameter name" in result.stderr
    assert not (project / "outputs").exists()


def test_crashing_stage_is_archived_and_its_dependants_skipped(project):
    edit_cell(project / "notebooks" / "02_train.ipynb", "assignment = modeling.split(",
              'raise RuntimeError("boom in training")\nassignment = modeling.split(')
    result = signoff("run", "params/credit.yaml", *SMALL, cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RuntimeError: boom in training" in result.stdout and "verdict: ERROR" in result.stdout
    (run,) = run_folders(project)
    verdict = read_json(run / "verdict.json")
    stages = {s["name"]: s for s in verdict["stages"]}
    assert verdict["verdict"] == "ERROR"
    assert stages["eda"]["status"] == "passed" and stages["train"]["status"] == "failed"
    assert "boom in training" in stages["train"]["error"]
    assert stages["validate"]["status"] == "skipped" and not (run / "notebooks" / "validate.ipynb").exists()
    archived = nbformat.read(run / "notebooks" / "train.ipynb", as_version=4)
    assert archived.metadata["signoff"]["status"] == "failed"
    assert "boom in training" in json.dumps(archived.cells)
    assert (run / "html" / "train.html").is_file() and "manifest.json" in {p.name for p in run.iterdir()}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("for name, value in model_scores.items():", "import sys\nsys.exit(0)\nfor name, value in model_scores.items():"),
        ("for name, value in model_scores.items():", "try:\n    1 / 0\nexcept Exception:\n    pass\nfor name, value in []:"),
    ],
    ids=["sys-exit", "swallowed-exception"],
)
def test_stage_that_ends_early_without_error_still_blocks(project, old, new):
    edit_cell(project / "notebooks" / "03_validate.ipynb", old, new)
    result = signoff("run", "params/credit.yaml", *SMALL, cwd=project)
    assert result.returncode in (1, 2) and "verdict: PASS" not in result.stdout
    verdict = read_json(run_folders(project)[0] / "verdict.json")
    gates = {g["id"]: g["status"] for g in verdict["gates"]}
    assert gates["discrimination"] == "missing" and gates["calibration"] == "missing"
    assert verdict["verdict"] in ("BLOCKED", "ERROR")


def tiny_project(project, *sources, parameters=None):
    """Replace the stages with one small notebook; the report template stays the real one."""
    for path in (project / "notebooks").glob("*.ipynb"):
        path.unlink()
    write_notebook(project / "notebooks" / "01_probe.ipynb", *sources, parameters=parameters)
    (project / "params" / "tiny.yaml").write_text("model: tiny\nexecution: {stage_timeout: 6}\n", encoding="utf-8")


def test_string_parameter_reaches_the_notebook_unchanged(project):
    tiny_project(project, "import scrapbook as sb\nsb.glue('text', text)\nsb.glue('count', count)",
                 parameters='text: str = ""\ncount: int = 0')
    tricky = 'quote " apostrophe \' back\\slash\nnew line é 中文 {x} $HOME `id`'
    (project / "params" / "tiny.yaml").write_text(
        "model: tiny\nstages:\n  probe:\n    count: 3\n    text: " + json.dumps(tricky) + "\n", encoding="utf-8")
    result = signoff("run", "params/tiny.yaml", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    evidence = read_json(run_folders(project, "tiny")[0] / "evidence.json")
    assert evidence == {"probe.text": tricky, "probe.count": 3}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import time\ntime.sleep(120)", "stage timed out after 6 s"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "kernel died"),
    ],
    ids=["timeout", "dead-kernel"],
)
def test_timeout_and_dead_kernel_fail_the_stage(project, source, message):
    tiny_project(project, "x = 1", source, "y = 2")
    result = signoff("run", "params/tiny.yaml", cwd=project)
    assert result.returncode == 2 and message in result.stdout, result.stdout + result.stderr
    (run,) = run_folders(project, "tiny")
    (stage,) = read_json(run / "verdict.json")["stages"]
    assert stage["status"] == "failed" and message in stage["error"]
    archived = nbformat.read(run / "notebooks" / "probe.ipynb", as_version=4)
    assert archived.metadata["signoff"]["status"] == "failed" and "FAILED" in archived.cells[0].source
