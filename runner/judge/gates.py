"""Check evidence against the declared gates and reach a verdict. Fail closed.

A gate whose evidence is absent (the stage crashed, ended early, or never
recorded it) or is not a finite number does not pass: it blocks.
"""

from __future__ import annotations

import math
from typing import Any

from runner import records

VERDICTS = ("PASS", "WARN", "BLOCKED", "ERROR")

# Every run has this gate: a model that does not load where it will be served is not releasable.
LOADABLE = {
    "id": "infra.loadable", "metric": "infra.loadable", "min": 1,
    "why": "the logged model must load with mlflow.pyfunc in a fresh process and score its input example",
}


def evaluate(gates: list[dict[str, Any]], evidence: dict[str, Any],
             champion: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``champion``: the current champion's evidence, for gates that compare with it (None: no champion)."""
    return [_evaluate_one(gate, evidence, champion) for gate in gates]


def _evaluate_one(gate: dict[str, Any], evidence: dict[str, Any], champion: dict[str, Any] | None) -> dict[str, Any]:
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
    if isinstance(observed, bool) or not isinstance(observed, (int, float)) or not math.isfinite(observed):
        return {**result, "status": "fail", "message": f"{metric} is {observed!r}, not a finite number"}
    if "vs_champion" in gate:
        return {**result, **_versus(metric, observed, champion or {}, gate["vs_champion"])}
    if "min" in gate and observed < gate["min"]:
        return {**result, "status": "fail",
                "message": f"{metric} = {observed:.4g} is below the minimum {gate['min']:g}"}
    if "max" in gate and observed > gate["max"]:
        return {**result, "status": "fail",
                "message": f"{metric} = {observed:.4g} is above the maximum {gate['max']:g}"}
    return {**result, "status": "pass", "message": f"{metric} = {observed:.4g} is within {_bounds(gate)}"}


def _absent_because(metric: str, evidence: dict[str, Any]) -> str:
    """A stage that found its figures do not apply says why (``<scope>.not_applicable``); else the usual causes."""
    parts = metric.split(".")
    for end in range(len(parts) - 1, 0, -1):
        reason = evidence.get(".".join([*parts[:end], records.NOT_APPLICABLE]))
        if reason:
            return f"not applicable: {reason}"
    return "the stage that records it failed, ended early or never glued it"


def _versus(metric: str, observed: float, champion: dict[str, Any], rule: dict[str, float]) -> dict[str, Any]:
    """The candidate against the champion's value of the same evidence (fail closed if the champion lacks it)."""
    base = champion.get(metric)
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base):
        return {"status": "missing", "champion": base,
                "message": f"the champion has no usable {metric} ({base!r}) to compare with"}
    delta = observed - base
    said = f"{metric} = {observed:.4g} vs champion {base:.4g} (change {delta:+.4g})"
    if "max_drop" in rule and delta < -rule["max_drop"]:
        return {"status": "fail", "champion": base, "message": f"{said}: drops more than {rule['max_drop']:g}"}
    if "min_gain" in rule and delta < rule["min_gain"]:
        return {"status": "fail", "champion": base, "message": f"{said}: gains less than {rule['min_gain']:g}"}
    return {"status": "pass", "champion": base, "message": f"{said}: within the allowed change"}


def _bounds(gate: dict[str, Any]) -> str:
    low, high = gate.get("min"), gate.get("max")
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
    """ERROR if a stage failed; BLOCKED if a blocking gate failed or any gate lacks evidence; WARN; PASS."""
    if stages_failed:
        return "ERROR"
    if any(r["status"] == "missing" or (r["status"] == "fail" and r["severity"] == "block") for r in results):
        return "BLOCKED"
    if any(r["status"] == "fail" for r in results):
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


def _policy(gate: dict[str, Any]) -> dict[str, Any]:
    keys = ("metric", "min", "max", "vs_champion", "champion_only", "waivable")
    return {k: gate[k] for k in keys if k in gate} | {"severity": gate.get("severity", "block")}


def warnings(gates: list[dict[str, Any]]) -> list[str]:
    """Policy smells the report shows: a threshold nobody explained."""
    return [f"gate {g['id']} has no 'why': write down the reason for its threshold" for g in gates if not g.get("why")]
