"""Running: parameters checked, stages scheduled on kernels, progress shown, stops honoured.

:mod:`runner.run.pipeline` is the flow of one run, top to bottom; ``monitor``, ``rerun`` and the
Airflow DAG factory reuse its parts.  The only room that uses all the others.
"""
