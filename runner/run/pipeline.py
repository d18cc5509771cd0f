"""One `signoff run`, top to bottom (``run``), holding the model's lock throughout.

``begin``:
1. resolve the params file and check every notebook parameter (nothing runs on bad input)
2. open a run folder under a temporary name and write the resolved params
3. materialise the data once (bad data stops the run before any notebook)
then the stages:
4. execute the stage DAG through Papermill
   (meanwhile, in the background: open the MLflow run and fetch the champion to compare with)
``conclude``:
5. gather the evidence, answer the release checklist, check the gates, reach the verdict
6. execute the gating report and write the model card
``finish``:
7. write provenance, scrub secrets, seal the manifest, render every notebook to HTML, move into place
8. track the run in MLflow, register a PASS or WARN model, promote it if the policy says so

``runner/run/airflow_dag.py`` runs the same three parts as Airflow tasks, with one task per stage between.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from runner import config, mlflow_store, records
from runner.analysis import datasets, workspace
from runner.audit import archive, index, lock, model_card, provenance, redact, render
from runner.audit.pages import Pages
from runner.errors import SignoffError
from runner.judge import checklist, evidence, gates
from runner.release import decisions, mlflow_registry
from runner.run import forkserver, paramcheck, stages, stopping
from runner.run.kernels import handed_over
from runner.run.progress import Progress
from runner.run.scheduling import StageResult, execute, preload, run_stages


@dataclass(frozen=True)
class Layout:
    """Where a run's inputs come from and where it lands."""

    notebooks: Path
    templates: Path  # report.ipynb, checklist.yaml, model_card.md.j2
    output_root: Path


@dataclass(frozen=True)
class Outcome:
    verdict: records.Verdict
    folder: Path
    release: str  # what happened in the registry, in words

    @property
    def exit_code(self) -> int:
        return gates.exit_code(self.verdict.verdict)


# the templates a run is judged and documented by, archived with it; the evidence map may be left out
REQUIRED_TEMPLATES = ("checklist.yaml", "model_card.md.j2")
ARCHIVED_TEMPLATES = (*REQUIRED_TEMPLATES, "evidence_map.yaml")


def prepare(params_file: Path, overrides: list[str], layout: Layout) -> tuple[dict, list[stages.Stage], dict]:
    """Resolve and check everything a run needs; raises SignoffError before anything runs."""
    params = config.load_params(params_file, overrides)
    found = stages.replace(stages.discover(layout.notebooks), params["stages"], params_file)
    for name in (REPORT, *REQUIRED_TEMPLATES):
        if not (layout.templates / name).is_file():
            raise SignoffError(f"{layout.templates / name}: missing template")
    checklist.check_attestations(checklist.load(layout.templates / "checklist.yaml"), params["checklist"], params_file)
    paramcheck.gate_metrics(params["gates"], "gates", found, evidence.RUN_FACTS, params_file)
    paramcheck.gate_metrics(params["monitor_gates"], "monitor_gates", found, evidence.MONITOR_FACTS, params_file)
    return params, found, paramcheck.stage_parameters(found, params, params_file)


