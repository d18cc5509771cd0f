"""Signoff: evidence-gated, auditable model releases from parameterized notebooks.

The rooms (see docs/ARCHITECTURE.md): ``analysis`` is what stage kernels import; ``run`` drives a run
(the flow of one run is :mod:`runner.run.pipeline`, top to bottom); ``judge`` turns evidence into a
verdict; ``audit`` archives, seals and verifies; ``release`` talks to the MLflow registry.
``cli`` is the command line over them.  Importing this package changes nothing outside it.

From Python (a notebook): ``runner.signoff(params, overrides=[...])`` runs a params file and returns a
:class:`Run`; ``runner.load``, ``runner.verify``, ``runner.approve``, ``runner.reject``, ``runner.promote``,
``runner.rollback``
(:mod:`runner.api`, imported on first use).
"""

__version__ = "0.1.0"

API = ("signoff", "load", "verify", "approve", "reject", "promote", "rollback", "Run")


def __getattr__(name: str):
    """The Python API, imported when first asked for: ``import runner`` itself stays free of side effects."""
    if name in API:
        from runner import api

        return getattr(api, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
