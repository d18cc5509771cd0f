"""Where a run came from: code, environment, machine, person, data and seeds.

Written into every run as ``provenance.json`` so that an auditor can tell what
produced the evidence, and `signoff rerun` can tell whether a re-run saw the same
inputs.  Everything here passes through the redactor before it is written.
"""

from __future__ import annotations

import datetime as dt
import getpass
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from runner import records
from runner.analysis import datasets, workspace


def git_commit() -> str:
    """The project's commit, with ``-dirty`` when the tree has uncommitted changes; ``unknown`` outside git."""
    root = str(workspace.project_root())
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def collect(params: dict[str, Any], stage_params: dict[str, dict[str, Any]], frames: tuple[pd.DataFrame,
                                                                                           pd.DataFrame | None],
            started: dt.datetime) -> dict[str, Any]:
    """Everything but the end time, which ``finish`` adds when the run is complete."""
    commit = git_commit()
    return {
        "started": started.isoformat(),
        "command": ["signoff", *sys.argv[1:]],
        "user": user(),
        "host": socket.gethostname(),
        "git": {"commit": commit.removesuffix("-dirty"), "dirty": commit.endswith("-dirty")},
        "python": {"version": sys.version, "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": platform.platform(),
        "distributions": distributions(),
        "data": fingerprints(params["data"], params["seed"], frames),
        "seeds": seeds(params, stage_params),
    }


def finish(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "finished": dt.datetime.now(dt.UTC).isoformat()}


def distributions() -> dict[str, str]:
    """Every installed distribution and its version, as pip would list them."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def fingerprints(spec: dict[str, Any], seed: int, frames: tuple[pd.DataFrame, pd.DataFrame | None]) -> dict[str, Any]:
    """Each data file's sha256, rows and columns, or the generator's parameters for synthetic data;
    the content hash of each frame as the stages received it, either way."""
    reference, current = frames
    record: dict[str, Any] = {}
    for role, key, frame in (("reference", "path", reference), ("current", "current_path", current)):
        if frame is None:
            continue
        entry: dict[str, Any] = {"content": datasets.fingerprint(frame)}
        if spec.get(key):
            path = Path(spec[key])
            entry["file"] = {"path": str(path.resolve()), "sha256": records.sha256_file(path),
                             "size": path.stat().st_size}
        else:
            entry["generator"] = {"function": "runner.analysis.datasets.synthetic_credit",
                                  "parameters": spec["synthetic"],
                                  "seed": seed}
        record[role] = entry
    return record


def seeds(params: dict[str, Any], stage_params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run's seed and every stage parameter that is one."""
    found: dict[str, Any] = {"seed": params["seed"]}
    for stage, values in stage_params.items():
        for name, value in values.items():
            if "seed" in name or name == "random_state":
                found[f"{stage}.{name}"] = value
    return found


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
