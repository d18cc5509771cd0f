"""Find the stage notebooks and the order they may run in.

A stage is any ``NN_name.ipynb`` in the notebooks folder, so a new numbered
notebook joins the pipeline without code changes.  Its dependencies are listed
in the notebook's metadata (``"signoff": {"needs": ["train"]}``); without
that, a stage needs the one numbered before it, which keeps a plain
numbered sequence working as users expect.

Beside ``needs``, a stage declares the evidence it records (``"evidence": ["roc_auc",
"missing_rate.*"]``, names as the notebook glues them, ``*`` for a column or group name), so that
a gate naming evidence no stage records is refused before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from runner import config
from runner.errors import SignoffError

STAGE_FILE = re.compile(r"(\d+)_([a-z][a-z0-9_]*)\.ipynb\Z")


@dataclass(frozen=True)
class Stage:
    name: str
    path: Path
    needs: tuple[str, ...]
    evidence: tuple[str, ...] = ()  # declared names and patterns, without the ``<stage>.`` prefix

    def declared(self) -> list[str]:
        """The evidence names this stage declares, as gates name them (``validate.roc_auc``)."""
        return [f"{self.name}.{pattern}" for pattern in self.evidence]


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
        declared = _declarations(path)
        needs = _names(declared, "needs", path, "stage names")
        if needs is None:
            needs = (stages[-1].name,) if stages else ()
        known = {s.name for s in stages}
        for need in needs:
            if need not in known:
                raise SignoffError(
                    f"{path}: metadata signoff.needs names {need!r}, which is not an earlier stage "
                    f"(earlier: {', '.join(sorted(known)) or 'none'})"
                )
        stages.append(Stage(name, path, needs, _names(declared, "evidence", path, "evidence names") or ()))
    return stages


def replace(found: list[Stage], stage_params: dict[str, dict], source: Path) -> list[Stage]:
    """Stages whose params name a notebook of the user's own (``stages.train.notebook: my_train.ipynb``) run
    that notebook in their place: same name, same place in the order, the evidence it declares."""
    replaced = []
    for stage in found:
        own = stage_params.get(stage.name, {}).get(config.OWN_NOTEBOOK)
        if own is None:
            replaced.append(stage)
            continue
        path = Path(own) if isinstance(own, str) and own else None
        if path is None or path.suffix != ".ipynb" or not path.is_file():
            raise SignoffError(f"{source}: stages.{stage.name}.{config.OWN_NOTEBOOK}: expected a .ipynb file, got "
                               f"{own!r}" + ("" if path is None or path.is_file() else " (no such file)"))
        evidence = _names(_declarations(path), "evidence", path, "evidence names") or ()
        replaced.append(Stage(stage.name, path, stage.needs, evidence))
    return replaced


def _declarations(path: Path) -> dict:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a bad file
        raise SignoffError(f"{path}: not a readable notebook ({exc})") from None
    return nb.metadata.get("signoff", {})


def _names(declared: dict, key: str, path: Path, what: str) -> tuple[str, ...] | None:
    names = declared.get(key)
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise SignoffError(f"{path}: metadata signoff.{key} must be a list of {what}, got {names!r}")
    return tuple(names)
