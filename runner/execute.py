"""Execute one notebook through Papermill and say, from Papermill's own exception, whether it failed.

After a timeout or a dead kernel Papermill leaves every cell marked completed,
so a stage's status is decided here from the exception and written into the
executed notebook's metadata (and a banner cell) for whoever reads it later.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError


class StageFailed(Exception):
    """A notebook raised, timed out or lost its kernel; the message says which cell and why."""


def run_notebook(
    source: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    cell_timeout: float,
    stage_timeout: float,
    cwd: Path,
    on_cell: Callable[[], None] | None = None,
) -> None:
    """Run ``source`` into ``output`` with ``parameters``; raise StageFailed if it did not complete."""
    deadline = time.monotonic() + stage_timeout

    def timeout_for(cell: Any) -> int:
        # nbclient asks before every cell: the cell limit, shortened to what is left of the stage's.
        return max(1, int(min(cell_timeout, deadline - time.monotonic())))

    kernel_name = nbformat.read(source, as_version=4).metadata.get("kernelspec", {}).get("name", "python3")
    # nbclient's cell timeouts only fire with an asynchronous kernel client. ipykernel 7 warns
    # on every start when the transport is unencrypted TCP; CurveZMQ keys provisioned by the
    # kernel manager encrypt it and silence the warning.
    km = AsyncKernelManager(kernel_name=kernel_name, transport_encryption="auto")
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            progress_bar=False,
            km=km,
            # the kernel's working directory, set without papermill's process-wide chdir,
            # which parallel stages in threads would race on
            resources={"metadata": {"path": str(cwd)}},
            timeout_func=timeout_for,
            on_cell_executed=(lambda **_: on_cell()) if on_cell else None,
        )
    except PapermillExecutionError as exc:
        raise StageFailed(f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}") from None
    except CellTimeoutError:
        if time.monotonic() >= deadline - 1:
            raise StageFailed(f"stage timed out after {stage_timeout:g} s (execution.stage_timeout)") from None
        raise StageFailed(f"a cell ran longer than {cell_timeout:g} s (execution.cell_timeout)") from None
    except DeadKernelError:
        raise StageFailed("the kernel died (out of memory, or the process was killed)") from None
    finally:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)


def mark(notebook: Path, stage: str, status: str, error: str | None) -> None:
    """Record Signoff's verdict on a stage inside the executed notebook itself."""
    if not notebook.exists():
        return
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["signoff"] = {**nb.metadata.get("signoff", {}), "stage": stage, "status": status, "error": error}
    if status == "failed":
        banner = nbformat.v4.new_markdown_cell(
            f'<div style="background:#fde2e1;border:2px solid #c0392b;padding:8px">'
            f"<b>Signoff: stage <code>{stage}</code> FAILED.</b> {html.escape(error or '')}<br>"
            "Cells after the failure did not run, whatever their metadata says.</div>"
        )
        banner.metadata["tags"] = ["signoff-status"]
        nb.cells.insert(0, banner)
    nbformat.write(nb, notebook)

