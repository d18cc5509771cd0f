"""Check evidence against the declared gates and reach a verdict. Fail closed.

A gate whose evidence is absent (the stage crashed, ended early, or never
recorded it) or is not a finite number does not pass: it blocks.
"""

from __future__ import annotations

import math
from typing import Any

from runner import records
from runner.config import INCONCLUSIVE

VERDICTS = ("PASS", "WARN", "BLOCKED", "ERROR")

# Every run has this gate: a model that does not load where it will be served is not releasable.
LOADABLE = {
    "id": "infra.loadable", "metric": "infra.loadable", "min": 1,
    "why": "the logged model must load with mlflow.pyfunc in a fresh process and score its input example",
}


def evaluate(gates: list[dict[str, Any]], evidence: dict[str, Any],
             champion: dict[str, Any] | None = None, level: float | None = None) -> list[dict[str, Any]]:
    """``champion``: the current champion's evidence, for gates that compare with it (None: no champion);
    ``level``: the confidence level of the evidence's intervals (the params file's ``gates_confidence``)."""
    return [_evaluate_one(gate, evidence, champion, level) for gate in gates]


def _evaluate_one(gate: dict[str, Any], evidence: dict[str, Any], champion: dict[str, Any] | None,
                  level: float | None) -> dict[str, Any]:
    metric = gate["metric"]
    result = {
        "id": gate["id"],
        "metric": metric,
        "severity": gate.get("severity", "block"),
        "threshold": {bound: gate[bound] for bound in ("min", "max") if bound in gate} | gate.get("vs_champion", {}),
        "why": gate.get("why"),
        "observed": evidence.get(metric),
        "waivable": gate.get("waivable", False),
        "policy": _policy(gate),
    }
    if champion is None and ("vs_champion" in gate or gate.get("champion_only")):
        return {**result, "status": "pass", "message": "no champion yet: nothing to compare with"}
    observed = result["observed"]
    if metric not in evidence or observed is None:
        return {**result, "status": "missing",
                "message": f"no evidence named {metric}: {_absent_because(metric, evidence)}"}
    if not _finite(observed):
        return {**result, "status": "fail", "message": f"{metric} is {observed!r}, not a finite number"}
    if "vs_champion" in gate:
        return {**result, **_versus(metric, observed, champion or {}, gate["vs_champion"], evidence, level)}
    bounds = interval(metric, evidence)
    if bounds is None and any(f"{metric}{end}" in evidence for end in records.INTERVAL_ENDS):
        judged = {"status": "inconclusive", "estimate": observed, "rows": rows(metric, evidence),
                  "message": f"{metric} = {observed:.4g} has no interval: {_too_few(metric, evidence)}"}
    else:
        judged = _judge(metric, observed, bounds, gate.get("min"), gate.get("max"), rows(metric, evidence))
    if judged["status"] == "inconclusive" or "interval" in judged:
        judged |= {"level": level, "inconclusive": gate.get("inconclusive", INCONCLUSIVE[0])}
    return {**result, **judged}


def interval(metric: str, evidence: dict[str, Any]) -> tuple[float, float] | None:
    """The sampling interval recorded beside ``metric`` (``<metric>_ci_low``, ``<metric>_ci_high``), if both are
    finite numbers in order."""
    low, high = (evidence.get(f"{metric}{end}") for end in records.INTERVAL_ENDS)
    return (float(low), float(high)) if _finite(low) and _finite(high) and low <= high else None


def rows(metric: str, evidence: dict[str, Any]) -> int | None:
    """The test rows a figure rests on: the nearest ``<scope>.n_rows`` above it (``fairness.sex.n_rows`` for
    ``fairness.sex.equal_opportunity_difference``), or the evaluation rows of a validate figure."""
    found = _nearest(metric, evidence, ("n_rows", "n_eval_rows"))
    return None if found is None else int(found)


def _nearest(metric: str, evidence: dict[str, Any], names: tuple[str, ...]) -> float | None:
    """The first finite ``<scope>.<name>`` recorded in the scopes above ``metric``, nearest first."""
    parts = metric.split(".")
    for end in range(len(parts) - 1, 0, -1):
        scope = ".".join(parts[:end])
        for name in names:
            if _finite(evidence.get(f"{scope}.{name}")):
                return evidence[f"{scope}.{name}"]
    return None


