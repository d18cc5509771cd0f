"""Check evidence against the declared gates and reach a verdict. Fail closed.

A gate whose evidence is absent (the stage crashed, ended early, or never
recorded it) or is not a finite number does not pass: it blocks.
"""

from __future__ import annotations

import math
from typing import Any

VERDICTS = ("PASS", "WARN", "BLOCKED", "ERROR")


def evaluate(gates: list[dict[str, Any]], evidence: dict[str, Any]) -> list[dict[str, Any]]:
    return [_evaluate_one(gate, evidence) for gate in gates]


def _evaluate_one(gate: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
    metric = gate["metric"]
    result = {
        "id": gate["id"],
        "metric": metric,
        "severity": gate.get("severity", "block"),
        "threshold": {bound: gate[bound] for bound in ("min", "max") if bound in gate},
        "why": gate.get("why"),
        "observed": evidence.get(metric),
    }
    observed = result["observed"]
    if metric not in evidence or observed is None:
        return {**result, "status": "missing",
                "message": f"no evidence named {metric}: the stage that records it failed, ended early or never glued it"}
    if isinstance(observed, bool) or not isinstance(observed, (int, float)) or not math.isfinite(observed):
        return {**result, "status": "fail", "message": f"{metric} is {observed!r}, not a finite number"}
    if "min" in gate and observed < gate["min"]:
        return {**result, "status": "fail", "message": f"{metric} = {observed:.4g} is below the minimum {gate['min']:g}"}
    if "max" in gate and observed > gate["max"]:
        return {**result, "status": "fail", "message": f"{metric} = {observed:.4g} is above the maximum {gate['max']:g}"}
    return {**result, "status": "pass", "message": f"{metric} = {observed:.4g} is within {_bounds(gate)}"}


def _bounds(gate: dict[str, Any]) -> str:
    low, high = gate.get("min"), gate.get("max")
    if low is not None and high is not None:
        return f"[{low:g}, {high:g}]"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


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
    return {k: gate[k] for k in ("metric", "min", "max", "severity") if k in gate} | {
        "severity": gate.get("severity", "block")
    }


def warnings(gates: list[dict[str, Any]]) -> list[str]:
    """Policy smells the report shows: a threshold nobody explained."""
    return [f"gate {g['id']} has no 'why': write down the reason for its threshold" for g in gates if not g.get("why")]
