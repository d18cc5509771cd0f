"""Gather what every stage recorded with scrapbook into one flat mapping, ``stage.name``.

Mappings glued by a notebook are flattened (``eda.missing_rate.income``) so a gate
can name any single fact; display-only scraps (plots) are not evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import scrapbook as sb


def collect(notebooks: dict[str, Path]) -> dict[str, Any]:
    evidence: dict[str, Any] = {}
    for stage, path in notebooks.items():
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