def _too_few(metric: str, evidence: dict[str, Any]) -> str:
    """Why a figure recorded with an interval has none: in no resample was it defined."""
    smallest = _nearest(metric, evidence, ("smallest_group_rows",))
    if smallest is not None:
        return (f"the groups it compares are too small to decide (the smallest has {int(smallest):,} test rows): "
                "in every resample a group lacked the rows the figure needs (a positive, say)")
    return "its rows are too few to decide: in every resample the figure was undefined"


def _judge(metric: str, estimate: float, bounds: tuple[float, float] | None, low: float | None,
           high: float | None, n: int | None) -> dict[str, Any]:
    """Pass, fail or (with an interval) inconclusive against ``low``/``high``: the whole interval inside the
    bounds passes, the whole interval outside one fails, an interval across a bound cannot decide."""
    said = f"{metric} = {estimate:.4g}"
    if bounds is None:
        if low is not None and estimate < low:
            return {"status": "fail", "message": f"{said} is below the minimum {low:g}"}
        if high is not None and estimate > high:
            return {"status": "fail", "message": f"{said} is above the maximum {high:g}"}
        return {"status": "pass", "message": f"{said} is within {_bounds(low, high)}"}
    found = {"estimate": estimate, "interval": list(bounds), "rows": n}
    said += f" [{bounds[0]:.4g}, {bounds[1]:.4g}]"
    if low is not None and bounds[1] < low:
        return {**found, "status": "fail", "message": f"{said}: the whole interval is below the minimum {low:g}"}
    if high is not None and bounds[0] > high:
        return {**found, "status": "fail", "message": f"{said}: the whole interval is above the maximum {high:g}"}
    crossed = [b for b, across in ((low, low is not None and bounds[0] < low),
                                   (high, high is not None and bounds[1] > high)) if across]
    if not crossed:
        return {**found, "status": "pass", "message": f"{said}: the whole interval is within {_bounds(low, high)}"}
    more = more_rows(n, estimate, bounds, crossed[0])
    return {**found, "status": "inconclusive", "more_rows": more,
            "message": f"{said} straddles {crossed[0]:g}: these rows cannot decide; {_more_said(more, metric)}"}


def more_rows(n: int | None, estimate: float, bounds: tuple[float, float], bound: float) -> int | None:
    """About how many more rows would shrink the interval clear of ``bound`` at the current effect: the
    interval's reach from the estimate towards the bound (a bootstrap interval need not be symmetric) falls
    as 1/sqrt(rows); None when no number of rows would (the estimate sits on the bound) or the rows are
    unknown."""
    effect = abs(estimate - bound)
    reach = bounds[1] - estimate if bound > estimate else estimate - bounds[0]
    if n is None or effect == 0 or reach <= effect:
        return None
    return math.ceil(n * (reach / effect) ** 2) - n


def _more_said(more: int | None, metric: str) -> str:
    if more is None:
        return "the estimate sits on the threshold, so more rows alone would not decide it"
    rows = "current rows" if metric.startswith("drift.") else "test rows"  # drift compares the newest rows
    return f"about {more:,} more {rows} would decide it at this effect"


def _absent_because(metric: str, evidence: dict[str, Any]) -> str:
    """A stage that found its figures do not apply says why (``<scope>.not_applicable``); else the usual causes."""
    parts = metric.split(".")
    for end in range(len(parts) - 1, 0, -1):
        reason = evidence.get(".".join([*parts[:end], records.NOT_APPLICABLE]))
        if reason:
            return f"not applicable: {reason}"
    return "the stage that records it failed, ended early or never glued it"


