"""``outputs/index.html``: the auditor's way in, one row per model; ``outputs/index-<model>.html``: a model's
runs, the trend of each gated figure across them, its champion history and its monitor runs.

Built from the archive alone (verdicts, decisions, ledgers), so the pages open from a file share without
MLflow or Jupyter; one page per model is the filter, and nothing on any page runs a script.  They are not part
of any run: they are rewritten (each atomically, under the index's lock) after every run and every decision.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from filelock import FileLock

from runner import records
from runner.audit import journal, trend
from runner.audit.archive import LEDGER, finished_runs
from runner.audit.render import CSP
from runner.errors import SignoffError

PAGE = "index.html"  # the overview: one row per model
NOT_DECISIONS = ("run finished", "registered")  # journal events a run gets without anyone deciding
STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:2em}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:middle}"
         ".PASS{color:#1e8449}.WARN{color:#b9770e}.BLOCKED,.ERROR{color:#c0392b}nav{margin-bottom:1em}")


def model_page(model: str) -> str:
    """The file name of a model's own page, beside the overview (a model name holds no ``/`` or ``.``)."""
    return f"index-{model}.html"


def write(output_root: Path) -> Path:
    """The overview and every model's page, each replaced whole (under the index's lock)."""
    target = output_root / PAGE
    output_root.mkdir(parents=True, exist_ok=True)
    with FileLock(output_root / f".{PAGE}.lock"):
        models = _models(output_root)
        _replace(target, page(output_root, models))
        for model in models:
            _replace(output_root / model_page(model), _model_page(output_root, model))
    return target


def page(output_root: Path, models: list[str] | None = None) -> str:
    models = _models(output_root) if models is None else models
    rows = [_summary_row(output_root, model) for model in models]
    body = _table(("model", "runs", "latest run", "started (UTC)", "verdict", "champion", "last monitor",
                   "verdicts so far"), rows) if rows else "<p>No runs yet.</p>"
    return _document("Signoff archive", (
        f"<h1>Signoff archive</h1>\n<p>{_count(len(models), 'model')} under "
        f"<code>{html.escape(str(output_root))}</code>; "
        "each model's page has its runs, the trend of every gated figure, its champion history and its "
        "monitoring. Check that nothing was altered with <code>signoff verify</code>.</p>\n" + body))


def _models(output_root: Path) -> list[str]:
    """Models with a finished run or monitor run; a monitor folder is shown under its model, not beside it."""
    if not output_root.is_dir():
        return []
    return sorted({p.name.removesuffix(records.MONITOR_SUFFIX) for p in output_root.iterdir()
                   if p.is_dir() and finished_runs(p)})


def _summary_row(output_root: Path, model: str) -> str:
    runs = [_read(run) for run in finished_runs(output_root / model)]
    monitors = [_read(run) for run in finished_runs(output_root / f"{model}{records.MONITOR_SUFFIX}")]
    latest = runs[-1] if runs else None
    champion_run = champion(output_root / model)
    counts = {}
    for _, verdict in runs:
        counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
    cells = [
        f'<a href="{html.escape(model_page(model))}">{html.escape(model)}</a>',
        str(len(runs)),
        _run_link(output_root, latest[0]) if latest else "-",
        _when(latest[1]) if latest else "-",
        _verdict(latest[1]) if latest else "-",
        html.escape(_champion_text(output_root / model, champion_run)) or "-",
        f"{_verdict(monitors[-1][1])} {_when(monitors[-1][1])}" if monitors else "-",
        html.escape(", ".join(f"{name} {n}" for name, n in sorted(counts.items()))) or "-",
    ]
    return _row(cells)


def _model_page(output_root: Path, model: str) -> str:
    model_dir = output_root / model
    runs = [_read(run) for run in finished_runs(model_dir)]
    champion_run = champion(model_dir)
    sections = [
        f'<nav><a href="{PAGE}">&larr; all models</a></nav>\n<h1>{html.escape(model)}</h1>\n'
        f"<p>{_count(len(runs), 'run')}; champion: "
        f"{html.escape(_champion_text(model_dir, champion_run)) or 'none'}.</p>",
        "<h2>Gated figures across runs</h2>\n" + _trends(runs),
        "<h2>Runs</h2>\n" + _runs_table(output_root, runs, champion_run),
        "<h2>Champion history</h2>\n" + _champion_history(model_dir),
        "<h2>Monitoring</h2>\n" + _monitor_table(output_root, model),
    ]
    return _document(f"Signoff archive: {model}", "\n".join(sections))


