"""A run stopped by a signal: kernels shut down, no new stage, the run archived as ERROR, the lock freed.

cron's and Airflow's timeouts, ``timeout``, systemd and a user's Ctrl-C stop a command with
SIGTERM, SIGINT or SIGHUP.  While :func:`handled` is in force the first of these

- kills every kernel Signoff started (they register here), so the stages running in threads end
  at once with a dead kernel, and stages not yet started see :func:`requested` and do not start;
- raises :class:`Stopped` in the main thread, which archives the run as ``ERROR`` on its way out
  and releases the model's lock; inside a :func:`deferred` section (archiving a run, registering
  it) the stop is only noted, and the section stops where it safely can, so that an archive or a
  registration is never left half written.

A second signal during that clean-up exits at once (exit code :data:`EXIT_CODE`): the run stays in
its ``.tmp-`` folder, which ``signoff verify`` notes as unfinished, and the OS frees the lock.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
EXIT_CODE = 2  # could not run: the run did not reach a verdict


class Stopped(BaseException):
    """The run was stopped by a signal.  A BaseException, like KeyboardInterrupt: no ``except Exception``
    on the way out may swallow it.  ``results``: the stages' results, where they were known."""

    def __init__(self, signal_name: str):
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name
        self.results: list[Any] | None = None
        self.archived: Path | None = None  # where the stopped run was archived


_requested = threading.Event()
_signal_name = ""
_deferred = 0
_kernels: set[Any] = set()  # kernel managers of running kernels
_kernels_lock = threading.RLock()  # the handler may run while the main thread holds it


def requested() -> str | None:
    """The signal that asked the run to stop, or None."""
    return _signal_name if _requested.is_set() else None


@contextmanager
def handled() -> Iterator[None]:
    """Stop cleanly on SIGTERM, SIGINT and SIGHUP for the duration (main thread only)."""
    global _signal_name
    previous = {number: signal.signal(number, _on_signal) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _requested.clear()
        _signal_name = ""


@contextmanager
def deferred() -> Iterator[None]:
    """A section a first signal must not cut in half (sealing a run, registering it): inside, a stop
    is only noted; the section asks :func:`requested` where it can stop, and :func:`check` raises."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def check() -> None:
    """Raise :class:`Stopped` if a signal asked the run to stop."""
    if _requested.is_set():
        raise Stopped(_signal_name)


def waited(future: Future) -> Any:
    """``future.result()`` for the main thread, letting a stop signal in.  Python runs signal handlers in
    the main thread only, and the OS may deliver a signal to any thread (the more threads, the likelier):
    a main thread blocked without a timeout would then never run the handler, and the run would go on."""
    while not future.done():
        wait([future], timeout=0.2)
    return future.result()


def register(km: Any) -> None:
    with _kernels_lock:
        _kernels.add(km)
    if _requested.is_set():  # started while the run was being stopped
        _kill(km)


def unregister(km: Any) -> None:
    with _kernels_lock:
        _kernels.discard(km)


def _on_signal(number: int, frame: Any) -> None:
    global _signal_name
    name = signal.Signals(number).name
    with _kernels_lock:
        running = list(_kernels)
    for km in running:
        _kill(km)
    if _requested.is_set():
        os.write(2, f"signoff: {name} again: exiting at once; the unfinished run stays in its .tmp- folder\n".encode())
        os._exit(EXIT_CODE)
    _signal_name = name
    _requested.set()
    os.write(2, f"signoff: {name}: stopping (kernels shut down, the run is archived as ERROR); "
                f"send it again to exit at once\n".encode())
    if _deferred == 0:
        raise Stopped(name)


def _kill(km: Any) -> None:
    """Kill a kernel's process; its stage thread then fails at once with a dead kernel."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None:
        try:
            process.send_signal(signal.SIGKILL)  # Popen: never signals a pid it has already reaped
        except OSError:
            pass
