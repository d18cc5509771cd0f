"""`signoff rerun RUN_DIR`: execute an archived run again from what it archived, and say what differs.

The archive holds everything a run was made of: each stage notebook (its source
is the executed copy minus outputs and Papermill's injected cell), the resolved
params, the report notebook, the checklist and the model-card template.  A re-run
executes those, not today's project files, into a new run of the same model that
is compared with the same champion version and is never released.  Then the two
runs' evidence is compared name by name: with the same data and seeds every
value must agree within the tolerance, timings excepted.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from runner import config, records
from runner.audit import verify
from runner.errors import SignoffError
from runner.run import pipeline, stages
from runner.run.progress import Progress

# evidence that differs on every execution by nature: durations, speeds, and the MLflow model folder
# (its URI names the new run; its MLmodel file records the run id and creation time, so its hash moves too)
VOLATILE = re.compile(r"(_seconds|_ms|_per_s)$|^infra\.model_(uri|sha256)$")
INJECTED = "injected-parameters"


@dataclass(frozen=True)
class Comparison:
    differences: list[str]  # evidence beyond the tolerance, data and environment changes
    compared: int
    volatile: list[str]

    @property
    def reproduced(self) -> bool:
        return not self.differences


def rerun(run_dir: Path, jobs: int, progress: Progress, started_by: str | None, wait: float,
          tolerance: float, key: Path | None = None) -> tuple[pipeline.Outcome, Comparison]:
    run_dir = run_dir.resolve()
    altered = verify.check_run(run_dir) if records.ArchivedRun(run_dir).sealed else [
        f"{run_dir}: not an archived run folder (no manifest.json)"]
    if altered:
        raise SignoffError("refusing to re-run a run whose archive does not verify:\n  " + "\n  ".join(altered))
    with tempfile.TemporaryDirectory(prefix="signoff-rerun-") as scratch:
        layout = sources(run_dir, Path(scratch), run_dir.parent.parent)
        outcome = pipeline.run(Path(scratch) / "params" / "params.yaml", [], layout, jobs, progress, started_by, wait,
                               rerun_of=run_dir, key=key)
    return outcome, compare(run_dir, outcome.folder, tolerance)


def sources(run_dir: Path, scratch: Path, output_root: Path) -> pipeline.Layout:
    """Rebuild a project from an archived run: its stage notebooks numbered in the run's order, templates, params."""
    for folder in ("notebooks", "templates", "params"):
        (scratch / folder).mkdir()
    archived = records.ArchivedRun(run_dir)
    params, order = archived.params, [stage["name"] for stage in archived.verdict.stages]  # the pipeline's order
    for executed in sorted((run_dir / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(executed, as_version=4)
        name = Path(nb.metadata.get("papermill", {}).get("input_path", "")).name
        if params.get("stages", {}).get(executed.stem, {}).pop(config.OWN_NOTEBOOK, None) is None \
                and not stages.STAGE_FILE.match(name):
            raise SignoffError(f"{executed}: does not record the stage notebook it was executed from "
                               "(metadata.papermill.input_path)")
        # numbered by the original run's order; a user's own notebook (stages.<stage>.notebook) becomes the
        # stage's notebook itself, re-run from its archived source rather than from today's file
        numbered = f"{order.index(executed.stem) + 1:02d}_{executed.stem}.ipynb"
        nbformat.write(_source(nb), scratch / "notebooks" / numbered)
    nbformat.write(_source(nbformat.read(run_dir / "report.ipynb", as_version=4)),
                   scratch / "templates" / "report.ipynb")
    for name in pipeline.ARCHIVED_TEMPLATES:
        kept = run_dir / "templates" / name
        if not kept.is_file() and name not in pipeline.REQUIRED_TEMPLATES:
            continue  # a run from before the evidence map
        if not kept.is_file():
            raise SignoffError(f"{kept}: missing; this run was archived without its templates and cannot be re-run")
        (scratch / "templates" / name).write_bytes(kept.read_bytes())
    (scratch / "params" / "params.yaml").write_text(config.dump_params(params), encoding="utf-8")
    return pipeline.Layout(notebooks=scratch / "notebooks", templates=scratch / "templates", output_root=output_root)


def _source(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as it was before Papermill executed it."""
    nb.cells = [c for c in nb.cells if INJECTED not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("papermill", None)
    return nb


def compare(before_dir: Path, after_dir: Path, tolerance: float) -> Comparison:
    original, again = records.ArchivedRun(before_dir), records.ArchivedRun(after_dir)
    before, after = _read(lambda: original.evidence), _read(lambda: again.evidence)
    differences = _inputs(_read(lambda: original.provenance), _read(lambda: again.provenance))
    volatile = sorted(k for k in set(before) | set(after) if VOLATILE.search(k))
    names = sorted((set(before) | set(after)) - set(volatile))
    for name in names:
        if name not in after:
            differences.append(f"{name}: {_show(before[name])} -> missing in the re-run")
        elif name not in before:
            differences.append(f"{name}: missing in the original -> {_show(after[name])}")
        elif not _same(before[name], after[name], tolerance):
            differences.append(f"{name}: {_show(before[name])} -> {_show(after[name])}")
    return Comparison(differences, len(names), volatile)


def _inputs(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Changes in data and installed distributions: the usual reasons a re-run differs."""
    found = []
    for role in sorted(set(before.get("data", {})) | set(after.get("data", {}))):
        was = before.get("data", {}).get(role, {}).get("content", {}).get("sha256")
        now = after.get("data", {}).get(role, {}).get("content", {}).get("sha256")
        if was != now:
            found.append(f"data ({role}): content sha256 {was} -> {now}")
    was, now = before.get("distributions", {}), after.get("distributions", {})
    found += [f"distribution {name}: {was.get(name, 'absent')} -> {now.get(name, 'absent')}"
              for name in sorted(set(was) | set(now)) if was.get(name) != now.get(name)]
    return found


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _read(record: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A record of either run, or nothing when it has none (a run that ended in ERROR may lack evidence)."""
    try:
        return record()
    except SignoffError:
        return {}
