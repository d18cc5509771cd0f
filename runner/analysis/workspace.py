"""Where a stage notebook reads and writes, inside a run or on its own in JupyterLab.

During ``signoff run`` every notebook receives the run folder as ``run_dir``.
Opened by hand, a notebook has ``run_dir = ""`` and works in a scratch folder
(``outputs/scratch`` of the project, or ``$SIGNOFF_SCRATCH``), so that running
01, 02, 03 top to bottom in JupyterLab chains the same way a pipeline run does.
"""

from __future__ import annotations

import os
from pathlib import Path


def run_folder(run_dir: str) -> Path:
    """The folder a stage works in, created if needed."""
    folder = Path(run_dir) if run_dir else scratch_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def scratch_folder() -> Path:
    if os.environ.get("SIGNOFF_SCRATCH"):
        return Path(os.environ["SIGNOFF_SCRATCH"])
    return project_root() / "outputs" / "scratch"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) with notebooks/ and params/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "params").is_dir():
            return folder
    return Path.cwd().resolve()


def artifacts(run_dir: str) -> Path:
    """Files a stage hands to later stages and to the archive (model, split)."""
    folder = run_folder(run_dir) / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder


def work(run_dir: str) -> Path:
    """Bulky intermediate files (the data as Parquet); not archived."""
    folder = run_folder(run_dir) / "work"
    folder.mkdir(exist_ok=True)
    return folder
