"""One writer per model.

MLflow's alias update is last-writer-wins, so every decision on a model (and the
registration at the end of a run) happens behind ``outputs/<model>/.lock``.  The
lock is an OS file lock (filelock, flock on Linux): a process that dies releases
it, so a lock left by a crashed command is simply taken over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from runner.errors import SignoffError

LOCKED = 3  # exit code when the lock could not be had in time
LOCK_FILE = ".lock"  # in the model's folder
HOLDER_FILE = ".lock.holder"  # who holds it, for the message of whoever waits


@contextmanager
def held(model_dir: Path, purpose: str, wait: float, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the model's lock for ``purpose``; waits up to ``wait`` seconds, saying for whom."""
    model_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(model_dir / LOCK_FILE)
    holder = model_dir / HOLDER_FILE
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting up to {wait:g} s for the lock on model {model_dir.name}, held by {describe(holder)}")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise SignoffError(
                f"model {model_dir.name} is locked by {describe(holder)}; gave up after {wait:g} s "
                "(--wait SECONDS to wait longer)", exit_code=LOCKED,
            ) from None
    try:
        holder.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }), encoding="utf-8")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def describe(holder: Path) -> str:
    try:
        info = json.loads(holder.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']} ({info['purpose']}) since {info['since']}"
    except (OSError, ValueError, KeyError):
        return "another signoff command"
