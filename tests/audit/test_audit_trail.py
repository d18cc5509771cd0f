"""Redaction, the archive index and re-run comparison, without kernels."""

import nbformat
from conftest import ROOT, ActiveContent

from runner import records
from runner.audit import archive, index, journal, model_card, redact
from runner.config import DEFAULTS
from runner.run import rerun


def test_secret_values_are_redacted_in_every_written_form_and_nowhere_else(tmp_path):
    env = {"MY_API_TOKEN": 'ab"cd/ef-123456', "DB_PASSWORD": "hunter22hunter", "PIP_KEYRING": "true",
           "HOME": "/root/not-secret-at-all"}
    redactor = redact.from_environment(env)
    assert redactor.names == ("DB_PASSWORD", "MY_API_TOKEN") and redactor.too_short == ("PIP_KEYRING",)
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('print(token)')
    cell.outputs = [nbformat.v4.new_output("stream", text='ab"cd/ef-123456 and hunter22hunter\n')]
    notebook.cells = [cell]
    notebook.metadata["papermill"] = {"parameters": {"token": 'ab"cd/ef-123456', "flag": True}}
    nbformat.write(notebook, tmp_path / "stage.ipynb")
    (tmp_path / "page.html").write_text("<p>ab&quot;cd/ef-123456</p><p>xhunter22hunter</p>")
    (tmp_path / "log.txt").write_text("store https://ann:pa55word@host:5000/x, home /root/not-secret-at-all\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe hunter22hunter")

    changed = redactor.folder(tmp_path)
    assert sorted(p.name for p in changed) == ["log.txt", "page.html", "stage.ipynb"]
    scrubbed = nbformat.read(tmp_path / "stage.ipynb", as_version=4)  # still a valid notebook
    assert scrubbed.metadata.papermill.parameters == {"token": "***", "flag": True}
    assert scrubbed.cells[0].outputs[0].text == "*** and ***\n"
    # a value inside a longer word is not a match: a secret that happens to be a substring stays unharmed
    assert (tmp_path / "page.html").read_text() == "<p>***</p><p>xhunter22hunter</p>"
    assert (tmp_path / "log.txt").read_text() == "store https://***@host:5000/x, home /root/not-secret-at-all\n"
    assert redactor.value({"a": ["hunter22hunter", 3], "b": None}) == {"a": ["***", 3], "b": None}
    assert redact.from_environment({}).text("https://t0ken@h/") == "https://***@h/"


def test_index_lists_runs_newest_first_with_verdict_failed_gates_decision_and_champion(tmp_path):
    runs = []
    for verdict, gates in (("PASS", []), ("BLOCKED", [{"id": "calibration", "status": "fail"},
                                                      {"id": "drift", "status": "missing"}])):
        folder = archive.start(tmp_path, "credit")
        records.write_json(folder.temp / "verdict.json", {"verdict": verdict, "gates": gates,
                                                          "started": "2026-11-25T10:00:00+00:00"})
        (folder.temp / "html").mkdir()
        (folder.temp / "html" / "report.html").write_text("<p>report</p>")
        runs.append(archive.finalize(folder, archive.seal(folder, "credit", archive.previous_run(tmp_path / "credit"))))
    journal.append(runs[0] / records.DECISIONS, {"event": "approved", "by": "carol"})
    journal.append(tmp_path / "credit" / archive.LEDGER, {"event": "approved", "run_id": runs[0].name, "version": "1"})
    journal.append(tmp_path / "credit" / archive.LEDGER, {"event": "rejected", "run_id": runs[1].name, "version": "2"})
    page = index.write(tmp_path).read_text(encoding="utf-8")
    rows = page.split("<tr>")[2:]
    assert runs[1].name in rows[0] and "BLOCKED" in rows[0] and "calibration, drift" in rows[0]
    assert "champion" not in rows[0]
    assert runs[0].name in rows[1] and "approved by carol" in rows[1] and "&#9733; champion" in rows[1]
    assert f'href="credit/{runs[0].name}/html/report.html"' in rows[1]
    assert "Content-Security-Policy" in page and "<script" not in page
    assert "<th></th>" not in page  # every column says what it holds


def test_rerun_comparison_names_each_difference_beyond_the_tolerance(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    for folder, auc, rows, sklearn, seconds in ((before, 0.81, 1000, "1.6.1", 1.0), (after, 0.81 + 1e-12, 1000,
                                                                                     "1.7.0", 9.0)):
        folder.mkdir()
        records.write_json(folder / "evidence.json", {
            "validate.roc_auc": auc, "eda.n_rows": rows, "train.features": ["a", "b"],
            "train.training_seconds": seconds,
            "validate.ece": float("nan"), **({"drift.psi": 0.2} if folder == before else {"explain.top": "a"}),
        })
        records.write_json(folder / "provenance.json", {"data": {"reference": {"content": {"sha256": str(rows)}}},
                                                        "distributions": {"scikit-learn": sklearn}})
    same = rerun.compare(before, before, 1e-9)
    assert same.reproduced and same.compared == 5 and same.volatile == ["train.training_seconds"]
    found = rerun.compare(before, after, 1e-9)
    assert found.differences == [
        "distribution scikit-learn: 1.6.1 -> 1.7.0",
        "drift.psi: 0.2 -> missing in the re-run",
        'explain.top: missing in the original -> "a"',
    ]
    assert rerun.compare(before, after, 1e-15).differences[-1].startswith("validate.roc_auc: 0.81 -> 0.81000000000")


def test_model_card_and_index_pages_carry_no_active_content(tmp_path):
    hostile = ('see [docs](javascript:alert(1)) <script>alert(2)</script> <img src=x onerror="alert(3)"> '
               '![tracker](http://evil.example/pixel.png) [ok](https://bank.example/policy) a < b')
    params = {"card": {"intended_use": hostile, "owners": "<b onclick=alert(4)>risk team</b>"},
              "data": {**DEFAULTS["data"]}}
    folder = archive.start(tmp_path, "credit")
    verdict = {"model": "credit", "run_id": folder.run_id, "verdict": "PASS", "finished": "now", "warnings": [],
               "stages": [], "gates": [{"id": '<img src=x onerror="alert(5)">', "metric": "m", "status": "fail",
                                        "severity": "block", "observed": 1, "threshold": {"min": 2}, "message": ""}],
               "started": "2026-11-25T10:00:00+00:00"}
    template = ROOT / "templates" / "model_card.md.j2"
    model_card.write(template, folder.temp, params, records.Verdict.from_json(verdict), {})
    records.write_json(folder.temp / "verdict.json", verdict)
    run = archive.finalize(folder, archive.seal(folder, "credit", None))
    journal.append(run / records.DECISIONS, {"event": "approved", "by": '<script>alert(6)</script>'})
    card = (run / "model_card.html").read_text(encoding="utf-8")
    for page in (card, index.write(tmp_path).read_text(encoding="utf-8")):
        assert ActiveContent(page).found == []
        assert "http://evil.example" not in page
    assert 'href="https://bank.example/policy"' in card and "risk team" in card and "a &lt; b" in card
    assert "&lt;script" not in card and "alert(2)" in card  # the card's raw HTML is removed, its text kept
    assert hostile in (run / "model_card.md").read_text(encoding="utf-8")  # the Markdown keeps what was written
