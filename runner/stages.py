"""Find the stage notebooks and the order they may run in.

A stage is any ``NN_name.ipynb`` in the notebooks folder, so a new numbered
notebook joins the pipeline without code changes.  Its dependencies are listed
in the notebook's metadata (``"signoff": {"needs": ["train"]}``); without
that, a stage needs the one numbered before it, which keeps a plain
numbered sequence working as users expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from runner.errors import SignoffError

STAGE_FILE = re.compile(r"(\d+)_([a-z][a-z0-9_]*)\.ipynb\Z")


@dataclass(frozen=True)
class Stage:
    name: str
    path: Path
    needs: tuple[str, ...]


def discover(notebooks_dir: Path) -> list[Stage]:
    """Stages in pipeline order; every dependency names an earlier stage, so there is no cycle."""
    if not notebooks_dir.is_dir():
        raise SignoffError(f"{notebooks_dir}: no such notebooks folder")
    found = sorted(
        (int(m.group(1)), m.group(2), path)
        for path in notebooks_dir.iterdir()
        if (m := STAGE_FILE.match(path.name))
    )
    if not found:
        raise SignoffError(f"{notebooks_dir}: no stage notebooks (expected files named like 01_eda.ipynb)")
    stages: list[Stage] = []
    for _, name, path in found:
        if any(s.name == name for s in stages):
            raise SignoffError(f"{path}: a second notebook for stage {name!r}")
        needs = _declared_needs(path)
        if needs is None:
            needs = (stages[-1].name,) if stages else ()
        known = {s.name for s in stages}
        for need in needs:
            if need not in known:
                raise SignoffError(
                    f"{path}: metadata signoff.needs names {need!r}, which is not an earlier stage "
                    f"(earlier: {', '.join(sorted(known)) or 'none'})"
                )
        stages.append(Stage(name, path, needs))
    return stages


def _declared_needs(path: Path) -> tuple[str, ...] | None:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a bad file
        raise SignoffError(f"{path}: not a readable notebook ({exc})") from None
    needs = nb.metadata.get("signoff", {}).get("needs")
    if needs is None:
        return None
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise SignoffError(f"{path}: metadata signoff.needs must be a list of stage names, got {needs!r}")
    return tuple(needs)
