"""What Signoff does to a process of its own before anything heavy is imported: the `signoff` command and
every stage kernel it starts.  Importing :mod:`runner` itself changes nothing outside the package.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import signal
import sys
import threading

# Modules Signoff's processes go without.  jsonschema (under nbformat, under papermill and scrapbook)
# compiles rfc3987-syntax's Lark grammars when imported, 3.5 s in the CLI and ~10 s in a kernel, only to
# check "iri" string formats that no notebook schema uses (python-jsonschema/jsonschema#1428).
SKIPPED_IMPORTS = ("rfc3987_syntax",)


def skip_unused_imports() -> None:
    for name in SKIPPED_IMPORTS:
        sys.modules.setdefault(name, None)


def main() -> int:
    """The `signoff` command.  ``kill -USR1 PID`` prints where each of its threads is (stderr), for a
    command that seems stuck."""
    skip_unused_imports()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from runner.cli import main as cli

    return exit_at_once(cli())


def exit_at_once(code: int) -> int:
    """End the process without finalising every module it imported: MLflow's, pandas' and nbconvert's
    take about 1.3 s to tear down, paid by every command after its last line.  What an exit must do
    is done first (atexit handlers: logging, MLflow; output flushed); while a thread that an exit would
    wait for still runs, the exit is the normal one (``code`` is returned)."""
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        return code
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away, a stream already closed
            stream.flush()
    os._exit(code)
