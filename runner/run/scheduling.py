"""Run the stage DAG: each stage once its dependencies succeeded, independent stages in parallel.

Kernels are started at once, ``jobs`` at a time, each with its notebook's imports loaded (the gating
report's last); every stage waits for its kernel, its dependencies and one of the ``jobs`` execution
slots. Kernel start-up and imports thus leave the critical path. Kernels start, and free slots go,
longest stage first where the model's previous run says how long each took (a long stage started last is
a tail with one core idle); otherwise in pipeline order. A stage whose dependency failed or was skipped
is skipped: its inputs do not exist, and running it would only produce a second, misleading error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager

from runner.run import cores, forkserver, stopping
from runner.run.kernels import StageFailed, imported_modules, mark, run_notebook, shutdown, start_kernel
from runner.run.progress import Progress
from runner.run.stages import Stage

KERNEL_START_ATTEMPTS = 3


@dataclass
class StageResult:
    name: str
    status: str  # "passed", "failed" or "skipped"
    seconds: float
    error: str | None
    notebook: str | None  # path relative to the run folder
    peak_memory_mb: float | None = None  # the kernel's, where the OS tells


@dataclass
class _Plan:
    """What every stage thread shares."""

    run_dir: Path
    supplied: dict[str, Any]  # parameters the run fills in; a callable is called when a stage needs it
    execution: dict[str, Any]
    progress: Progress
    slots: _Slots  # stages executing at once
    kernels: dict[str, Future]  # each stage's warm kernel (raises if it could not start)
    finished: dict[str, threading.Event]
    results: dict[str, StageResult]
    on_finished: Callable[[StageResult], None] | None  # told of each executed stage


def run_stages(
    stages: list[Stage],
    parameters: dict[str, dict[str, Any]],
    run_dir: Path,
    supplied: dict[str, Any],
    execution: dict[str, Any],
    jobs: int,
    progress: Progress,
    env: dict[str, str] | None = None,
    then: Path | None = None,
    finished: Callable[[StageResult], None] | None = None,
    expected: dict[str, float] | None = None,
    server: forkserver.Server | None = None,
) -> tuple[list[StageResult], AsyncKernelManager | None]:
    """Execute every stage into ``run_dir/notebooks/<stage>.ipynb``; results in pipeline order.

    A notebook that declares a parameter named in ``supplied`` (``run_dir``, ``previous_run``,
    ...) receives the run's value; a value given as a callable (one still being computed
    elsewhere) is called by the stages that declare it, and only by them, when they are about to
    run.  ``env`` is added to every kernel's environment.  ``then``: the notebook that runs after
    the stages (the gating report); its kernel is warmed last, in pipeline order, and handed back
    (None if it could not start) for the caller to run it in or shut down.  ``finished`` is called with each
    executed stage's result (from the stage's thread) as soon as its notebook is final.  ``expected``: each
    stage's seconds in the model's previous run, if known.  ``server``: the fork server the caller started
    (:func:`forkserver.started`, told what to :func:`preload`) and closes; without one, one is started here.
    """
    (run_dir / "notebooks").mkdir(exist_ok=True)
    following: Future | None = None
    order = priority(stages, expected or {})
    threads = cores.threads_per_kernel(jobs)
    own = ExitStack()  # a server started here is closed here; it ends with the last of its kernels (the report's)
    if server is None:
        server = own.enter_context(forkserver.started(jobs, env or {}))
        preload(server, [stage.path for stage in stages] + ([then] if then else []))
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="kernel") as warmers, \
                ThreadPoolExecutor(max_workers=len(stages), thread_name_prefix="stage") as pool:
            plan = _Plan(
                run_dir=run_dir,
                supplied=supplied,
                execution=execution,
                progress=progress,
                slots=_Slots(max(1, jobs), order),
                kernels={stage.name: warmers.submit(_warm_kernel, stage, run_dir, threads, env or {},
                                                    server, progress)
                         for stage in sorted(stages, key=lambda s: order[s.name])},
                finished={stage.name: threading.Event() for stage in stages},
                results={},
                on_finished=finished,
            )
            if then is not None:
                following = warmers.submit(start_kernel, then, run_dir, None, env, server)
            futures = [pool.submit(_stage, stage, parameters[stage.name], plan) for stage in stages]
            try:
                for future in futures:
                    stopping.waited(future)
            except stopping.Stopped as stop:
                for future in futures:  # quick: their kernels are dead, and nothing new starts
                    future.result()
                stop.results = [plan.results[stage.name] for stage in stages]
                raise
    except BaseException:
        if following is not None and (km := _started(following)) is not None:
            shutdown(km)
        raise
    finally:
        own.close()
    return [plan.results[stage.name] for stage in stages], _started(following) if following else None


def priority(stages: list[Stage], expected: dict[str, float]) -> dict[str, int]:
    """Each stage's rank (0 first): a stage after those it depends on, by depth, then the longest
    ``expected`` first, then pipeline order."""
    depth: dict[str, int] = {}
    for stage in stages:
        depth[stage.name] = 1 + max((depth[need] for need in stage.needs), default=-1)
    ranked = sorted(range(len(stages)), key=lambda i: (depth[stages[i].name], -expected.get(stages[i].name, 0.0), i))
    return {stages[i].name: rank for rank, i in enumerate(ranked)}


class _Slots:
    """``jobs`` execution slots; of the stages waiting for one (dependencies done, kernel warm), the one ranked
    first in ``order`` gets the next."""

    def __init__(self, jobs: int, order: dict[str, int]):
        self.free, self.order, self.waiting = jobs, order, set()
        self.changed = threading.Condition()

    @contextmanager
    def held(self, stage: str) -> Iterator[None]:
        rank = self.order[stage]
        with self.changed:
            self.waiting.add(rank)
            self.changed.wait_for(lambda: self.free > 0 and rank == min(self.waiting))
            self.waiting.discard(rank)
            self.free -= 1
        try:
            yield
        finally:
            with self.changed:
                self.free += 1
                self.changed.notify_all()


def _stage(stage: Stage, parameters: dict[str, Any], plan: _Plan) -> None:
    km: AsyncKernelManager | None = None
    try:
        for need in stage.needs:
            plan.finished[need].wait()
        blocked = [n for n in stage.needs if plan.results[n].status != "passed"]
        if blocked:
            km = _started(plan.kernels[stage.name])  # warmed for nothing: shut down below
            plan.results[stage.name] = StageResult(stage.name, "skipped", 0.0, f"needs {', '.join(blocked)}", None)
            plan.progress.line(f"skipped (needs {', '.join(blocked)}, which did not pass)", stage.name, "WARNING")
            return
        try:
            km = plan.kernels[stage.name].result()
            values = {k: _resolved(plan.supplied.get(k, v)) for k, v in parameters.items()}
        except Exception as exc:
            plan.results[stage.name] = StageResult(stage.name, "failed", 0.0, f"could not start: {exc}", None)
            plan.progress.finished(stage.name, "failed", 0.0, f"could not start: {exc}")
            return
        with plan.slots.held(stage.name):
            if stopping.requested():
                plan.results[stage.name] = StageResult(stage.name, "skipped", 0.0,
                                                       f"not started: {stopping.requested()} stopped the run", None)
                return
            output = plan.run_dir / "notebooks" / f"{stage.name}.ipynb"
            plan.results[stage.name] = execute(
                stage.name, stage.path, output, values, plan.run_dir, plan.execution, plan.progress, km
            )
            km = None  # run_notebook shut it down
        if plan.on_finished and plan.results[stage.name].notebook:
            plan.on_finished(plan.results[stage.name])
    finally:
        if km is not None:
            shutdown(km)
        plan.finished[stage.name].set()


def _started(kernel: Future) -> AsyncKernelManager | None:
    try:
        return kernel.result()
    except Exception:
        return None


def _resolved(value: Any) -> Any:
    return value() if callable(value) else value


def preload(server: forkserver.Server | None, notebooks: list[Path]) -> None:
    """Tell the run's fork server (if any) what the notebooks import, in their order."""
    if server is not None:
        server.preload(list(dict.fromkeys(m for path in notebooks
                                          for m in imported_modules(nbformat.read(path, as_version=4)))))


