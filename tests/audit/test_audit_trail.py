"""Redaction, the archive index and re-run comparison, without kernels."""

from html.parser import HTMLParser

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


def test_uri_credentials_are_masked_line_by_line_as_the_whole_text_would_be():
    """Only lines holding ``://`` are searched (fast over base64 images): the same text as searching it all."""
    text = ("iVBORw0KGgo+/AAAA" * 500 + "\n x git+ssh://me:pw@h/ _a://u@h -b://u@h\nssh://\nhttps://n@h\r\n"
            "9c://u@h\n\nsqlite:///outputs/mlflow.db ftp://a@b@c")
    whole = redact.URI_CREDENTIALS.sub(r"\g<1>***@", text)
    assert redact.without_uri_credentials(text) == whole and whole.count("***@") == 4


class Tables(HTMLParser):
    """A page's tables as rows of cell texts, and its SVG charts' tooltips, as a reader sees them."""

    def __init__(self, page: str):
        super().__init__()
        self.tables, self.tooltips, self.links, self._cell, self._in_title = [], [], [], None, False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "title" and self.tables:
            self._in_title = True
            self.tooltips.append("")
        elif tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.tooltips[-1] += data
        elif self._cell is not None:
            self._cell += data


def _archived(root, model, verdict, gates, started, extra=None):
    folder = archive.start(root, model)
    records.write_json(folder.temp / "verdict.json", {"verdict": verdict, "gates": gates, "started": started,
                                                      **(extra or {})})
    (folder.temp / "html").mkdir()
    (folder.temp / "html" / "report.html").write_text("<p>report</p>")
    return archive.finalize(folder, archive.seal(folder, model, archive.previous_run(root / model)))


def test_the_index_has_a_row_per_model_and_a_page_per_model_with_runs_trends_champions_and_monitoring(tmp_path):
    auc = {"id": "discrimination", "metric": "validate.roc_auc", "threshold": {"min": 0.7}}
    runs = [_archived(tmp_path, "credit", "PASS", [{**auc, "observed": 0.81, "interval": [0.78, 0.84],
                                                    "status": "pass"}], "2026-11-25T10:00:00+00:00"),
            _archived(tmp_path, "credit", "BLOCKED", [{**auc, "observed": 0.66, "interval": [0.62, 0.69],
                                                       "status": "fail"},
                                                      {"id": "drift", "metric": "drift.psi", "status": "missing",
                                                       "threshold": {"max": 0.2}}], "2026-11-26T10:00:00+00:00")]
    monitor = _archived(tmp_path, "credit.monitor", "WARN", [], "2026-11-27T10:00:00+00:00",
                        {"kind": "monitor", "current": "/data/november.parquet", "champion": {"version": "1"}})
    journal.append(runs[0] / records.DECISIONS, {"event": "approved", "by": "carol"})
    journal.append(tmp_path / "credit" / archive.LEDGER, {"event": "approved", "run_id": runs[0].name, "version": "1",
                                                          "by": "carol", "at": "2026-11-25T11:00:00+00:00"})
    journal.append(tmp_path / "credit" / archive.LEDGER, {"event": "rejected", "run_id": runs[1].name, "version": "2"})

    front = index.write(tmp_path).read_text(encoding="utf-8")
    overview = Tables(front)
    assert "<p>1 model under" in front
    assert "<p>2 runs; champion: version 1" in (tmp_path / "index-credit.html").read_text(encoding="utf-8")
    (header, row), = overview.tables  # the monitor folder is not a model of its own
    assert dict(zip(header, row)) == {
        "model": "credit", "runs": "2", "latest run": runs[1].name, "started (UTC)": "2026-11-26 10:00:00",
        "verdict": "BLOCKED", "champion": f"version 1 (run {runs[0].name})", "last monitor": "WARN 2026-11-27 10:00:00",
        "verdicts so far": "BLOCKED 1, PASS 1"}
    assert overview.links == ["index-credit.html", f"credit/{runs[1].name}/html/report.html"]

    text = (tmp_path / "index-credit.html").read_text(encoding="utf-8")
    model = Tables(text)
    trends, listed, champions, monitoring = model.tables
    assert [r[:3] + r[4:] for r in trends[1:]] == [["discrimination", "validate.roc_auc", "min 0.7",
                                                    "fail: 0.66 [0.62, 0.69]", "2"],
                                                   ["drift", "drift.psi", "max 0.2", "missing", "1"]]
    assert model.tooltips == ["min 0.7", f"{runs[0].name}: 0.81 [0.78, 0.84] (pass)",
                              f"{runs[1].name}: 0.66 [0.62, 0.69] (fail)", "max 0.2"]  # drift: no figure to draw
    assert [r[0] for r in listed[1:]] == [runs[1].name, runs[0].name]  # newest first
    assert listed[1][2:6] == ["BLOCKED", "discrimination, drift", "-", "-"]
    assert listed[2][2:6] == ["PASS", "-", "approved by carol", "\u2605 champion"]
    assert champions[1] == ["2026-11-25 11:00:00", "approved", "1", runs[0].name, "carol", "-"]
    assert monitoring[1] == [monitor.name, "2026-11-27 10:00:00", "WARN", "1", "november.parquet", "-"]
    assert f'href="credit/{runs[0].name}/html/report.html"' in text and 'href="index.html"' in text
    for page in (tmp_path / "index.html", tmp_path / "index-credit.html"):
        assert "Content-Security-Policy" in page.read_text() and ActiveContent(page.read_text()).found == []
    assert all(cell for table in overview.tables + model.tables for cell in table[0])  # every column headed


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
