"""Gather what every stage recorded with scrapbook into one flat mapping, ``stage.name``.

Mappings glued by a notebook are flattened (``eda.missing_rate.income``) so a gate
can name any single fact; display-only scraps (plots) are not evidence.  Stage notebooks
declare what they record (patterns, ``*`` for a column or group name); the `signoff`
process adds the few facts below.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import scrapbook as sb

from runner.judge.checklist import OPEN_ITEMS

CHAMPION_VERSION = "champion.version"  # the champion a run was compared with ("none" without one)
RUN_FACTS = (CHAMPION_VERSION, OPEN_ITEMS)  # added by `signoff run` to what its stages recorded
MONITOR_CHAMPION_VERSION = "monitor.champion_version"
MONITOR_CHAMPION_AGE = "monitor.champion_age_days"
MONITOR_FACTS = (MONITOR_CHAMPION_VERSION, MONITOR_CHAMPION_AGE)  # added by `signoff monitor`


def collect(notebooks: dict[str, Path], recorded: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every stage's evidence, in the order of ``notebooks``; ``recorded``: stages already read (by
    :func:`of_stage`, as each finished), not read again."""
    evidence: dict[str, Any] = {}
    for stage, path in notebooks.items():
        evidence |= (recorded or {}).get(stage) or of_stage(stage, path)
    return evidence


def of_stage(stage: str, path: Path) -> dict[str, Any]:
    """What one stage notebook recorded, flattened under the stage's name."""
    evidence: dict[str, Any] = {}
    for name, scrap in sb.read_notebook(str(path)).scraps.items():
        if scrap.data is not None:
            _flatten(f"{stage}.{name}", scrap.data, evidence)
    return evidence


def _flatten(key: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for name, item in value.items():
            _flatten(f"{key}.{name}", item, into)
    else:
        into[key] = value


def declared(name: str, patterns: Iterable[str]) -> bool:
    """Whether evidence ``name`` matches one of the declared names or patterns."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def undeclared(facts: dict[str, object], patterns: Iterable[str]) -> list[str]:
    """A warning naming the evidence recorded that no declaration covers (a notebook's metadata has fallen
    behind its code: a gate on that evidence would be refused); none when everything is declared."""
    patterns = list(patterns)
    names = sorted(name for name in facts if not declared(name, patterns))
    if not names:
        return []
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return [f"evidence recorded but not declared in its stage notebook's metadata signoff.evidence: {shown}"]


def closest(name: str, patterns: Iterable[str]) -> list[str]:
    """The declared names most like a mistyped ``name``, best first; a pattern's ``*`` is read as the part of
    ``name`` in its place (``fairness.sex.disparate_impact_rato``: ``fairness.sex.disparate_impact_ratio``)."""
    candidates = []
    for pattern in patterns:
        head, star, tail = pattern.partition("*")
        if star and name.startswith(head):
            pattern = head + name[len(head):].split(".")[0] + tail
        candidates.append(pattern)
    return difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