def _warm_kernel(stage: Stage, run_dir: Path, threads: int, env: dict[str, str], server: forkserver.Server | None,
                 progress: Progress) -> AsyncKernelManager:
    """A warm kernel with its share of the cores.  Start-up is retried (a port taken meanwhile,
    a slow file system); the notebook itself is never run twice."""
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        if stopping.requested():
            raise RuntimeError(f"not started: {stopping.requested()} stopped the run")
        try:
            return start_kernel(stage.path, run_dir, threads=threads, env=env, server=server, first=not stage.needs)
        except Exception as exc:
            if attempt == KERNEL_START_ATTEMPTS:
                raise RuntimeError(f"the kernel did not start after {attempt} attempts: {exc}") from exc
            progress.line(f"kernel start failed ({exc}); retrying", stage.name, "WARNING")
            time.sleep(attempt)
    raise AssertionError("unreachable")


def execute(
    name: str,
    source: Path,
    output: Path,
    parameters: dict[str, Any],
    run_dir: Path,
    execution: dict[str, Any],
    progress: Progress,
    km: AsyncKernelManager | None = None,
) -> StageResult:
    """Run one notebook of the run (a stage, or the report) and record how it went, whatever happened."""
    cells = sum(c.cell_type == "code" for c in nbformat.read(source, as_version=4).cells)
    progress.started(name, cells + 1)  # +1: the injected parameters cell
    start = time.monotonic()
    status, error, peak = "passed", None, None
    try:
        peak = run_notebook(
            source,
            output,
            parameters,
            cell_timeout=execution["cell_timeout"],
            stage_timeout=execution["stage_timeout"],
            cwd=run_dir,
            km=km,
            on_cell=lambda: progress.cell_done(name),
        )
    except StageFailed as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a kernel that cannot start, an unreadable notebook: still this notebook's failure
        status, error = "failed", f"could not execute: {type(exc).__name__}: {exc}"
    if status == "failed" and stopping.requested():  # its kernel was shut down because the run was stopped
        error = f"interrupted: {stopping.requested()} stopped the run"
    seconds = time.monotonic() - start
    mark(output, name, status, error)
    progress.finished(name, status, seconds, error)
    relative = str(output.relative_to(run_dir)) if output.exists() else None
    return StageResult(name, status, round(seconds, 3), error, relative, peak)