def preflight(params: dict[str, Any], layout: Layout) -> str:
    """What a run writes to and tracks in must be usable before the model's lock or any folder exists:
    the output root a writable folder, the MLflow store one that opens.  Returns the tracking URI."""
    root = layout.output_root
    if root.exists() and not root.is_dir():
        raise SignoffError(f"{root}: the output root is a file; expected a folder (--output-root)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root, prefix=".signoff-write-check-") as probe:
            probe.write(b"signoff")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise SignoffError(f"{root}: cannot write to the output root: {exc.strerror}; choose another with "
                           "--output-root, or make it writable") from None
    uri = mlflow_registry.tracking_uri(params["registry"], root)
    mlflow_registry.check_store(uri)
    return uri


@dataclass(frozen=True)
class Started:
    """A run folder opened on checked inputs: everything the stages and the conclusion need.

    Kept as ``work/started.json`` in the run folder, so that separate processes (Airflow's
    tasks, on any worker that sees the folder) can each take their part of the run.
    """

    params: dict[str, Any]
    stages: list[stages.Stage]
    stage_params: dict[str, dict[str, Any]]
    layout: Layout
    folder: archive.RunFolder
    about: dict[str, Any]  # run_id, model, who, when: copied into the verdict
    origin: dict[str, Any]  # provenance, completed when the run is archived
    uri: str  # MLflow tracking URI
    previous: str | None  # the model's last archived run, as the run began
    champion_version: str  # mlflow_registry.CURRENT_CHAMPION, a version, or "" (a re-run pinned to none)
    data_warnings: list[str]  # columns dropped as unusable (runner.analysis.datachecks), kept in the verdict
    key: str | None = None  # the SSH key that signs the run (`--key`), checked when the run began

    def save(self) -> None:
        state = {**self.__dict__,
                 "stages": [[s.name, str(s.path), list(s.needs), list(s.evidence)] for s in self.stages],
                 "layout": {k: str(v) for k, v in self.layout.__dict__.items()},
                 "folder": {k: str(v) for k, v in self.folder.__dict__.items()}}
        records.write_json(workspace.work(str(self.folder.temp)) / STARTED, state)

    @classmethod
    def load(cls, run_dir: Path) -> Started:
        state = json.loads((run_dir / "work" / STARTED).read_text(encoding="utf-8"))
        return cls(**{**state, "stages": [stages.Stage(n, Path(p), tuple(needs), tuple(declared))
                                           for n, p, needs, declared in state["stages"]],
                      "layout": Layout(**{k: Path(v) for k, v in state["layout"].items()}),
                      "folder": archive.RunFolder(state["folder"]["run_id"], Path(state["folder"]["temp"]),
                                                  Path(state["folder"]["final"]))})

    def supplied(self, tracking: Callable[[], mlflow_registry.Tracking]) -> dict[str, Any]:
        """The run's own parameters; the MLflow ones as callables, asked only by stages that declare them."""
        return {"run_dir": str(self.folder.temp), "previous_run": self.previous or "",
                "champion_dir": lambda: tracking().champion_dir, "mlflow_run_id": lambda: tracking().mlflow_run}

    def open_tracking(self) -> mlflow_registry.Tracking:
        return mlflow_registry.open_run(self.uri, self.params["model"], self.layout.output_root, self.folder.run_id,
                                        workspace.work(str(self.folder.temp)) / "champion", self.champion_version,
                                        self.about["started_by"], self.about["params_file"])


STARTED = "started.json"
REPORT = "report.ipynb"  # the gating report's template, and its executed copy in the run folder


def kernel_env(uri: str) -> dict[str, str]:
    """What stage kernels add to their environment: the store, and MLflow's quiet, bounded defaults."""
    return {"MLFLOW_TRACKING_URI": uri, **mlflow_store.quiet_defaults()}


def run(params_file: Path, overrides: list[str], layout: Layout, jobs: int, progress: Progress,
        started_by: str | None, wait: float, rerun_of: Path | None = None, key: Path | None = None,
        server: forkserver.Server | None = None) -> Outcome:
    """One run of a params file; with ``rerun_of``, a re-run of that archived run (champion pinned, never released).
    ``server``: a kernel fork server started for this run (:func:`forkserver.started`), else the run starts one."""
    redactor = _redactor(progress)
    prepared = prepare(params_file, overrides, layout)  # bad input stops here, before anything is written
    preload(server, [stage.path for stage in prepared[1]] + [layout.templates / REPORT])
    preflight(prepared[0], layout)
    started_by = starter(prepared[0], started_by, key, params_file).by  # a signature refused before any folder
    model = prepared[0]["model"]
    progress.line(f"{params_file}: parameters and {len(prepared[1])} stage notebooks checked; preparing the data")
    with lock.held(layout.output_root / model, f"signoff run {params_file}", wait, progress.line):
        started = begin(prepared, params_file, layout, started_by, redactor, rerun_of, key)
        with rendering_ahead(started.folder, redactor) as (pages, page_ready):
            recorded: dict[str, dict[str, Any]] = {}

            def stage_done(notebook: Path, stage: str) -> None:
                """A stage's notebook is final: its page rendered, and its evidence read, while others run."""
                page_ready(notebook, True)
                recorded[stage] = evidence.of_stage(stage, notebook)

            with progress.recording(started.folder.temp / "run.log"):
                progress.line(
                    f"run {started.folder.run_id} of model {model}: {len(started.stages)} stages, {jobs} at a time"
                )
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow") as background:
                    # MLflow's import, the store and the champion's download overlap with the first stages;
                    # only the stages that declare champion_dir or mlflow_run_id wait for them
                    opening = background.submit(started.open_tracking)
                    with archived_on_crash(started, redactor, opening, pages):
                        results, warm = run_stages(
                            started.stages, started.stage_params, started.folder.temp, started.supplied(opening.result),
                            started.params["execution"], jobs, progress, env=kernel_env(started.uri),
                            then=layout.templates / REPORT,
                            finished=lambda result: stage_done(started.folder.temp / str(result.notebook),
                                                               result.name),
                            expected=_stage_seconds(started.previous), server=server)
                        with handed_over(warm) as report_kernel:
                            tracking, tracking_error = _opened(opening)
                            verdict, facts = conclude(started, results, tracking, tracking_error, progress,
                                                      report_kernel, page_ready, recorded)
            return finish(started, verdict, facts, tracking, redactor, progress, pages)


def begin(prepared: tuple[dict, list[stages.Stage], dict], params_file: Path, layout: Layout, started_by: str | None,
          redactor: redact.Redactor, rerun_of: Path | None = None, key: Path | None = None) -> Started:
    """Open the run folder on ``prepare``'s checked inputs, write the params, materialise the data.
    The caller holds the model's lock; bad data raises SignoffError and leaves nothing behind."""
    params, found, stage_params = prepared
    started_by = starter(params, started_by, key, params_file).by
    model = params["model"]
    now = dt.datetime.now(dt.UTC)
    folder = archive.start(layout.output_root, model)
    try:
        (folder.temp / "params.yaml").write_text(config.dump_params(redactor.value(params)), encoding="utf-8")
        ready = datasets.prepared(params["data"], params["seed"], workspace.work(str(folder.temp)))
        frames, data_warnings = (ready.reference, ready.current), ready.warnings
        _check_model_type(stage_params.get("train", {}), ready.task, params_file)
        _check_logged_model(stage_params.get("train", {}), params, ready.reference, params_file, layout.output_root)
    except BaseException:
        shutil.rmtree(folder.temp, ignore_errors=True)  # bad input: nothing ran, nothing to archive
        raise
    about = {"model": model, "run_id": folder.run_id,
             "params_file": str(rerun_of / "params.yaml" if rerun_of else params_file),
             "started": now.isoformat(), "started_by": started_by, "rerun_of": str(rerun_of) if rerun_of else None}
    previous = archive.previous_run(layout.output_root / model)
    started = Started(params, found, stage_params, layout, folder, about,
                      provenance.collect(params, stage_params, frames, now),
                      mlflow_registry.tracking_uri(params["registry"], layout.output_root),
                      str(previous) if previous else None,
                      mlflow_registry.CURRENT_CHAMPION if rerun_of is None else _recorded_champion(rerun_of),
                      data_warnings, str(key) if key else None)
    started.save()
    return started


def _check_model_type(train: dict[str, Any], task: str, params_file: Path) -> None:
    """A model type that cannot learn the data's task (a classifier-only one on a regression target)."""
    model_type = train.get("model_type", "")
    if task == "regression" and model_type in config.CLASSIFICATION_ONLY:
        raise SignoffError(f"{params_file}: stages.train.model_type: {model_type} is a classifier and the target is a "
                           f"regression target; use {config.CLASSIFICATION_ONLY[model_type]}")


def _check_logged_model(train: dict[str, Any], params: dict[str, Any], reference: Any, params_file: Path,
                        output_root: Path) -> None:
    """A model to judge rather than fit (``stages.train.model_uri``) must resolve, load without running its
    author's code (unless ``allow_pickle``) and take columns the data has: found now, not by the train stage."""
    if not train.get("model_uri"):
        return
    from runner.analysis import servability  # scikit-learn and skops: seconds a run without model_uri never pays

    uri = mlflow_registry.tracking_uri(params["registry"], output_root)
    mlflow_store.connect(uri)
    servability.logged_model(train["model_uri"], bool(train.get("allow_pickle")),
                             datasets.features(reference, params["data"]), f"{params_file}: stages.train.model_uri",
                             redact.redact_uri(uri))


def _pickle_warning(train: dict[str, Any]) -> list[str]:
    if train.get("model_uri") and train.get("allow_pickle"):
        return [f"stages.train.allow_pickle: {train['model_uri']} was loaded from a pickle, which runs whatever code "
                "its author put in it; only its author's word says what it does"]
    return []


def conclude(started: Started, results: list[StageResult], tracking: mlflow_registry.Tracking | None,
             tracking_error: str | None, progress: Progress, report_kernel: AsyncKernelManager | None = None,
             page_ready: Callable[[Path, bool], None] | None = None, recorded: dict[str, dict[str, Any]] | None = None
             ) -> tuple[records.Verdict, dict[str, Any]]:
    """Evidence, verdict, gating report (in ``report_kernel``, if one was warmed meanwhile) and model card,
    all inside the temporary run folder; ``page_ready`` is told when the report's notebook is final;
    ``recorded``: the evidence of stages read as they finished."""
    folder, params, layout = started.folder, started.params, started.layout
    champion = tracking.champion if tracking else None
    facts = evidence.collect({r.name: folder.temp / r.notebook for r in results if r.notebook}, recorded)
    facts[evidence.CHAMPION_VERSION] = champion["version"] if champion else "none"
    (folder.temp / "templates").mkdir(exist_ok=True)
    for name in ARCHIVED_TEMPLATES:  # what the run was judged against, for rerun and audit
        if (layout.templates / name).is_file():
            shutil.copyfile(layout.templates / name, folder.temp / "templates" / name)
    previous = Path(started.previous) if started.previous else None
    declared = [*evidence.RUN_FACTS, *(name for stage in started.stages for name in stage.declared())]
    verdict = _decide(started.about, params, results, facts, previous, layout.templates / "checklist.yaml",
                      champion["evidence"] if champion else None,
                      [*started.data_warnings, *evidence.undeclared(facts, declared),
                       *_pickle_warning(started.stage_params.get("train", {}))],
                      tracking_uri=redact.redact_uri(started.uri),
                      mlflow_run_id=tracking.mlflow_run if tracking else None,
                      champion={k: v for k, v in champion.items() if k not in ("evidence", "model_dir")}
                      if champion else None)
    if tracking_error:
        verdict.verdict, verdict.registry_error = "ERROR", tracking_error
    progress.line(f"evidence gathered ({len(facts)} figures from {len(results)} stages), {len(verdict.gates)} "
                  "gates checked; the gating report next")
    records.write_json(folder.temp / "evidence.json", facts)
    renamed = mlflow_registry.renamed([*mlflow_registry.numeric(facts), *mlflow_registry.flatten_params(params)])
    if renamed:  # names MLflow would refuse, as they are logged there: the way back to the evidence
        records.write_json(folder.temp / mlflow_registry.NAMES_FILE, renamed)
    gating_report(folder.temp, layout.templates, verdict, params["execution"], progress, report_kernel)
    if page_ready:
        page_ready(folder.temp / REPORT, False)
    model_card.write(layout.templates / "model_card.md.j2", folder.temp, params, verdict, facts)
    return verdict, facts


def finish(started: Started, verdict: records.Verdict, facts: dict[str, Any], tracking: mlflow_registry.Tracking | None,
           redactor: redact.Redactor, progress: Progress, pages: Pages | None = None) -> Outcome:
    """Archive the run, then track it in MLflow and release it; the caller holds the model's lock.  Each phase
    says so as it starts: the terminal is never silent for seconds after the report.

    A stop signal here lets the archive complete; it then ends the MLflow run as killed instead of
    releasing (a signal during the release lets the release complete: it is never left half done)."""
    with stopping.deferred():
        progress.line(f"verdict {verdict.verdict}: archiving (secrets scrubbed, files hashed and sealed, pages "
                      "rendered)")
        final = archive_run(started.folder, verdict, started.origin, redactor, progress, pages)
        if stopping.requested():
            _end_tracking(tracking, "KILLED", final)
            index.write(started.layout.output_root)
            stop = stopping.Stopped(stopping.requested())
            stop.archived = final
            raise stop
        release = f"not registered: {verdict.registry_error}"
        if tracking is not None:
            progress.line("archived; logging the run to MLflow (parameters, evidence, the run folder)")
            release = _release(tracking, started.params, verdict, facts, final, started.layout.output_root,
                               started.origin, redactor,
                               starter(started.params, verdict.started_by, _key(started), started.about["params_file"]),
                               progress.line)
        index.write(started.layout.output_root)
    return Outcome(verdict, final, release)


def _redactor(progress: Progress) -> redact.Redactor:
    redactor = redact.from_environment()
    if redactor.too_short:
        progress.line(f"{', '.join(redactor.too_short)} look secret but are shorter than {redact.MIN_LENGTH} "
                      "characters: their values are not redacted", level="WARNING")
    return redactor


def archive_run(folder: archive.RunFolder, verdict: records.Verdict, origin: dict[str, Any],
                redactor: redact.Redactor, progress: Progress | None = None, pages: Pages | None = None) -> Path:
    """Provenance, secrets scrubbed, manifest sealed, notebooks rendered with its hash (those ``pages`` rendered
    ahead get it written in), moved into place."""
    records.write_json(folder.temp / "provenance.json", redactor.value(provenance.finish(origin)))
    delivered = pages.wait() if pages else set()  # from here on, nothing else writes in the run folder
    redactor.folder(folder.temp, moved_to=folder.final)
    sealed = archive.seal(folder, verdict.model, archive.previous_run(folder.final.parent))
    if progress:
        progress.line(f"sealed {len(sealed['files'])} files (manifest sha256 {sealed['sha256'][:12]}…); rendering "
                      "the notebooks to HTML")
    banner = _banner(verdict, sealed["sha256"])
    _render_all(folder.temp, banner, pages.fill(delivered, banner) if pages else set())
    return archive.finalize(folder, sealed)


@contextmanager
def archived_on_crash(started: Started, redactor: redact.Redactor, opening: Future | None = None,
                      pages: Pages | None = None) -> Iterator[None]:
    """A run that dies inside Signoff or is stopped by a signal is archived too, as ERROR, with what stopped
    it and the stages' results as far as they are known; its MLflow run (``opening``) is ended as failed
    or killed.  Pages being rendered ahead are given up: the archive renders every page itself."""
    try:
        yield
    except BaseException as exc:
        if pages is not None:
            pages.close()
        stopped = isinstance(exc, (stopping.Stopped, KeyboardInterrupt))
        what = str(exc) if isinstance(exc, stopping.Stopped) else "interrupted" if stopped else \
            f"{type(exc).__name__}: {exc}"
        results = getattr(exc, "results", None) or []
        judged = started.folder.temp / records.VERDICT  # written before the report runs: keep its gates and stages
        verdict = records.Verdict.read(judged) if judged.exists() else \
            gates.judged(started.about, [], [r.__dict__ for r in results])
        verdict.verdict, verdict.error = "ERROR", f"the run stopped: {what}"
        with stopping.deferred():
            write_verdict(started.folder.temp, verdict)
            final = archive_run(started.folder, verdict, started.origin, redactor)
            index.write(started.layout.output_root)
            if opening is not None:
                _end_tracking(_opened(opening)[0], "KILLED" if stopped else "FAILED", final)
        if isinstance(exc, Exception):
            raise SignoffError(f"{exc} (the run is archived as ERROR at {final})") from exc
        if isinstance(exc, stopping.Stopped):
            exc.archived = final
        raise


def _end_tracking(tracking: mlflow_registry.Tracking | None, status: str, folder: Path) -> None:
    """End the MLflow run of a run that will not be released; MLflow being unreachable changes nothing here."""
    if tracking is None:
        return
    try:
        mlflow_registry.end_run(tracking.client, tracking.mlflow_run, status, folder)
    except Exception:  # the run is archived; the MLflow run stays open, which `signoff list` does not need
        pass


def _stage_seconds(previous: str | None) -> dict[str, float]:
    """How long each stage that passed took in the model's previous run: the order to start them in."""
    try:
        stages = records.ArchivedRun(Path(previous)).verdict.stages if previous else []
    except (OSError, ValueError):  # an unreadable earlier run changes the order, nothing else
        return {}
    return {s["name"]: float(s["seconds"]) for s in stages if s.get("status") == "passed" and "seconds" in s}


def _recorded_champion(run_dir: Path) -> str:
    """The champion version an archived run was compared with ("" when it had none)."""
    champion = records.ArchivedRun(run_dir).verdict.champion
    return str(champion["version"]) if champion else ""


def _opened(opening: Future) -> tuple[mlflow_registry.Tracking | None, str | None]:
    try:
        return opening.result(), None
    except SignoffError as exc:
        return None, str(exc)


def starter(params: dict[str, Any], started_by: str | None, key: Path | None, params_file: Path | str) \
        -> decisions.Signer:
    """Who starts the run, under the params file's registry policy: with ``--key``, the key's principal (the
    sealed run is signed with it); without one, ``started_by``, unless signatures are required."""
    return decisions.signer(started_by, key, params["registry"], f"signoff run {params_file}")


def _key(started: Started) -> Path | None:
    return Path(started.key) if started.key else None


def _release(tracking: mlflow_registry.Tracking, params: dict[str, Any], verdict: records.Verdict,
             facts: dict[str, Any], folder: Path, output_root: Path, origin: dict[str, Any],
             redactor: redact.Redactor, signer: decisions.Signer, say: Callable[[str], None]) -> str:
    """Track the archived run in MLflow, register a releasable model, promote it if the policy says so."""
    commit = origin["git"]["commit"] + ("-dirty" if origin["git"]["dirty"] else "")
    tags = {"run_id": verdict.run_id, "verdict": verdict.verdict, "params_file": verdict.params_file,
            "run_folder": str(folder), "started_by": verdict.started_by, "git_commit": commit,
            **({"rerun_of": verdict.rerun_of} if verdict.rerun_of else {})}
    try:
        mlflow_registry.log_run(tracking.client, tracking.mlflow_run, redactor.value(params), facts, tags, folder)
        say("logged to MLflow; recording the release decision in the registry")
        reg = decisions.RegisteredModel(lambda: tracking.client, params["model"], output_root)
        said = decisions.release(reg, folder, verdict, facts, params["registry"]["promotion"], signer)
        mlflow_registry.finish_run(tracking.client, tracking.mlflow_run, verdict.verdict, folder)
    except SignoffError as exc:
        raise SignoffError(f"the run is archived at {folder}, but {exc}", exc.exit_code) from None
    except Exception as exc:
        raise SignoffError(f"the run is archived at {folder}, but MLflow failed: {type(exc).__name__}: {exc}") from exc
    return said


def _decide(
    about: dict[str, Any], params: dict[str, Any], results: list[StageResult], facts: dict[str, Any],
    previous: Path | None, items: Path, champion_evidence: dict[str, Any] | None, warnings: list[str], **recorded: Any,
) -> records.Verdict:
    """Answer the checklist, check the gates, reach the verdict.  Adds checklist.open_items to ``facts``."""
    stages_passed = all(r.status == "passed" for r in results)
    answers = checklist.answer(checklist.load(items), facts, stages_passed, params["checklist"])
    facts[checklist.OPEN_ITEMS] = checklist.open_count(answers)
    declared = [*params["gates"], gates.LOADABLE,
                *([checklist.required_gate()] if params["checklist_required"] else [])]
    checked = gates.evaluate(declared, facts, champion_evidence, params["gates_confidence"])
    return gates.judged(about, checked, [r.__dict__ for r in results], **recorded,
                        gate_policy_changes=[*gates.policy_changes(_previous_gates(previous), declared),
                                             *_signing_policy_changes(previous, params["registry"])],
                        warnings=[*warnings, *gates.warnings(declared), *_open_items_warning(answers)],
                        checklist=answers)


def _open_items_warning(answers: list[dict[str, Any]]) -> list[str]:
    open_ids = [a["id"] for a in answers if a["status"] == "open"]
    return [f"{len(open_ids)} checklist items open: {', '.join(open_ids)}"] if open_ids else []


def gating_report(folder: Path, templates: Path, verdict: records.Verdict, execution: dict[str, Any],
                  progress: Progress, km: AsyncKernelManager | None = None) -> None:
    """Write the verdict, then execute the gating report on it: a report that fails makes the run ERROR (the
    decision was made before the report, which only presents it)."""
    write_verdict(folder, verdict)
    report = execute("report", templates / REPORT, folder / REPORT, {"run_dir": str(folder)},
                     folder, execution, progress, km)
    if report.status != "passed":
        verdict.verdict, verdict.stages = "ERROR", [*verdict.stages, report.__dict__]
        write_verdict(folder, verdict)


def write_verdict(folder: Path, verdict: records.Verdict) -> None:
    verdict.finished = dt.datetime.now(dt.UTC).isoformat()
    verdict.write(folder / records.VERDICT)


SIGNING_POLICY = ("approvers", "require_signatures", "allowed_signers")


def _signing_policy_changes(previous: Path | None, registry: dict[str, Any]) -> list[dict[str, Any]]:
    """Who may approve, whether signatures are required, whose keys count: changed since the previous run, shown
    beside the gate changes (a run before these keys existed had the defaults)."""
    if previous is None:
        return []
    before = records.ArchivedRun(previous).params.get("registry") or {}
    return [{"id": f"registry.{key}", "change": "changed", "before": {key: was}, "after": {key: registry[key]}}
            for key in SIGNING_POLICY
            if (was := before.get(key, config.DEFAULTS["registry"][key])) != registry[key]]


def _previous_gates(previous: Path | None) -> list[dict[str, Any]] | None:
    if previous is None:
        return None
    return [{"id": g["id"], **g["policy"]} for g in records.ArchivedRun(previous).verdict.gates]


def _banner(verdict: records.Verdict, manifest_sha256: str) -> dict[str, str]:
    """What heads every page of a run."""
    return {"model": verdict.model, verdict.extra.get("kind", "run"): verdict.run_id, "verdict": verdict.verdict,
            "manifest sha256": manifest_sha256}


def _render_all(folder: Path, banner: dict[str, str], rendered: set[Path]) -> None:
    """Every notebook's page, but those already ``rendered``."""
    for notebook in [*sorted((folder / "notebooks").glob("*.ipynb")), folder / REPORT]:
        target = folder / "html" / f"{notebook.stem}.html"
        if notebook.exists() and target not in rendered:
            render.render(notebook, target, banner, code=notebook.name != REPORT)


@contextmanager
def rendering_ahead(folder: archive.RunFolder, redactor: redact.Redactor) \
        -> Iterator[tuple[Pages, Callable[[Path, bool], None]]]:
    """A renderer for the run's pages (:mod:`runner.audit.pages`), and what to call when a notebook is final
    (with whether its page shows code): the notebook is scrubbed and made to name the final run folder, as
    the archive would, and its page rendered meanwhile."""
    pages = Pages(list(_banner(records.Verdict(), "")))  # a run's banner: its keys, their values unknown yet

    def page_ready(notebook: Path, code: bool) -> None:
        redactor.file(notebook, folder.temp, folder.final)
        pages.add(notebook, folder.temp / "html" / f"{notebook.stem}.html", code)

    try:
        yield pages, page_ready
    finally:
        pages.close()
