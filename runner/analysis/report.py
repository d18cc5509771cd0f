"""The gating report: executed from ``templates/report.ipynb``, which calls these helpers.

The verdict is computed by the pipeline before the report runs; the report only
presents ``verdict.json`` and ``evidence.json`` and re-displays the plots the
stages glued, so a report that fails to render cannot change a decision.
"""

from __future__ import annotations

import fnmatch
import html
from pathlib import Path
from typing import Any

import pandas as pd
import scrapbook as sb
import yaml

from runner import records
from runner.analysis import workspace
from runner.analysis.metrics import LOWER_IS_BETTER


def load(run_dir: str) -> dict[str, Any]:
    """The run's verdict and evidence; with no run folder, the newest run under outputs/."""
    run = records.ArchivedRun(Path(run_dir) if run_dir else _newest_run())
    return {"folder": run.folder, "verdict": run.verdict.to_json(), "evidence": run.evidence}


def _newest_run() -> Path:
    """The newest run of a model (a monitor's folder is not a model's run)."""
    runs = sorted((p for p in (workspace.project_root() / "outputs").glob("*/*/verdict.json")
                   if not p.parent.parent.name.endswith(records.MONITOR_SUFFIX)), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError("no Signoff run under outputs/: run `signoff run params/credit.yaml`, or set run_dir")
    return runs[-1].parent


def banner(run: dict[str, Any]) -> str:
    v = run["verdict"]
    colour = records.VERDICT_COLOURS[v["verdict"]]
    return (
        f'<div style="border-left:12px solid {colour};padding:10px 16px;background:#f8f9f9">'
        f'<div style="font-size:28px;font-weight:bold;color:{colour}">{v["verdict"]}</div>'
        f"<div>model <b>{html.escape(v['model'])}</b> · run <code>{html.escape(v['run_id'])}</code></div>"
        f'<div style="margin-top:6px;font-size:16px">{html.escape(records.why(v))}</div></div>'
    )


def gate_table(run: dict[str, Any]) -> pd.DataFrame:
    """Every gate, those not passed first (failed, missing, undecided: what a reviewer must read), by gate id."""
    rows = [
        {
            "gate": g["id"],
            "metric": g["metric"],
            "observed": _number(g.get("estimate", g["observed"])),
            "interval": records.interval_text(g),
            "threshold": " and ".join(f"{k} {v:g}" for k, v in g["threshold"].items()),
            "severity": g["severity"],
            "status": g["status"].upper(),
            "why": g.get("why") or "(no reason given)",
        }
        for g in sorted(run["verdict"]["gates"], key=lambda g: g["status"] == "pass")
    ]
    return pd.DataFrame(rows, columns=["gate", "metric", "observed", "interval", "threshold", "severity", "status",
                                       "why"]).set_index("gate")


def undecided(run: dict[str, Any]) -> list[str]:
    """Each inconclusive gate in a sentence: what its interval straddles and how many more rows would decide it."""
    return [f"**{g['id']}** is inconclusive: {g['message']}" for g in run["verdict"]["gates"]
            if g["status"] == "inconclusive"]


def forest_plot(run: dict[str, Any]) -> Any:
    """Every gate judged on an interval: the interval, its estimate and the gate's bounds, one row per gate on its
    own scale (the figures' units differ); None when no gate had an interval."""
    import matplotlib.pyplot as plt

    judged = [g for g in run["verdict"]["gates"] if g.get("interval")]
    if not judged:
        return None
    fig, axes = plt.subplots(len(judged), 1, figsize=(9, 0.75 * len(judged) + 0.4), squeeze=False)
    for ax, g in zip(axes[:, 0], judged):
        low, high = g["interval"]
        colour = STATUS_COLOURS[g["status"]]
        ax.hlines(0, low, high, color=colour, linewidth=4)
        ax.plot([g["estimate"]], [0], "o", color="black", markersize=5)
        bounds = _bounds_drawn(g)
        for bound in bounds:
            ax.axvline(bound, color="#c0392b", linestyle="--", linewidth=1.2)
        span = [low, high, *bounds]
        pad = (max(span) - min(span)) * 0.15 or abs(max(span)) * 0.1 or 0.1
        ax.set_xlim(min(span) - pad, max(span) + pad)
        ax.set_yticks([])
        ax.set_ylabel(f"{g['id']}\n{g['status'].upper()}", rotation=0, ha="right", va="center", fontsize=8,
                      color=colour)
        ax.tick_params(axis="x", labelsize=7)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.suptitle("each gate's interval (bar), estimate (dot) and threshold (dashed)", fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


STATUS_COLOURS = {"pass": "#1e8449", "fail": "#c0392b", "inconclusive": "#b9770e", "missing": "#7b241c"}


def _bounds_drawn(gate: dict[str, Any]) -> list[float]:
    """The gate's bounds on the scale of what it judged: min/max, or the allowed change against the champion."""
    threshold = gate["threshold"]
    if "max_drop" in threshold:
        return [-threshold["max_drop"]]
    return [threshold[k] for k in ("min", "max", "min_gain") if k in threshold]


def stage_table(run: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {"stage": s["name"], "status": s["status"].upper(), "seconds": f"{s['seconds']:.1f}", "error": s["error"] or ""}
        for s in run["verdict"]["stages"]
    ]
    return pd.DataFrame(rows, columns=["stage", "status", "seconds", "error"]).set_index("stage")


def policy_table(run: dict[str, Any]) -> pd.DataFrame:
    changes = run["verdict"]["gate_policy_changes"]
    return pd.DataFrame(
        [{"gate": c["id"], "change": c["change"], "before": _policy(c["before"]), "after": _policy(c["after"])}
         for c in changes],
        columns=["gate", "change", "before", "after"],
    ).set_index("gate")


DELTA = "_delta_vs_champion"


def champion_comparison(run: dict[str, Any]) -> tuple[str, pd.DataFrame]:
    """The candidate against the champion as a reviewer reads it: one sentence, then each paired change with its
    interval and what it means (a change whose interval holds 0 is no measurable difference)."""
    evidence = run["evidence"]
    version = evidence.get("champion.version")
    columns = ["metric", "change (candidate - champion)", "interval", "reading"]
    if not version or version == "none":
        return "No champion to compare with: this is the model's first candidate.", pd.DataFrame(columns=columns)
    names = sorted(k.removeprefix("validate.").removesuffix(DELTA) for k in evidence
                   if k.startswith("validate.") and k.endswith(DELTA))
    if not names:
        return (f"Champion version {version} was not scored on these rows (the validate stage page says why).",
                pd.DataFrame(columns=columns))
    rows = []
    for name in names:
        change = evidence[f"validate.{name}{DELTA}"]
        low, high = evidence.get(f"validate.{name}{DELTA}_ci_low"), evidence.get(f"validate.{name}{DELTA}_ci_high")
        if low is None or high is None or low <= 0 <= high:
            reading = "no measurable difference"
        else:
            reading = "better" if (low > 0) != (name in LOWER_IS_BETTER) else "worse"
        rows.append({"metric": name, "change (candidate - champion)": _number(change),
                     "interval": "" if low is None else f"[{low:.4g}, {high:.4g}]", "reading": reading})
    readings = {r["reading"] for r in rows}
    disagree = evidence.get("validate.champion_disagreement")
    said = f" The two models decide differently on {disagree:.1%} of the test rows." if isinstance(
        disagree, float) else ""
    if readings == {"no measurable difference"}:
        sentence = f"No measurable difference from champion version {version}: every change's interval holds 0."
    else:
        sentence = f"Against champion version {version}: " + "; ".join(
            f"{r['metric']} {r['reading']}" for r in rows if r["reading"] != "no measurable difference") + "."
    shift = evidence.get("explain.champion_importance_rank_correlation")
    if isinstance(shift, float):
        said += f" Feature importances rank-correlate at {shift:.2f} with the champion's."
    return sentence + said, pd.DataFrame(rows, columns=columns).set_index("metric")


EVIDENCE_MAP = "evidence_map.yaml"


def evidence_map_rows(folder: Path, evidence: dict[str, Any]) -> list[dict[str, str]]:
    """Each item of the run's evidence map (``templates/evidence_map.yaml`` as archived with it) with the files
    and evidence that answer it, each marked where this run does not hold it."""
    path = folder / "templates" / EVIDENCE_MAP
    items = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else []
    rows = []
    for item in items or []:
        files = [f if (folder / f).exists() else f"{f} (not in this run)" for f in item.get("files", [])]
        names = [f"{p} ({n} recorded)" if (n := sum(fnmatch.fnmatchcase(k, p) for k in evidence)) != 1 or "*" in p
                 else p for p in item.get("evidence", [])]
        rows.append({"framework": item.get("framework", ""), "item": item.get("item", ""),
                     "files": ", ".join(files), "evidence": ", ".join(names)})
    return rows


def evidence_map(run: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(evidence_map_rows(Path(run["folder"]), run["evidence"]),
                        columns=["framework", "item", "files", "evidence"])


def evidence_table(run: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"evidence": k, "value": _number(v)} for k, v in sorted(run["evidence"].items())], columns=["evidence",
                                                                                                     "value"]
    ).set_index("evidence")


def evidence_details(run: dict[str, Any]) -> str:
    """The full evidence table, folded: a reviewer reads the gates first and opens this to check a figure."""
    return (f"<details><summary>All {len(run['evidence'])} figures the stages recorded (open to read)</summary>"
            f"{evidence_table(run).to_html()}</details>")


def key_plots(run: dict[str, Any]) -> None:
    """Re-display every plot a stage glued for display, under its stage's name."""
    from IPython.display import Markdown, display

    for stage in run["verdict"]["stages"]:
        if not stage["notebook"]:
            continue
        notebook = sb.read_notebook(str(run["folder"] / stage["notebook"]))
        for name, scrap in notebook.scraps.items():
            if scrap.display:
                display(Markdown(f"**{stage['name']} · {name}**"))
                notebook.reglue(name)


def _number(value: Any) -> Any:
    """Four significant digits for floats, so a table mixing counts and rates stays readable."""
    return f"{value:.4g}" if isinstance(value, float) else value


def _policy(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return ""
    return ", ".join(f"{k} {v}" for k, v in policy.items())


def checklist_html(run: dict[str, Any]) -> str:
    """The release checklist as a table; answers link to the stage page that recorded them."""
    rows = []
    for item in run["verdict"].get("checklist", []):
        answer = html.escape(item["answer"])
        if item["link"]:
            answer = f'<a href="{html.escape(item["link"])}">{answer}</a>'
        rows.append(
            f"<tr><td><code>{html.escape(item['id'])}</code></td><td>{html.escape(item['question'])}</td>"
            f"<td><b>{item['status'].upper()}</b></td><td>{answer}</td></tr>"
        )
    return ("<table><thead><tr><th>item</th><th>question</th><th>status</th><th>answer</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def fairness_exclusions(run: dict[str, Any]) -> list[str]:
    """Which small groups each sensitive feature's figures left out."""
    evidence = run["evidence"]
    return [
        f"fairness.{name.split('.')[1]}: left out of the figures: {', '.join(value)}"
        for name, value in sorted(evidence.items())
        if name.startswith("fairness.") and name.endswith(".excluded_groups") and value
    ]


def companion_links(run: dict[str, Any]) -> str:
    """Links to the run's other documents that exist (model card, Evidently's drift report)."""
    documents = {"model_card.html": "Model card", "evidently_drift.html": "Evidently drift report"}
    links = [f'<a href="../{name}">{label}</a>' for name, label in documents.items() if (run["folder"] / name).exists()]
    return " · ".join(links)
