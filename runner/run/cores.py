"""How a run shares the machine's cores between the kernels that run side by side.

``jobs`` stages run at once; each kernel's OpenMP/BLAS libraries get ``cores // jobs`` threads, so that
two kernels computing at the same moment do not each start a thread per core and oversubscribe the
machine.  The limits are environment variables read when those libraries load: a fork server, which loads
them before any kernel exists, needs them from its start.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads_per_kernel(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def thread_caps(threads: int | None) -> dict[str, str]:
    """OpenMP/BLAS thread limits of ``threads`` each, except where the user set their own."""
    return {name: str(threads) for name in THREAD_VARIABLES if name not in os.environ} if threads else {}
