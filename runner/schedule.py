"""Run the stage DAG: each stage once its dependencies succeeded, independent stages in parallel.

A stage whose dependency failed or was skipped is skipped: its inputs do not
exist, and running it would only produce a second, misleading error.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from runner.execute import StageFailed, mark, run_notebook
from runner.progress import Progress
from runner.stages import Stage


@dataclass
class StageResult:
    name: str
    status: str  # "passed", "failed" or "skipped"
    seconds: float
    error: str | None
    notebook: str | None  # path relative to the run folder


def run_stages(
    stages: list[Stage],
    parameters: dict[str, dict[str, Any]],
    run_dir: Path,
    previous_run: Path | None,
    execution: dict[str, Any],
    jobs: int,
    progress: Progress,
) -> list[StageResult]:
    """Execute every stage into ``run_dir/notebooks/<stage>.ipynb``; results in pipeline order.

    Notebooks that declare ``run_dir`` or ``previous_run`` receive this run's folder and
    the model's previous run folder ("" for the first run).
    """
    folders = {"run_dir": str(run_dir), "previous_run": str(previous_run or "")}
    (run_dir / "notebooks").mkdir(exist_ok=True)
    results: dict[str, StageResult] = {}
    pending = list(stages)
    running: dict[Future, Stage] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="stage") as pool:
        while pending or running:
            for stage in list(pending):
                states = [results[n].status if n in results else None for n in stage.needs]
                if any(s in ("failed", "skipped") for s in states):
                    pending.remove(stage)
                    blocked = [n for n, s in zip(stage.needs, states) if s != "passed"]
                    results[stage.name] = StageResult(stage.name, "skipped", 0.0, f"needs {', '.join(blocked)}", None)
                    progress.line(f"{stage.name:<12} skipped (needs {', '.join(blocked)}, which did not pass)")
                elif all(s == "passed" for s in states) and len(running) < max(1, jobs):
                    pending.remove(stage)
                    params = {k: folders.get(k, v) for k, v in parameters[stage.name].items()}
                    running[pool.submit(_run_one, stage, params, run_dir, execution, progress)] = stage
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                stage = running.pop(future)
                results[stage.name] = future.result()
    return [results[stage.name] for stage in stages]


def _run_one(
    stage: Stage, params: dict[str, Any], run_dir: Path, execution: dict[str, Any], progress: Progress
) -> StageResult:
    output = run_dir / "notebooks" / f"{stage.name}.ipynb"
    cells = sum(c.cell_type == "code" for c in nbformat.read(stage.path, as_version=4).cells)
    progress.started(stage.name, cells + 1)  # +1: the injected parameters cell
    start = time.monotonic()
    status, error = "passed", None
    try:
        run_notebook(
            stage.path,
            output,
            params,
            cell_timeout=execution["cell_timeout"],
            stage_timeout=execution["stage_timeout"],
            cwd=run_dir,
            on_cell=lambda: progress.cell_done(stage.name),
        )
    except StageFailed as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a kernel that cannot start, an unreadable notebook: still this stage's failure
        status, error = "failed", f"could not execute: {type(exc).__name__}: {exc}"
    seconds = time.monotonic() - start
    mark(output, stage.name, status, error)
    progress.finished(stage.name, status, seconds, error)
    relative = str(output.relative_to(run_dir)) if output.exists() else None
    return StageResult(stage.name, status, round(seconds, 3), error, relative)
