"""Append-only JSON lines, each holding the sha256 of the line before it.

Decisions on a run are added after the run was archived, so they cannot be in
its manifest; chaining the lines means an edited or removed line breaks every
hash after it, which `signoff verify` reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runner import records
from runner.audit import bundle_check


def append(path: Path, entry: dict[str, Any]) -> str:
    """Add ``entry`` (with ``previous`` set) as the last line of ``path``; returns the new head hash."""
    lines = _lines(path)
    record = {**entry, "previous": bundle_check.line_sha256(lines[-1]) if lines else None}
    text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return bundle_check.line_sha256(text)


def head(path: Path) -> str | None:
    """The hash of the last line: what an anchor kept elsewhere must equal."""
    lines = _lines(path)
    return bundle_check.line_sha256(lines[-1]) if lines else None


def read(path: Path) -> list[dict[str, Any]]:
    return records.read_jsonl(path)


CHAMPION_EVENTS = ("promoted", "approved", "rolled back")  # events after which a version holds the champion alias


def champion_moves(ledger: Path) -> list[dict[str, Any]]:
    """The ledger's champion decisions, oldest first: the last one says where ``champion`` should point."""
    return [e for e in read(ledger) if e.get("event") in CHAMPION_EVENTS]


problems = bundle_check.chain_problems  # every line whose ``previous`` is not the hash of the line before it


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]
