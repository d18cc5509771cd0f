"""Signoff: evidence-gated, auditable model releases from parameterized notebooks.

The flow of a run is in :mod:`runner.pipeline`; the command line in :mod:`runner.cli`.
"""

__version__ = "0.1.0"
