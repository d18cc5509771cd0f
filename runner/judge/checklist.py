"""Answer the release checklist (``templates/checklist.yaml``) item by item.

An item is answered by recorded evidence (every name it lists for the run's task is present),
not applicable to the task (a decision threshold for a regression), or
attested in the params file (``checklist: {id: "text, who, when"}``), or open.
Open items are warnings; with ``checklist_required: true`` they block, through
an ordinary gate on ``checklist.open_items``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml

from runner import records
from runner.errors import SignoffError

OPEN_ITEMS = "checklist.open_items"
TASK = "train.task"


def load(path: Path) -> list[dict[str, Any]]:
    """The items in checklist order, each with its section."""
    sections = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [{**item, "section": section} for section, items in sections.items() for item in items]


def check_attestations(items: list[dict[str, Any]], attestations: dict[str, str], source: Path) -> None:
    known = {item["id"] for item in items}
    for item_id in attestations:
        if item_id not in known:
            raise SignoffError(
                f"{source}: checklist.{item_id}: no such checklist item (items: {', '.join(sorted(known))})"
            )


def answer(
    items: list[dict[str, Any]], evidence: dict[str, Any], stages_passed: bool, attestations: dict[str, str]
) -> list[dict[str, Any]]:
    """Each item with ``status`` answered / not applicable / attested / open, the answer, and the notebook
    that holds it."""
    answers = []
    task = evidence.get(TASK, "binary")  # runs from before task types were binary
    for item in items:
        wanted = item.get("evidence", [])
        if isinstance(wanted, dict):
            wanted = wanted.get(task, [])
        names = [name for pattern in wanted for name in _matching(pattern, evidence)] if isinstance(wanted,
                                                                                                   list) else []
        complete = bool(wanted) and isinstance(wanted, list) and all(_matching(p, evidence) for p in wanted)
        if isinstance(wanted, str):
            status, text, link = "not applicable", wanted.removeprefix("not applicable: "), None
        elif item.get("stages") and stages_passed:
            status, text, link = "answered", "every stage notebook ran without error", None
        elif complete:
            status = "answered"
            text = "; ".join(f"{name} = {records.shown(evidence[name])}" for name in names)
            link = f"{names[0].split('.')[0]}.html"
        elif item["id"] in attestations:
            status, text, link = "attested", attestations[item["id"]], None
        else:
            status, text, link = "open", "", None
        answers.append({"id": item["id"], "section": item["section"], "question": item["question"],
                        "status": status, "answer": text, "link": link})
    return answers


def open_count(answers: list[dict[str, Any]]) -> int:
    return sum(a["status"] == "open" for a in answers)


def required_gate() -> dict[str, Any]:
    """The gate a params file with ``checklist_required: true`` gets."""
    return {"id": "checklist", "metric": OPEN_ITEMS, "max": 0, "severity": "block",
            "why": "checklist_required: every release checklist item must be answered or attested"}


def _matching(pattern: str, evidence: dict[str, Any]) -> list[str]:
    parts = pattern.split(".")
    return [name for name in evidence
            if len(name.split(".")) == len(parts) and fnmatch.fnmatchcase(name, pattern)]
