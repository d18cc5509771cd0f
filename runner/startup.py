"""What Signoff does to a process of its own before anything heavy is imported: the `signoff` command and
every stage kernel it starts.  Importing :mod:`runner` itself changes nothing outside the package.
"""

from __future__ import annotations

import faulthandler
import signal
import sys

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

    return cli()