def _versus(metric: str, observed: float, champion: dict[str, Any], rule: dict[str, float],
            evidence: dict[str, Any], level: float | None) -> dict[str, Any]:
    """The candidate against the champion's value of the same evidence (fail closed if the champion lacks it).
    Where this run measured the difference itself, paired on its own test rows with an interval
    (``<metric>_delta_vs_champion``), that difference is judged, with three outcomes."""
    base = champion.get(metric)
    if not _finite(base):
        return {"status": "missing", "champion": base,
                "message": f"the champion has no usable {metric} ({base!r}) to compare with"}
    paired = f"{metric}_delta_vs_champion"
    if _finite(evidence.get(paired)) and (bounds := interval(paired, evidence)) is not None:
        low = -rule["max_drop"] if "max_drop" in rule else rule["min_gain"]
        judged = _judge(f"{metric} change vs champion (paired)", evidence[paired], bounds, low, None,
                        rows(metric, evidence))
        return {**judged, "champion": base, "level": level, "inconclusive": INCONCLUSIVE[0]}
    delta = observed - base
    said = f"{metric} = {observed:.4g} vs champion {base:.4g} (change {delta:+.4g})"
    if "max_drop" in rule and delta < -rule["max_drop"]:
        return {"status": "fail", "champion": base, "message": f"{said}: drops more than {rule['max_drop']:g}"}
    if "min_gain" in rule and delta < rule["min_gain"]:
        return {"status": "fail", "champion": base, "message": f"{said}: gains less than {rule['min_gain']:g}"}
    return {"status": "pass", "champion": base, "message": f"{said}: within the allowed change"}


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"[{low:g}, {high:g}]"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def judged(about: dict[str, Any], checked: list[dict[str, Any]], stages: list[dict[str, Any]],
           **recorded: Any) -> records.Verdict:
    """The one place a verdict is made, for a run, a monitor and a run that crashed: ``about`` says which run
    (model, run_id, who and when), ``checked`` are the gates as :func:`evaluate` left them, ``stages`` each
    stage's result; ``recorded`` adds the rest (warnings, checklist, ``error`` for a run that stopped)."""
    failed = bool(recorded.get("error")) or any(stage["status"] != "passed" for stage in stages)
    return records.Verdict.from_json({**about, **recorded, "verdict": verdict(checked, failed), "gates": checked,
                                      "stages": stages})


def verdict(results: list[dict[str, Any]], stages_failed: bool) -> str:
    """ERROR if a stage failed; BLOCKED if a gate blocks (:func:`records.blocks`); WARN if any gate failed or a
    blocking gate could not decide (a person signs off: never promoted automatically); PASS.  A warning gate
    that cannot decide changes nothing: it would not have blocked either way."""
    if stages_failed:
        return "ERROR"
    if any(records.blocks(r) for r in results):
        return "BLOCKED"
    if any(r["status"] == "fail" or (r["status"] == "inconclusive" and r["severity"] == "block") for r in results):
        return "WARN"
    return "PASS"


def exit_code(verdict_name: str) -> int:
    return {"PASS": 0, "WARN": 0, "BLOCKED": 1, "ERROR": 2}[verdict_name]


def policy_changes(before: list[dict[str, Any]] | None, after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How the gate policy moved since the model's previous run: added, removed, changed gates."""
    if before is None:
        return []
    old = {g["id"]: _policy(g) for g in before}
    new = {g["id"]: _policy(g) for g in after}
    changes = []
    for gate_id in [*new, *(i for i in old if i not in new)]:
        if gate_id not in old:
            changes.append({"id": gate_id, "change": "added", "before": None, "after": new[gate_id]})
        elif gate_id not in new:
            changes.append({"id": gate_id, "change": "removed", "before": old[gate_id], "after": None})
        elif old[gate_id] != new[gate_id]:
            changes.append({"id": gate_id, "change": "changed", "before": old[gate_id], "after": new[gate_id]})
    return changes


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _policy(gate: dict[str, Any]) -> dict[str, Any]:
    keys = ("metric", "min", "max", "vs_champion", "champion_only", "waivable", "inconclusive")
    return {k: gate[k] for k in keys if k in gate} | {"severity": gate.get("severity", "block")}


def warnings(gates: list[dict[str, Any]]) -> list[str]:
    """Policy smells the report shows: a threshold nobody explained."""
    return [f"gate {g['id']} has no 'why': write down the reason for its threshold" for g in gates if not g.get("why")]
