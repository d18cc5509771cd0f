"""The run folder: written under a temporary name, then renamed into place once, never rewritten.

``outputs/<model>/<run_id>/`` appears only when complete, failed runs included,
so a reader never sees half a run under its real name.  ``manifest.json`` holds
the sha256 and size of every file and the hash of the model's previous manifest;
files are made read-only and nothing in a run is writable by group or others.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import records
from runner.audit.bundle_check import core_sha256

TEMP_PREFIX = ".tmp-"
LEDGER = "ledger.jsonl"  # per model: every run finished and every decision
RENDERS = "html"  # the notebooks rendered for a browser
FOLDER_MODE = 0o750
FILE_MODE = 0o440


@dataclass(frozen=True)
class RunFolder:
    run_id: str
    temp: Path  # where the run is written
    final: Path  # where it appears when finished


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable by start time to the microsecond; the random tail keeps same-instant runs apart."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def start(output_root: Path, model: str) -> RunFolder:
    model_dir = output_root / model
    model_dir.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id()
        temp = model_dir / f"{TEMP_PREFIX}{run_id}"
        if not (model_dir / run_id).exists():
            try:
                temp.mkdir(mode=FOLDER_MODE)
            except FileExistsError:
                continue
            return RunFolder(run_id, temp, model_dir / run_id)


def finished_runs(model_dir: Path) -> list[Path]:
    """The model's completed runs, oldest first: real folders only (a link could point anywhere)."""
    if not model_dir.is_dir():
        return []
    return sorted(
        p
        for p in model_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and (p / records.MANIFEST).exists()
    )


def previous_run(model_dir: Path) -> Path | None:
    runs = finished_runs(model_dir)
    return runs[-1] if runs else None



def seal(run: RunFolder, model: str, previous: Path | None) -> dict[str, Any]:
    """Drop the work files and hash every file but the HTML renders.

    The renders carry the returned ``sha256`` in their banner, so they are hashed
    after it, by ``finalize``: a printed report names the manifest it belongs to.
    """
    shutil.rmtree(run.temp / "work", ignore_errors=True)
    files = {
        str(path.relative_to(run.temp)): {"sha256": records.sha256_file(path), "size": path.stat().st_size}
        for path in sorted(run.temp.rglob("*"))
        if path.is_file() and path.relative_to(run.temp).parts[0] != RENDERS
    }
    core = {"model": model, "run_id": run.run_id,
            "previous": records.sha256_file(previous / records.MANIFEST) if previous else None,
            "files": files}
    return {**core, "sha256": core_sha256(core)}


def finalize(run: RunFolder, manifest: dict[str, Any]) -> Path:
    """Hash the renders, write the manifest, make the run read-only, and move it into place."""
    renders = {
        str(path.relative_to(run.temp)): {"sha256": records.sha256_file(path), "size": path.stat().st_size}
        for path in sorted((run.temp / RENDERS).rglob("*"))
        if path.is_file()
    }
    records.write_json(run.temp / records.MANIFEST, {**manifest, RENDERS: renders})
    protect(run.temp)
    os.rename(run.temp, run.final)
    return run.final


def protect(folder: Path) -> None:
    """Files read-only, nothing writable by group or others: a finished run is not edited in place."""
    for path in folder.rglob("*"):
        path.chmod(FOLDER_MODE if path.is_dir() else FILE_MODE)
    folder.chmod(FOLDER_MODE)