def _trends(runs: list[tuple[Path, records.Verdict]]) -> str:
    """One row per gate any run judged: its threshold (the latest run's), a chart of every run's figure."""
    gates: dict[str, dict] = {}
    for _, verdict in runs:
        for gate in verdict.gates:
            gates[gate["id"]] = gate  # the newest definition of each gate
    rows = []
    for gate_id, latest in gates.items():
        points = []
        for run, verdict in runs:
            judged = next((g for g in verdict.gates if g["id"] == gate_id), None)
            if judged is not None:
                value = judged.get("observed")
                points.append(trend.Point(run.name, value if isinstance(value, (int, float)) else None,
                                          tuple(judged["interval"]) if judged.get("interval") else None,
                                          judged.get("status", "")))
        threshold = {k: v for k, v in (latest.get("threshold") or {}).items() if k in ("min", "max")}
        rows.append(_row([html.escape(gate_id), f"<code>{html.escape(str(latest.get('metric', '')))}</code>",
                          html.escape(", ".join(f"{k} {v:g}" for k, v in threshold.items())) or "-",
                          trend.svg(points, threshold), html.escape(_latest(latest)), str(len(points))]))
    if not rows:
        return "<p>No gate was judged yet.</p>"
    return _table(("gate", "metric", "threshold (latest)", "each run, oldest first", "latest", "runs"), rows)


def _latest(gate: dict) -> str:
    """The newest run's status and figure (with its interval) for a gate."""
    figure = gate.get("estimate", gate.get("observed"))
    found = "" if figure is None else f": {records.shown(figure)} {records.interval_text(gate)}".rstrip()
    return f"{gate.get('status', '')}{found}"


def _runs_table(output_root: Path, runs: list[tuple[Path, records.Verdict]], champion_run: str | None) -> str:
    rows = []
    for run, verdict in reversed(runs):  # newest first
        decided = [e for e in records.ArchivedRun(run).decisions if e.get("event") not in NOT_DECISIONS]
        decision = f"{decided[-1]['event']} by {decided[-1]['by']}" if decided else ""
        link = run.relative_to(output_root).as_posix()
        rows.append(_row([
            _run_link(output_root, run), _when(verdict), _verdict(verdict),
            html.escape(", ".join(verdict.failed_gates)) or "-",
            html.escape(decision) or "-",
            "&#9733; champion" if run.name == champion_run else "-",
            f'<a href="{html.escape(link)}/model_card.html">card</a>' if (run / "model_card.html").exists() else "-",
        ]))
    return _table(("run", "started (UTC)", "verdict", "gates not passed (failed, missing or undecided)",
                   "last decision", "alias", "model card"), rows)


def _champion_history(model_dir: Path) -> str:
    moves = journal.champion_moves(model_dir / LEDGER)
    if not moves:
        return "<p>No version has been champion yet.</p>"
    rows = [_row([html.escape(str(e.get("at", ""))[:19].replace("T", " ")), html.escape(str(e.get("event", ""))),
                  html.escape(str(e.get("version", ""))), html.escape(str(e.get("run_id", ""))),
                  html.escape(str(e.get("by", ""))), html.escape(str(e.get("note", ""))) or "-"])
            for e in reversed(moves)]
    return _table(("when (UTC)", "event", "version", "run", "by", "note"), rows)


def _monitor_table(output_root: Path, model: str) -> str:
    monitors = [_read(run) for run in finished_runs(output_root / f"{model}{records.MONITOR_SUFFIX}")]
    if not monitors:
        return "<p>Not monitored yet (<code>signoff monitor</code>).</p>"
    rows = [_row([_run_link(output_root, run), _when(verdict), _verdict(verdict),
                  html.escape(str((verdict.champion or {}).get("version", "-"))),
                  f"<code>{html.escape(Path(str(verdict.extra.get('current', ''))).name) or '-'}</code>",
                  html.escape(", ".join(verdict.failed_gates)) or "-"])
            for run, verdict in reversed(monitors)]
    return _table(("monitor run", "started (UTC)", "verdict", "champion version", "current data", "gates not passed"),
                  rows)


def _read(run: Path) -> tuple[Path, records.Verdict]:
    try:
        return run, records.ArchivedRun(run).verdict
    except SignoffError:  # listed all the same: `signoff verify` says what is wrong with it
        return run, records.Verdict(run.parent.name, run.name, "unreadable")


def _champion_text(model_dir: Path, champion_run: str | None) -> str:
    moves = [e for e in journal.champion_moves(model_dir / LEDGER) if e.get("run_id")]
    return f"version {moves[-1].get('version')} (run {champion_run})" if moves and champion_run else ""


def _run_link(output_root: Path, run: Path) -> str:
    if not (run / "html" / "report.html").exists():
        return html.escape(run.name)
    link = html.escape(run.relative_to(output_root).as_posix())
    return f'<a href="{link}/html/report.html">{html.escape(run.name)}</a>'


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _when(verdict: records.Verdict) -> str:
    return html.escape(str(verdict.started)[:19].replace("T", " "))


def _verdict(verdict: records.Verdict) -> str:
    return f'<b class="{html.escape(str(verdict.verdict))}">{html.escape(str(verdict.verdict))}</b>'


def _table(names: tuple[str, ...], rows: list[str]) -> str:
    header = "<tr>" + "".join(f"<th>{html.escape(name)}</th>" for name in names) + "</tr>"
    return f"<table>{header}\n" + "\n".join(rows) + "\n</table>"


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _replace(target: Path, text: str) -> None:
    temp = target.with_name(f".{target.name}.{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, target)


def champion(model_dir: Path) -> str | None:
    """The run whose model holds the champion alias, as the model's ledger last recorded it."""
    moves = [e for e in journal.champion_moves(model_dir / LEDGER) if e.get("run_id")]
    return moves[-1]["run_id"] if moves else None
