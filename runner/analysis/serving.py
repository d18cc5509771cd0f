"""Technical constraints of serving the model: latency, throughput, size."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from runner.analysis import tasks


def latency_ms(model, rows: pd.DataFrame, task: str = "binary", calls: int = 200) -> dict[str, float]:
    """Single-row scoring latency, as a request-per-row service would see it.

    Measured on one thread: a service scores a row on one, and OpenMP threads that
    compete with other work for the cores turn p99 into a measure of the machine's load.
    """
    timings = []
    with threadpool_limits(1):
        for i in range(calls):
            row = rows.iloc[[i % len(rows)]]
            start = time.perf_counter()
            tasks.predictions(model, row, task)
            timings.append((time.perf_counter() - start) * 1000)
    return {"latency_p50_ms": float(np.percentile(timings, 50)), "latency_p99_ms": float(np.percentile(timings, 99))}


def throughput(model, rows: pd.DataFrame, task: str = "binary", repeats: int = 3) -> float:
    """Rows scored per second in one batch call (best of a few, to skip warm-up)."""
    best = min(_timed(model, rows, task) for _ in range(repeats))
    return float(len(rows) / best)


def _timed(model, rows: pd.DataFrame, task: str) -> float:
    start = time.perf_counter()
    tasks.predictions(model, rows, task)
    return max(time.perf_counter() - start, 1e-9)
