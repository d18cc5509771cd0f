"""Example Airflow DAG: the credit-default release run, nightly at 02:00 UTC.

Put this folder on Airflow's ``dags_folder`` (or copy the file there) in an environment with
``pip install -e "/path/to/signoff[airflow]"``.  Every worker must see the project folder
(notebooks/, templates/, params/) and the output root, and reach the MLflow store.
Try it without a scheduler:  airflow dags test signoff_credit_default
With SIGNOFF_KEY (the service's SSH key) and SIGNOFF_ALLOWED_SIGNERS set, each run is signed by the service.
"""

import os
from pathlib import Path

from runner.run.airflow_dag import build_dag

PROJECT = Path(__file__).resolve().parents[1]

dag = build_dag(PROJECT / "params" / "credit.yaml", schedule="0 2 * * *",
                signing_key=os.environ.get("SIGNOFF_KEY") or None)
