"""``outputs/index.html``: the auditor's way in, a page listing every model and run.

Built from the archive alone (verdicts, decisions, ledgers), so it opens from a
file share without MLflow or Jupyter.  It is not part of any run: it is rewritten
(atomically, under its own lock) after every run and every decision.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from filelock import FileLock

from runner import records
from runner.audit import journal
from runner.audit.archive import LEDGER, finished_runs
from runner.audit.render import CSP
from runner.errors import SignoffError

PAGE = "index.html"
STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:2em}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
         ".PASS{color:#1e8449}.WARN{color:#b9770e}.BLOCKED,.ERROR{color:#c0392b}")


def write(output_root: Path) -> Path:
    target = output_root / PAGE
    output_root.mkdir(parents=True, exist_ok=True)
    with FileLock(output_root / f".{PAGE}.lock"):
        temp = target.with_name(f".{PAGE}.{os.getpid()}")
        temp.write_text(page(output_root), encoding="utf-8")
        os.replace(temp, target)
    return target


def page(output_root: Path) -> str:
    models = sorted(p for p in output_root.iterdir() if p.is_dir() and finished_runs(p))
    sections = "\n".join(_model_section(model, output_root) for model in models) or "<p>No runs yet.</p>"
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>Signoff archive</title><style>{STYLE}</style></head><body>\n"
        f"<h1>Signoff archive</h1>\n<p>{len(models)} models under <code>{html.escape(str(output_root))}</code>. "
        "Check that nothing was altered with <code>signoff verify</code>.</p>\n"
        f"{sections}\n</body></html>\n"
    )


def _model_section(model_dir: Path, output_root: Path) -> str:
    champion_run = champion(model_dir)
    rows = []
    for run in reversed(finished_runs(model_dir)):  # newest first
        archived = records.ArchivedRun(run)
        try:
            verdict = archived.verdict
        except SignoffError:  # listed all the same: `signoff verify` says what is wrong with it
            verdict = records.Verdict(model_dir.name, run.name, "unreadable")
        decided = [e for e in archived.decisions if e.get("event") not in ("run finished", "registered")]
        decision = f"{decided[-1]['event']} by {decided[-1]['by']}" if decided else ""
        report = run / "html" / "report.html"
        link = run.relative_to(output_root).as_posix()
        cells = [
            f'<a href="{html.escape(link)}/html/report.html">{html.escape(run.name)}</a>' if report.exists()
            else html.escape(run.name),
            html.escape(str(verdict.started)[:19].replace("T", " ")),
            f'<b class="{html.escape(str(verdict.verdict))}">{html.escape(str(verdict.verdict))}</b>',
            html.escape(", ".join(verdict.failed_gates)) or "-",
            html.escape(decision) or "-",
            "&#9733; champion" if run.name == champion_run else "",
            f'<a href="{html.escape(link)}/model_card.html">card</a>' if (run / "model_card.html").exists() else "",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in ("run", "started (UTC)", "verdict", "gates not passed (failed, missing "
                                               "or undecided)", "last decision", "alias", "model card"))
    return (f"<h2>{html.escape(model_dir.name)}</h2>\n<table><tr>{header}</tr>\n" + "\n".join(rows) + "\n</table>")


def champion(model_dir: Path) -> str | None:
    """The run whose model holds the champion alias, as the model's ledger last recorded it."""
    moves = [e for e in journal.champion_moves(model_dir / LEDGER) if e.get("run_id")]
    return moves[-1]["run_id"] if moves else None
