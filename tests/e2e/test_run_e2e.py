"""`signoff run` end to end: real Papermill, real kernels, the real CLI in its own process."""

import json
import re
from html.parser import HTMLParser

import nbformat
import pytest
from conftest import decide, keep_stages, read_json, run_folders, signoff, write_notebook

from runner import records
from runner.analysis import datasets
from runner.judge.evidence import RUN_FACTS
from runner.judge.evidence import declared as declared_name
from runner.run import stages

pytestmark = pytest.mark.slow

EVIDENCE_STAGES = ("explain", "fairness", "drift")


class Outline(HTMLParser):
    """A page's headings and folded sections (``<details>`` summaries) in order, and its text after the banner."""

    def __init__(self, page: str):
        super().__init__()
        self.headings, self.summaries, self.text, self._into = [], [], "", None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2"):
            self._into = self.headings
            self.headings.append("")
        elif tag == "summary":
            self._into = self.summaries
            self.summaries.append("")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "summary"):
            self._into[-1] = self._into[-1].replace("\u00b6", "").strip()
            self._into = None

    def handle_data(self, data):
        self.text += data
        if self._into is not None:
            self._into[-1] += data


def test_example_run_passes_then_a_stricter_policy_blocks(example):
    project, run, result = example.project, example.run, example.result
    for stage in ("eda", "train", "validate", *EVIDENCE_STAGES):
        for event in ("started", "passed in"):  # plain log lines: timestamp, level, stage, message
            assert re.search(rf"^\d{{4}}-\d\d-\d\dT[\d:]+Z INFO +{stage} +{event}", result.stdout, re.M), (stage, event)
        assert (run / "notebooks" / f"{stage}.ipynb").is_file() and (run / "html" / f"{stage}.html").is_file()
    for stage in ("eda", "validate", *EVIDENCE_STAGES):  # their figures, drawn in forked kernels, are in the pages
        assert "data:image/png;base64" in (run / "html" / f"{stage}.html").read_text(encoding="utf-8"), stage
    assert f"run folder: {run}" in result.stdout and "verdict: PASS" in result.stdout
    for name in ("params.yaml", "report.ipynb", "html/report.html", "evidence.json", "verdict.json", "schema.json",
                 "model_card.md", "model_card.html", "evidently_drift.html"):
        assert (run / name).is_file(), name
    verdict = read_json(run / "verdict.json")
    assert verdict["verdict"] == "PASS" and verdict["model"] == "credit-default"
    assert {g["status"] for g in verdict["gates"] if g["severity"] == "block"} == {"pass"}
    assert {g["status"] for g in verdict["gates"]} <= {"pass", "inconclusive"}  # undecided warnings change nothing
    for gate in verdict["gates"]:
        assert set(gate) >= {"id", "metric", "status", "observed", "threshold", "severity", "message"}
    judged = {g["id"]: g for g in verdict["gates"] if "interval" in g}  # every figure with an interval: on it
    assert set(judged) == {"discrimination", "recall-met", "disparate-impact-sex", "equal-opportunity-sex",
                           "disparate-impact-age", "equal-opportunity-age", "domain-shift"}
    assert all(g["level"] == 0.95 and g["interval"][0] <= g["interval"][1] for g in judged.values())
    assert {g["rows"] for i, g in judged.items() if i != "domain-shift"} == {2000}  # the test rows
    assert judged["domain-shift"]["rows"] == 5000 and judged["domain-shift"]["status"] == "pass"  # current rows
    assert [s["status"] for s in verdict["stages"]] == ["passed"] * 8  # the seven stages, and a careless one
    assert all(s["peak_memory_mb"] > 50 for s in verdict["stages"])  # each kernel's peak, for sizing workers
    evidence = read_json(run / "evidence.json")
    assert (
        0.7 < evidence["validate.roc_auc_ci_low"] < evidence["validate.roc_auc"] < evidence["validate.roc_auc_ci_high"]
    )
    assert evidence["validate.roc_auc_lift"] == pytest.approx(evidence["validate.roc_auc"] - 0.5)
    assert evidence["eda.n_rows"] == 10000 and evidence["train.test_rows"] == 2000
    assert evidence["validate.robustness_failures"] == 0 and evidence["validate.latency_p99_ms"] > 0
    assert evidence["explain.top_feature"] in evidence["train.features"]
    assert evidence["fairness.sex.excluded_groups"] == [] and evidence["fairness.sex.groups_compared"] == 2
    assert evidence["drift.share_drifted_columns"] <= 0.1 and evidence["drift.domain_classifier_auc"] < 0.6
    checklist = {item["id"]: item["status"] for item in verdict["checklist"]}
    assert checklist["model.leakage"] == "answered" and checklist["problem.statement"] == "attested"
    assert checklist["use.regulation"] == "open" and any("checklist items open" in w for w in verdict["warnings"])
    # every name each stage recorded is one its notebook declares: the declarations have not fallen behind
    assert not [w for w in verdict["warnings"] if "not declared" in w]
    declared = [*RUN_FACTS, *(name for stage in stages.discover(project / "notebooks") for name in stage.declared())]
    assert [name for name in evidence if not declared_name(name, declared)] == []
    manifest = read_json(run / "manifest.json")
    decided = {"decisions.jsonl", *(f"decisions/{p.name}" for p in (run / "decisions").iterdir())}  # after archiving
    assert "decisions/003-model_card.md" in decided  # run finished, registered, promoted (auto): the card names them
    files = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {"manifest.json"} - decided
    listed = {**manifest["files"], **manifest["html"]}  # the renders are hashed after the rest: they show its hash
    assert set(listed) == files and all(name.startswith("html/") for name in manifest["html"])
    assert all(listed[f]["sha256"] == records.sha256_file(run / f) for f in files)
    for page in (run / "html").glob("*.html"):  # rendered ahead or at the end, each names the sealed run
        text = page.read_text(encoding="utf-8")
        assert f"manifest sha256: <b>{manifest['sha256']}</b>" in text and "verdict: <b>PASS</b>" in text, page.name
        assert "signoff-pending" not in text, page.name
    assert not (run / "work").exists() and not list((project / "outputs" / "credit-default").glob(".tmp-*"))
    report = (run / "html" / "report.html").read_text(encoding="utf-8")
    for text in ("PASS", "discrimination", "data:image/png", "model.leakage", "ATTESTED", "evidently_drift.html"):
        assert text in report, text
    outline = Outline(report)  # one page, top to bottom, in the order a reviewer reads it
    assert outline.headings == ["Gating report", "Gates", "Against the champion", "Gate policy", "Release checklist",
                                "Evidence map", "Stages", "Key plots and tables", "All evidence"]
    passed = sum(g["status"] == "pass" for g in verdict["gates"])
    why = f"PASS: {passed} of {len(verdict['gates'])} gates passed"
    assert outline.text.index(why) < outline.text.index("Gates")  # the why, on top
    assert outline.summaries == [f"All {len(evidence)} figures the stages recorded (open to read)"]  # folded
    code = '<span class="kn">import</span>'  # nbconvert's highlighting of a code cell's import
    assert code not in report and code in (run / "html" / "validate.html").read_text(encoding="utf-8")  # for readers
    texts = [p.read_text(encoding="utf-8", errors="ignore") for p in run.rglob("*") if p.suffix in (".ipynb", ".html")]
    assert not [t for t in texts if ".tmp-" in t]  # archived pages and notebooks name the final run folder
    assert not [p.name for p in (run / "html").glob("*.html") if "&amp;lt;" in p.read_text(encoding="utf-8")]
    card = (run / "model_card.md").read_text(encoding="utf-8")
    assert "Route risky loan applications" not in card and "Rank personal-loan applications" in card
    assert f"{evidence['validate.roc_auc']:.4g}" in card and "| sex |" in card

    (project / "params" / "strict.yaml").write_text(
        "model: credit-default\n"
        "gates:\n"
        "  - {id: discrimination, metric: validate.roc_auc, min: 0.999, why: impossible on purpose}\n",
        encoding="utf-8",
    )
    keep_stages(project, "eda", "train", "validate")
    result = signoff("run", "params/strict.yaml", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: BLOCKED" in result.stdout
    first, second = run_folders(project)
    verdict = read_json(second / "verdict.json")
    gate = {g["id"]: g for g in verdict["gates"]}["discrimination"]
    assert gate["status"] == "fail" and gate["threshold"] == {"min": 0.999} and gate["observed"] < 0.999
    changes = {c["id"]: c["change"] for c in verdict["gate_policy_changes"]}
    assert changes["discrimination"] == "changed" and changes["calibration"] == "removed"
    assert read_json(second / "manifest.json")["previous"] == records.sha256_file(first / "manifest.json")
    assert "BLOCKED" in (second / "html" / "report.html").read_text(encoding="utf-8")
    verified = decide("verify", "outputs", cwd=project)
    assert verified.returncode == 0 and "intact: 2 runs" in verified.stdout, verified.stdout + verified.stderr


def test_biased_leaky_and_drifted_data_fails_the_gates_that_measure_it(project):
    """bias 2 on 3,000 rows: disparate impact between sexes fails on its whole interval (not merely undecided)."""
    keep_stages(project, "train", "explain", "fairness", "drift", rows=3000)  # the stages that measure it
    knobs = ("data.synthetic.bias=2", "data.synthetic.leak=true", "data.synthetic.drift=2")
    result = signoff("run", "params/credit.yaml", *(arg for knob in knobs for arg in ("-p", knob)), cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    decided = read_json(run_folders(project)[0] / "verdict.json")
    failed = {g["id"]: g["severity"] for g in decided["gates"] if g["status"] == "fail"}
    assert decided["verdict"] == "BLOCKED" and failed["disparate-impact-sex"] == failed["leakage"] == "block"
    assert failed["drift-share"] == failed["domain-shift"] == "warn"  # drift alone would be a WARN (exit 0)


def test_unbiased_data_of_3000_rows_is_not_blocked_by_chance_and_an_undecided_gate_asks_for_a_person(project):
    """The example's policy on 3,000 unbiased rows: the equal-opportunity difference between sexes cannot be told
    from 0.1 on 600 test rows, so the run is WARN (registered, not promoted: a person decides), the interval at
    the run's confidence level is in the verdict, the terminal and the report, with the rows that would decide it."""
    keep_stages(project, "train", "validate", "fairness", "infra", rows=3000)
    result = signoff("run", "params/credit.yaml", "-p", "gates_confidence=0.9", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = run_folders(project)
    verdict, evidence = read_json(run / "verdict.json"), read_json(run / "evidence.json")
    gates = {g["id"]: g for g in verdict["gates"]}
    eop, name = gates["equal-opportunity-sex"], "fairness.sex.equal_opportunity_difference"
    assert verdict["verdict"] == "WARN" and eop["status"] == "inconclusive" and eop["severity"] == "block"
    assert eop["estimate"] == evidence[name] and eop["interval"] == [evidence[f"{name}_ci_low"],
                                                                     evidence[f"{name}_ci_high"]]
    assert eop["level"] == 0.9 and eop["rows"] == evidence["fairness.sex.n_rows"] == 600 and eop["more_rows"] > 0
    assert gates["discrimination"]["status"] == "pass" and gates["discrimination"]["interval"][0] > 0.7
    assert "registered as version 1" in result.stdout and "promoted" not in result.stdout  # WARN: never automatic
    assert re.search(r"^equal-opportunity-sex .* 90% \[[\d.]+, [\d.]+\] .* INCONCLUSIVE$", result.stdout, re.M)
    assert f"about {eop['more_rows']:,} more test rows would decide it" in result.stdout
    assert "gates_confidence: 0.9" in (run / "params.yaml").read_text(encoding="utf-8")
    report = nbformat.read(run / "report.ipynb", as_version=4)
    shown = [o for c in report.cells if c.cell_type == "code" and "forest_plot" in c.source for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in shown)  # the forest plot
    assert any("**equal-opportunity-sex** is inconclusive" in o.get("data", {}).get("text/markdown", "")
               for o in shown)


def test_real_csv_with_a_drifted_current_file_that_changed_shape(project, tmp_path):
    keep_stages(project, "eda", "train", "drift")  # the stages that read both files
    reference, _ = datasets.synthetic_credit(5000, seed=11)
    _, current = datasets.synthetic_credit(5000, seed=11, drift=1.5)
    reference.assign(default=reference["default"].map({1: "bad", 0: "good"})).to_csv(tmp_path / "train.csv",
                                                                                     index=False)
    # production's newest rows: no labels yet, one column gone, a category never seen
    current = current.drop(columns=["housing", "default"]).assign(purpose=current["purpose"].replace("other", "crypto"))
    current.to_parquet(tmp_path / "current.parquet")
    (project / "params" / "mine.yaml").write_text(
        "extends: credit.yaml\nmodel: mine\n"
        f"data: {{path: {tmp_path / 'train.csv'}, current_path: {tmp_path / 'current.parquet'}, "
        "target: default, positive_label: bad}\n", encoding="utf-8")
    result = signoff("run", "params/mine.yaml", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    (run,) = run_folders(project, "mine")
    verdict = read_json(run / "verdict.json")
    gates = {g["id"]: g for g in verdict["gates"]}
    assert any("lacks the training data's feature columns 'housing'" in w for w in verdict["warnings"])
    evidence = read_json(run / "evidence.json")
    assert evidence["eda.n_rows"] == 5000 and evidence["eda.positive_rate"] == pytest.approx(
        reference["default"].mean()
    )
    assert gates["schema"]["status"] == "fail" and evidence["eda.schema_violations"] >= 3
    assert gates["drift-share"]["status"] == "fail" and gates["domain-shift"]["status"] == "fail"
    assert "housing" not in evidence["drift.drifted_columns"]
    eda = (run / "html" / "eda.html").read_text(encoding="utf-8")
    assert "column removed" in eda and "crypto" in eda


def test_missing_target_column_is_named_before_any_notebook(project, tmp_path):
    datasets.synthetic_credit(500, seed=1)[0].drop(columns=["default"]).to_csv(tmp_path / "d.csv", index=False)
    (project / "params" / "bad.yaml").write_text(
        f"model: bad\ndata: {{path: {tmp_path / 'd.csv'}, target: default}}\ngates: []\n", encoding="utf-8")
    result = decide("run", "params/bad.yaml", cwd=project)
    assert result.returncode == 2
    assert f"{tmp_path / 'd.csv'}: column 'default'" in result.stderr and "Traceback" not in result.stderr
    assert run_folders(project, "bad") == []


def test_unknown_stage_parameter_stops_before_any_notebook(project):
    result = decide("run", "params/credit.yaml", "-p", "stages.train.no_such_param=1", cwd=project)
    assert result.returncode == 2
    assert "params/credit.yaml: stages.train.no_such_param" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "outputs").exists() and not (project / "scratch").exists()


def test_injected_parameter_name_is_refused(project):
    (project / "params" / "evil.yaml").write_text(
        'extends: credit.yaml\nstages:\n  train:\n    "x=1\\nimport os": 1\n', encoding="utf-8")
    result = decide("run", "params/evil.yaml", cwd=project)
    assert result.returncode == 2 and "not a parameter name" in result.stderr
    assert not (project / "outputs").exists()


def test_crashing_stage_is_archived_and_its_dependants_skipped(project):
    tiny_project(project, "x = 1")
    write_notebook(project / "notebooks" / "02_train.ipynb", "y = 2", 'raise RuntimeError("boom in training")')
    write_notebook(project / "notebooks" / "03_validate.ipynb", "z = 3")  # numbered after train: needs it
    result = signoff("run", "params/tiny.yaml", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RuntimeError: boom in training" in result.stdout and "verdict: ERROR" in result.stdout
    (run,) = run_folders(project, "tiny")
    verdict = read_json(run / "verdict.json")
    stages = {s["name"]: s for s in verdict["stages"]}
    assert verdict["verdict"] == "ERROR"
    assert stages["probe"]["status"] == "passed" and stages["train"]["status"] == "failed"
    assert "boom in training" in stages["train"]["error"]
    assert stages["validate"]["status"] == "skipped" and not (run / "notebooks" / "validate.ipynb").exists()
    archived = nbformat.read(run / "notebooks" / "train.ipynb", as_version=4)
    assert archived.metadata["signoff"]["status"] == "failed"
    assert "boom in training" in json.dumps(archived.cells)
    assert (run / "html" / "train.html").is_file() and "manifest.json" in {p.name for p in run.iterdir()}


def test_stages_that_end_early_without_error_still_block(project):
    """One stage calls sys.exit(0) before its evidence, another swallows the exception that skipped its own."""
    tiny_project(project, "import scrapbook as sb\nsb.glue('rows', 500)",
                 "import sys\nsys.exit(0)\nsb.glue('auc', 0.9)", evidence=["rows", "auc"])
    write_notebook(project / "notebooks" / "02_other.ipynb", "import scrapbook as sb",
                   "try:\n    1 / 0\n    sb.glue('ece', 0.01)\nexcept ZeroDivisionError:\n    pass",
                   needs=[], evidence=["ece"])
    (project / "params" / "tiny.yaml").write_text(
        "model: tiny\ngates:\n"
        "  - {id: enough-data, metric: probe.rows, min: 100}\n"
        "  - {id: discrimination, metric: probe.auc, min: 0.7}\n"
        "  - {id: calibration, metric: other.ece, max: 0.05}\n", encoding="utf-8")
    result = signoff("run", "params/tiny.yaml", cwd=project)
    assert result.returncode in (1, 2) and "verdict: PASS" not in result.stdout, result.stdout + result.stderr
    verdict = read_json(run_folders(project, "tiny")[0] / "verdict.json")
    gates = {g["id"]: g["status"] for g in verdict["gates"]}
    assert gates["discrimination"] == "missing" and gates["calibration"] == "missing"
    assert gates["enough-data"] == "pass"
    assert verdict["verdict"] in ("BLOCKED", "ERROR")


def tiny_project(project, *sources, parameters=None, evidence=None):
    """Replace the stages with one small notebook; the report template stays the real one."""
    for path in (project / "notebooks").glob("*.ipynb"):
        path.unlink()
    write_notebook(project / "notebooks" / "01_probe.ipynb", *sources, parameters=parameters, evidence=evidence)
    (project / "params" / "tiny.yaml").write_text("model: tiny\nexecution: {stage_timeout: 6}\n", encoding="utf-8")


def test_string_parameter_reaches_the_notebook_unchanged(project):
    tiny_project(project, "import scrapbook as sb\nsb.glue('text', text)\nsb.glue('count', count)",
                 parameters='text: str = ""\ncount: int = 0')
    tricky = 'quote " apostrophe \' back\\slash\nnew line é 中文 {x} $HOME `id`'
    (project / "params" / "tiny.yaml").write_text(
        "model: tiny\nstages:\n  probe:\n    count: 3\n    text: " + json.dumps(tricky) + "\n", encoding="utf-8")
    result = signoff("run", "params/tiny.yaml", cwd=project)
    # no model was logged, so the built-in servability gate blocks (fail closed)
    assert result.returncode == 1, result.stdout + result.stderr
    run = run_folders(project, "tiny")[0]
    assert [g["id"] for g in read_json(run / "verdict.json")["gates"] if g["status"] != "pass"] == ["infra.loadable"]
    evidence = read_json(run / "evidence.json")
    assert evidence["probe.text"] == tricky and evidence["probe.count"] == 3


def test_timeout_and_dead_kernel_fail_their_stages(project):
    tiny_project(project, "x = 1", "import time\ntime.sleep(120)", "y = 2")
    write_notebook(project / "notebooks" / "02_dies.ipynb", "x = 1",
                   "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "y = 2", needs=[])
    result = signoff("run", "params/tiny.yaml", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    (run,) = run_folders(project, "tiny")
    stages = {s["name"]: s for s in read_json(run / "verdict.json")["stages"]}
    for name, message in (("probe", "stage timed out after 6 s"), ("dies", "kernel died")):
        assert message in result.stdout and stages[name]["status"] == "failed" and message in stages[name]["error"]
        archived = nbformat.read(run / "notebooks" / f"{name}.ipynb", as_version=4)
        assert archived.metadata["signoff"]["status"] == "failed" and "FAILED" in archived.cells[0].source
