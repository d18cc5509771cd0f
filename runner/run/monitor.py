"""`signoff monitor`: is the champion still fit for the data it sees now?

1. resolve the params file: its ``monitor_gates`` are the health checks
2. under the model's lock, find the champion in the registry and fetch, hash-checked, the
   training artifacts and params of the run that produced it
3. rebuild the champion's training data (checked against its recorded fingerprint) and read
   ``--current DATA``
4. the drift stage compares the two; with ``--labels`` the validate stage also scores the
   champion on the current rows
5. evidence, plus ``monitor.champion_age_days``; the monitor gates; the gating report
6. archived like a run, under ``outputs/<model>.monitor/`` (its own chain), and the verdict
   tagged on the champion's version

Exit 0 healthy, 1 a blocking monitor gate failed (the alert), 2 could not run.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from runner import config, mlflow_store, records
from runner.analysis import datachecks, datasets, workspace
from runner.audit import archive, index, lock, provenance, redact, verify
from runner.errors import SignoffError
from runner.judge import evidence, gates
from runner.release import mlflow_registry
from runner.run import paramcheck, pipeline, stages, stopping
from runner.run.kernels import handed_over
from runner.run.progress import Progress
from runner.run.scheduling import run_stages

DRIFT, VALIDATE = "drift", "validate"
TRAINING_FILES = ("artifacts", "params.yaml", "provenance.json")  # what a monitor needs of the champion's run


def monitor(params_file: Path, overrides: list[str], current: Path, labels: bool, layout: pipeline.Layout,
            jobs: int, progress: Progress, started_by: str, wait: float,
            trust_champion: bool = False) -> pipeline.Outcome:
    params = config.load_params(params_file, overrides)
    if not params["monitor_gates"]:
        raise SignoffError(
            f"{params_file}: monitor_gates: none declared; a monitor needs gates to judge the champion by"
        )
    if current.is_dir():
        raise SignoffError(f"{current}: is a directory; expected a CSV or Parquet file (--current)")
    if not current.is_file():
        raise SignoffError(f"{current}: no such data file (--current)")
    chosen = _stages(layout.notebooks, labels)
    paramcheck.gate_metrics(params["monitor_gates"], "monitor_gates", _stages(layout.notebooks, labels=True),
                            evidence.MONITOR_FACTS, params_file)
    model = params["model"]
    redactor = redact.from_environment()
    uri = pipeline.preflight(params, layout)
    with lock.held(layout.output_root / model, f"signoff monitor {params_file}", wait, progress.line):
        try:
            client = mlflow_store.connect(uri)
            version = mlflow_registry.alias(client, model, mlflow_registry.CHAMPION)
        except Exception as exc:
            raise SignoffError(f"MLflow at {redact.redact_uri(uri)}: {type(exc).__name__}: {exc}") from exc
        if version is None:
            raise SignoffError(f"model {model} has no champion in {redact.redact_uri(uri)}: nothing to monitor")
        moved = verify.check_champion(layout.output_root / model, mlflow_registry.kept(client))
        if moved and not trust_champion:
            raise SignoffError(f"{moved[0]}; judging it would monitor a model nobody signed off: restore the alias "
                               "(`signoff rollback` or `promote`), or pass --trust-champion to judge it anyway")
        now = dt.datetime.now(dt.UTC)
        folder = archive.start(layout.output_root, model + records.MONITOR_SUFFIX)
        try:
            entry = client.get_model_version(model, version)
            trained = mlflow_registry.fetch_run_files(client, entry.run_id, TRAINING_FILES,
                                               workspace.work(str(folder.temp)) / "champion-run")
            shutil.copytree(trained / "artifacts", folder.temp / "artifacts")
            champion_run = records.ArchivedRun(trained)  # the files a monitor needs, checked against its manifest
            run_params = _params(champion_run.params, params, current, chosen)
            stage_params = paramcheck.stage_parameters(chosen, run_params, params_file)
            (folder.temp / "params.yaml").write_text(config.dump_params(redactor.value(run_params)), encoding="utf-8")
            ready = datasets.prepared(run_params["data"], run_params["seed"], workspace.work(str(folder.temp)))
            frames, data_warnings = (ready.reference, ready.current), ready.warnings
            _check_inputs(frames, champion_run.provenance, run_params["data"], current, labels)
        except BaseException as exc:
            shutil.rmtree(folder.temp, ignore_errors=True)  # bad input or no champion run: nothing ran
            if isinstance(exc, Exception) and not isinstance(exc, SignoffError):
                raise SignoffError(f"could not prepare the monitor of {model} version {version}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            raise
        origin = provenance.collect(run_params, stage_params, frames, now)
        about = {"model": model, "kind": "monitor", "run_id": folder.run_id, "params_file": str(params_file),
                 "started": now.isoformat(), "started_by": started_by, "current": str(current.resolve()),
                 "labels": labels, "champion": {"version": version, "mlflow_run_id": entry.run_id,
                                                "signoff_run_id": entry.tags.get(f"{mlflow_store.TAG}run_id")}}
        started = pipeline.Started(run_params, chosen, stage_params, layout, folder, about, origin, uri, None, version,
                                   data_warnings)
        with progress.recording(folder.temp / "run.log"):
            progress.line(f"monitor {folder.run_id}: champion version {version} of {model} on {current}")
            with pipeline.archived_on_crash(started, redactor):
                facts, warm = _observe(chosen, stage_params, run_params, folder, jobs, progress, uri, layout)
                with handed_over(warm) as report_kernel:
                    facts[evidence.MONITOR_CHAMPION_VERSION] = version
                    facts[evidence.MONITOR_CHAMPION_AGE] = _age_days(entry.creation_timestamp)
                    verdict = _judge(params["monitor_gates"], facts, started, progress, report_kernel)
        with stopping.deferred():  # a stop signal now lets the archive and the tags complete: a second or two
            final = pipeline.archive_run(folder, verdict, origin, redactor, progress)
            mlflow_registry.version_tags(client, model, version, {"last_monitor": verdict.verdict,
                                                           "last_monitor_run": folder.run_id,
                                                           "last_monitor_at": verdict.finished})
            index.write(layout.output_root)
    return pipeline.Outcome(verdict, final,
                            f"champion version {version} tagged signoff.last_monitor={verdict.verdict}")


def _stages(notebooks: Path, labels: bool) -> list[stages.Stage]:
    """The drift stage, and validate when there are labels; their training inputs come from the champion."""
    found = {stage.name: stage for stage in stages.discover(notebooks)}
    wanted = [VALIDATE, DRIFT] if labels else [DRIFT]
    for name in wanted:
        if name not in found:
            raise SignoffError(f"{notebooks}: no *_{name}.ipynb stage notebook, which a monitor runs")
    return [stages.Stage(name, found[name].path, (), found[name].evidence) for name in wanted]


def _params(trained: dict[str, Any], params: dict[str, Any], current: Path, chosen: list[stages.Stage]) -> dict[str,
                                                                                                                Any]:
    """The champion's own data, seed and stage parameters with the newest data; this params file's
    model, gates and their confidence level, registry and execution limits."""
    stage_values = {s.name: dict(trained["stages"].get(s.name, {})) for s in chosen}
    if VALIDATE in stage_values:
        stage_values[VALIDATE]["evaluate_on"] = "current"
    return {"model": params["model"], "seed": trained["seed"], "stages": stage_values,
            "data": {**trained["data"], "current_path": str(current.resolve())},
            "monitor_gates": params["monitor_gates"], "gates_confidence": params["gates_confidence"],
            "registry": params["registry"], "execution": params["execution"]}


def _check_inputs(frames: list, provenance: dict[str, Any], data_params: dict[str, Any], current: Path,
                  labels: bool) -> None:
    """The champion's training data must be what it was trained on; the current data must hold its
    features, and with --labels the target column."""
    reference, now = frames
    target = data_params["target"]
    recorded = provenance["data"]["reference"]["content"]["sha256"]
    if datasets.fingerprint(reference)["sha256"] != recorded:
        raise SignoffError("the champion's training data no longer matches the fingerprint recorded when it was "
                           "trained (its data file changed): the drift reference would be wrong")
    lacking = datachecks.lacking_features(now, reference, data_params)
    if lacking:
        raise SignoffError(f"{current}: current data lacks the training data's feature columns "
                           f"{', '.join(map(repr, lacking))}; the champion needs every one of them")
    if labels and target not in now.columns:
        raise SignoffError(f"{current}: --labels, but the target column {target!r} is missing; "
                           f"columns are: {', '.join(map(str, now.columns))}")


def _observe(chosen: list[stages.Stage], stage_params: dict[str, dict[str, Any]], run_params: dict[str, Any],
             folder: archive.RunFolder, jobs: int, progress: Progress, uri: str,
             layout: pipeline.Layout) -> tuple[dict[str, Any], AsyncKernelManager | None]:
    """The stages' evidence, and the report's kernel, warmed meanwhile."""
    supplied = {"run_dir": str(folder.temp), "previous_run": "", "champion_dir": "", "mlflow_run_id": ""}
    results, warm = run_stages(chosen, stage_params, folder.temp, supplied, run_params["execution"], jobs, progress,
                               env=pipeline.kernel_env(uri), then=layout.templates / pipeline.REPORT)
    facts = evidence.collect({r.name: folder.temp / r.notebook for r in results if r.notebook})
    facts["monitor.stages"] = [r.__dict__ for r in results]
    return facts, warm


def _judge(declared: list[dict[str, Any]], facts: dict[str, Any], started: pipeline.Started,
           progress: Progress, report_kernel: AsyncKernelManager | None) -> records.Verdict:
    """Monitor gates on what was observed; gates on label-based evidence wait for --labels."""
    about, layout, folder, run_params = started.about, started.layout, started.folder, started.params
    results = facts.pop("monitor.stages")
    ran = {r["name"] for r in results} | {"monitor"}
    applicable = [g for g in declared if g["metric"].split(".")[0] in ran]
    checked = gates.evaluate(applicable, facts, None, run_params["gates_confidence"])
    verdict = gates.judged(about, checked, results,
                           not_evaluated=[{"id": g["id"], "metric": g["metric"],
                                           "why": "its stage did not run (no --labels)"}
                                          for g in declared if g not in applicable],
                           warnings=[*started.data_warnings, *evidence.undeclared(facts, _declared(started)),
                                     *gates.warnings(applicable)])
    records.write_json(folder.temp / records.EVIDENCE, facts)
    pipeline.gating_report(folder.temp, layout.templates, verdict, run_params["execution"], progress, report_kernel)
    return verdict


def _age_days(created_ms: int) -> float:
    return (dt.datetime.now(dt.UTC).timestamp() * 1000 - created_ms) / 86_400_000


def _declared(started: pipeline.Started) -> list[str]:
    return [*evidence.MONITOR_FACTS, *(name for stage in started.stages for name in stage.declared())]
