"""Where a run came from: the project's git commit."""

from __future__ import annotations

import subprocess

from runner import workspace


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
