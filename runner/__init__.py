"""Signoff: evidence-gated, auditable model releases from parameterized notebooks.

The flow of a run is in :mod:`runner.pipeline`; the command line in :mod:`runner.cli`.
"""

import sys

__version__ = "0.1.0"

# Modules Signoff's processes go without.  jsonschema (under nbformat, under papermill and
# scrapbook) compiles rfc3987-syntax's Lark grammars when imported, 3.5 s in the CLI and ~10 s
# in a kernel, only to check "iri" string formats that no notebook schema uses
# (python-jsonschema/jsonschema#1428).  Stage kernels are told the same before their imports.
SKIPPED_IMPORTS = ("rfc3987_syntax",)
for _name in SKIPPED_IMPORTS:
    sys.modules.setdefault(_name, None)
