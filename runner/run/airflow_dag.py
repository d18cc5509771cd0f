"""An Airflow DAG from a params file: the same run as `signoff run`, one task per stage.

``begin`` checks the inputs and opens the run folder (as `signoff run` does, under the
model's lock) and opens the MLflow run; each stage is a task that executes its notebook
through Papermill into that run folder, after the stages it needs; ``gate_report``
(which runs whatever happened upstream) gathers the evidence, checks the gates, writes
the report, archives the run and releases it.  Tasks hand each other nothing but the run
folder's path, so any executor works as long as every worker sees the output root (a
shared volume) and the MLflow store.  The DAG allows one active run at a time: runs of a
model chain one after the other.

A verdict other than PASS or WARN fails ``gate_report`` (after the run is archived), so
Airflow's own alerting fires on a blocked release.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import DAG, task
    from airflow.sdk.exceptions import AirflowFailException
except ImportError as exc:  # the scheduler's log shows this line, not a bare ModuleNotFoundError
    raise ImportError("runner.run.airflow_dag needs Apache Airflow 3: pip install -e '.[airflow]' "
                      f"in the Airflow environment ({exc})") from exc

from runner import mlflow_store
from runner.analysis import workspace
from runner.audit import lock, redact
from runner.errors import SignoffError
from runner.release import mlflow_registry
from runner.run import pipeline
from runner.run.progress import Progress
from runner.run.scheduling import StageResult, execute

TRACKING = "tracking.json"  # in the run's work/: the MLflow run and champion that begin opened
RESULTS = "results"  # in the run's work/: one StageResult per stage task that ran


def build_dag(params_file: str | Path, *, dag_id: str | None = None, overrides: tuple[str, ...] = (),
              output_root: str | Path | None = None, started_by: str | None = None, lock_wait: float = 600,
              signing_key: str | Path | None = None, **dag_args: Any) -> DAG:
    """The DAG for one params file; ``dag_args`` go to ``DAG`` (``schedule``, ``start_date``, ...).

    ``signing_key``: the service's SSH key (a path on the workers) that signs each run; its principal in the
    allowed-signers file starts the run.  ``started_by`` defaults to that principal, else to "airflow".

    The params file and every stage's parameters are checked when the DAG is parsed, so a
    broken params file shows up as an import error in Airflow rather than as a failed run.
    """
    params_file = Path(params_file).resolve()
    root = workspace.project_root(params_file.parent)
    layout = pipeline.Layout(root / "notebooks", root / "templates",
                             Path(output_root) if output_root else root / "outputs")
    params, found, _ = pipeline.prepare(params_file, list(overrides), layout)
    settings = {"schedule": None, "start_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "catchup": False,
                "max_active_runs": 1, "tags": ["signoff", params["model"]], **dag_args}
    with DAG(dag_id or f"signoff_{params['model'].replace('-', '_')}", **settings) as dag:
        starter = started_by or (None if signing_key else "airflow")
        opened = task(task_id="begin")(begin)(str(params_file), list(overrides), _plain(layout), starter, lock_wait,
                                              str(signing_key) if signing_key else None)
        tasks = {s.name: task(task_id=s.name)(run_stage)(opened, s.name) for s in found}
        for stage in found:
            for need in stage.needs:
                tasks[need] >> tasks[stage.name]
        concluded = task(task_id="gate_report", trigger_rule="all_done")(gate_report)(opened, lock_wait)
        for stage_task in tasks.values():
            stage_task >> concluded
    return dag


def begin(params_file: str, overrides: list[str], layout: dict[str, str], started_by: str | None, lock_wait: float,
          signing_key: str | None = None) -> str:
    """Open the run folder on checked inputs and open the MLflow run; returns the run folder."""
    progress = Progress()
    plan = pipeline.Layout(**{k: Path(v) for k, v in layout.items()})
    redactor = redact.from_environment()
    prepared = pipeline.prepare(Path(params_file), overrides, plan)
    pipeline.preflight(prepared[0], plan)
    model = prepared[0]["model"]
    with lock.held(plan.output_root / model, f"airflow begin {params_file}", lock_wait, progress.line):
        started = pipeline.begin(prepared, Path(params_file), plan, started_by, redactor,
                                 key=Path(signing_key) if signing_key else None)
    try:
        tracking = started.open_tracking()
        state = {"mlflow_run": tracking.mlflow_run, "champion_dir": tracking.champion_dir, "error": None}
    except SignoffError as exc:
        state = {"mlflow_run": None, "champion_dir": "", "error": str(exc)}
    _write(workspace.work(str(started.folder.temp)) / TRACKING, state)
    progress.line(f"run {started.folder.run_id} of model {model}: folder {started.folder.temp}")
    return str(started.folder.temp)


def run_stage(run_dir: str, name: str) -> None:
    """Execute one stage notebook into the run folder; a failed notebook fails the task (never retried here)."""
    started = pipeline.Started.load(Path(run_dir))
    stage = next(s for s in started.stages if s.name == name)
    os.environ.update(pipeline.kernel_env(started.uri))  # the kernel inherits them
    supplied = started.supplied(lambda: _tracking(started))
    values = {k: _resolved(supplied.get(k, v)) for k, v in started.stage_params[name].items()}
    (Path(run_dir) / "notebooks").mkdir(exist_ok=True)
    result = execute(name, stage.path, Path(run_dir) / "notebooks" / f"{name}.ipynb", values, Path(run_dir),
                     started.params["execution"], Progress())
    _write(workspace.work(run_dir) / RESULTS / f"{name}.json", result.__dict__)
    if result.status != "passed":
        raise AirflowFailException(f"stage {name} {result.status}: {result.error}")


def gate_report(run_dir: str, lock_wait: float) -> dict[str, str]:
    """Evidence, gates, report, archive and release, whatever the stages did; fails on BLOCKED or ERROR."""
    started = pipeline.Started.load(Path(run_dir))
    progress = Progress()
    redactor = redact.from_environment()
    results = [_result(Path(run_dir), stage.name) for stage in started.stages]
    state = json.loads((Path(run_dir) / "work" / TRACKING).read_text(encoding="utf-8"))
    tracking = _tracking(started) if state["error"] is None else None
    with lock.held(started.layout.output_root / started.params["model"], f"airflow gate_report {started.folder.run_id}",
                   lock_wait, progress.line):
        with pipeline.archived_on_crash(started, redactor):
            verdict, facts = pipeline.conclude(started, results, tracking, state["error"], progress)
        outcome = pipeline.finish(started, verdict, facts, tracking, redactor, progress)
    progress.line(f"verdict {verdict.verdict}; run folder {outcome.folder}; registry: {outcome.release}")
    if outcome.exit_code != 0:
        raise AirflowFailException(f"verdict {verdict.verdict}: the run is archived at {outcome.folder}")
    return {"verdict": verdict.verdict, "run_folder": str(outcome.folder), "release": outcome.release}


def _tracking(started: pipeline.Started) -> mlflow_registry.Tracking:
    """The MLflow run and champion that ``begin`` opened, for a task in another process."""
    state = json.loads((started.folder.temp / "work" / TRACKING).read_text(encoding="utf-8"))
    if state["error"]:
        raise SignoffError(state["error"])
    champion_file = started.folder.temp / "work" / "champion" / "champion.json"
    champion = json.loads(champion_file.read_text(encoding="utf-8")) if state["champion_dir"] else None
    return mlflow_registry.Tracking(mlflow_store.connect(started.uri), state["mlflow_run"], champion,
                                    state["champion_dir"])


def _result(run_dir: Path, name: str) -> StageResult:
    path = run_dir / "work" / RESULTS / f"{name}.json"
    if not path.exists():
        return StageResult(name, "skipped", 0.0, "its task did not run (a stage it needs did not pass)", None)
    return StageResult(**json.loads(path.read_text(encoding="utf-8")))


def _resolved(value: Any) -> Any:
    return value() if callable(value) else value


def _plain(layout: pipeline.Layout) -> dict[str, str]:
    return {key: str(value) for key, value in layout.__dict__.items()}


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
