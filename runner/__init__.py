"""Signoff: evidence-gated, auditable model releases from parameterized notebooks.

The rooms (see docs/ARCHITECTURE.md): ``analysis`` is what stage kernels import; ``run`` drives a run
(the flow of one run is :mod:`runner.run.pipeline`, top to bottom); ``judge`` turns evidence into a
verdict; ``audit`` archives, seals and verifies; ``release`` talks to the MLflow registry.
``cli`` is the command line over them.  Importing this package changes nothing outside it.
"""

__version__ = "0.1.0"
