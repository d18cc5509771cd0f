"""Execute one notebook through Papermill and say, from Papermill's own exception, whether it failed.

After a timeout or a dead kernel Papermill leaves every cell marked completed,
so a stage's status is decided here from the exception and written into the
executed notebook's metadata (and a banner cell) for whoever reads it later.

Kernels can be started ahead of time with the notebook's own imports already
done (:func:`start_kernel`), so that kernel start-up and heavy imports
(scikit-learn, shap, Evidently) happen while earlier stages run.
"""

from __future__ import annotations

import ast
import html
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.exceptions import PapermillExecutionError

from runner import startup
from runner.run import cores, forkserver, stopping


class StageFailed(Exception):
    """A notebook raised, timed out or lost its kernel; the message says which cell and why."""


WARM_UP_TIMEOUT = 300  # seconds the notebook's imports may take in a kernel started ahead
SAVE_EVERY = 5  # seconds between writes of a running notebook (JupyterLab shows its progress)


class _ThrottledSaves(NotebookExecutionManager):
    """Papermill's execution state, written when the notebook starts, at most every :data:`SAVE_EVERY`
    seconds while it runs, and when it ends (however it ends), instead of before and after every cell: a
    run's notebooks were written some 250 times, two CPU-seconds of JSON in the ``signoff`` process."""

    last_write: float | None = None
    ending = False

    def save(self, **kwargs: Any) -> None:
        if self.ending or self.last_write is None or time.monotonic() - self.last_write >= SAVE_EVERY:
            super().save(**kwargs)
            self.last_write = time.monotonic()

    def notebook_complete(self, **kwargs: Any) -> None:
        self.ending = True
        super().notebook_complete(**kwargs)


class _Engine(NBClientEngine):
    """Papermill's nbclient engine with :class:`_ThrottledSaves`; registered as ``signoff``."""

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None, progress_bar: bool = True,
                         log_output: bool = False, autosave_cell_every: int = 30, **kwargs: Any) -> Any:
        nb_man = _ThrottledSaves(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                                 autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


ENGINE = "signoff"
papermill_engines.register(ENGINE, _Engine)


class ForkedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager with its launch step ("override in a subclass to launch kernel
    subprocesses differently") asking a fork server (:mod:`runner.run.forkserver`) instead of starting ``python``."""

    def __init__(self, server: forkserver.Server, modules: list[str], extras: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.server, self.modules, self.extras = server, modules, extras

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        provisioner = self.provisioner
        assert provisioner is not None
        if kernel_cmd[1:3] != ["-m", "ipykernel_launcher"] or \
                os.path.realpath(kernel_cmd[0]) != os.path.realpath(sys.executable):
            return await super()._async_launch_kernel(kernel_cmd, **kw)  # another interpreter's kernel
        try:
            process = self.server.fork(kernel_cmd[3:], dict(kw["env"]), str(kw.get("cwd") or os.getcwd()),
                                       self.modules, self.extras)
        except RuntimeError:  # the server is gone: this kernel starts the usual way
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        provisioner.process, provisioner.pid, provisioner.pgid = process, process.pid, process.pid
        provisioner.cwd = kw.get("cwd")
        self._reconcile_connection_info(provisioner.connection_info)


def start_kernel(
    source: Path, cwd: Path, threads: int | None = None, env: dict[str, str] | None = None,
    server: forkserver.Server | None = None, first: bool = False,
) -> AsyncKernelManager:
    """A kernel for ``source``, running in ``cwd``, with every module the notebook imports loaded.

    The imports run silently (no execution count, no history, no names bound), so the
    executed notebook is the same as with a cold kernel, only faster.  ``threads`` caps
    the kernel's OpenMP/BLAS threads (unless the user set them), so that kernels running
    side by side do not oversubscribe the cores.  ``env`` is added to the kernel's environment.
    With ``server``, the kernel is forked from it, most imports already done (a ``first`` kernel, one that
    nothing else has to finish before, is forked as soon as its notebook's own imports are loaded).
    """
    env = {**os.environ, **(env or {}), **cores.thread_caps(threads)}
    nb = nbformat.read(source, as_version=4)
    # nbclient's cell timeouts only fire with an asynchronous kernel client. ipykernel 7 warns
    # on every start when the transport is unencrypted TCP; CurveZMQ keys provisioned by the
    # kernel manager encrypt it and silence the warning.
    options = {"kernel_name": nb.metadata.get("kernelspec", {}).get("name", "python3"), "transport_encryption": "auto"}
    modules = imported_modules(nb)
    km = ForkedKernelManager(server, modules, not first, **options) if server else \
        AsyncKernelManager(**options)
    # parallel kernels must not share IPython's SQLite history file
    run_sync(km.start_kernel)(cwd=str(cwd), env=env, extra_arguments=["--HistoryManager.hist_file=:memory:"])
    stopping.register(km)
    client = km.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=WARM_UP_TIMEOUT)
        _run_silently(km, client, _import_code(modules))
    except BaseException:
        shutdown(km)
        raise
    finally:
        client.stop_channels()
    return km


@contextmanager
def handed_over(km: AsyncKernelManager | None) -> Iterator[AsyncKernelManager | None]:
    """A warm kernel passed on to the notebook that will run in it (:func:`run_notebook` shuts it down);
    shut down on leaving if that notebook never ran."""
    try:
        yield km
    finally:
        if km is not None:
            shutdown(km)


def shutdown(km: AsyncKernelManager) -> None:
    """Shut a kernel down (if it still runs) and forget it."""
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    finally:
        stopping.unregister(km)


def _run_silently(km: AsyncKernelManager, client: Any, code: str) -> None:
    """Run ``code`` without a trace in the notebook (no execution count, no history; import-time chatter
    belongs to nobody's notebook), checking every second that the kernel is still alive: a kernel
    killed meanwhile (a stopped run) must not leave this thread waiting for a reply that never comes."""
    msg_id = client.execute(code, silent=True, store_history=False)
    deadline = time.monotonic() + WARM_UP_TIMEOUT
    while True:
        try:
            reply = run_sync(client.get_shell_msg)(timeout=1)
        except queue.Empty:
            if not run_sync(km.is_alive)():
                raise RuntimeError("the kernel died while loading the notebook's imports") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the notebook's imports took longer than {WARM_UP_TIMEOUT} s") from None
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return


def imported_modules(nb: nbformat.NotebookNode) -> list[str]:
    """Every module a notebook's code cells import (``from a import b`` also tries ``a.b``)."""
    modules: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics; nothing to learn from this cell
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return list(dict.fromkeys(modules))


def _import_code(modules: list[str]) -> str:
    """Import each module, ignoring failures: the notebook will report its own errors itself.
    First, the kernel is told to go without :data:`runner.startup.SKIPPED_IMPORTS`, as Signoff's own processes do;
    last, matplotlib, if loaded, is wired to the kernel's display (a fork server imported it before any kernel)."""
    return (
        "import sys as _signoff_sys\n"
        f"for _signoff_module in {startup.SKIPPED_IMPORTS!r}:\n"
        "    _signoff_sys.modules.setdefault(_signoff_module, None)\n"
        "import importlib as _signoff_importlib\n"
        f"for _signoff_module in {modules!r}:\n"
        "    try:\n"
        "        _signoff_importlib.import_module(_signoff_module)\n"
        "    except Exception:\n"
        "        pass\n"
        "if 'matplotlib.pyplot' in _signoff_sys.modules:  # imported before this shell existed (a forked kernel)\n"
        "    get_ipython().run_line_magic('matplotlib', 'inline')  # figures show as in any kernel\n"
        "del _signoff_sys, _signoff_importlib, _signoff_module\n"
    )


def run_notebook(
    source: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    cell_timeout: float,
    stage_timeout: float,
    cwd: Path,
    km: AsyncKernelManager | None = None,
    on_cell: Callable[[], None] | None = None,
) -> float | None:
    """Run ``source`` into ``output`` with ``parameters``; raise StageFailed if it did not complete.

    ``km``: a kernel from :func:`start_kernel` (shut down here afterwards); without one,
    a kernel is started for this notebook.  Returns the kernel's peak memory in MB (None
    where the OS does not tell).
    """
    deadline = time.monotonic() + stage_timeout

    def timeout_for(cell: Any) -> int:
        # nbclient asks before every cell: the cell limit, shortened to what is left of the stage's.
        return max(1, int(min(cell_timeout, deadline - time.monotonic())))

    try:
        km = km or start_kernel(source, cwd)
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            progress_bar=False,
            engine_name=ENGINE,
            km=km,
            timeout_func=timeout_for,
            on_cell_executed=(lambda **_: on_cell()) if on_cell else None,
        )
        return peak_memory_mb(km)
    except PapermillExecutionError as exc:
        raise StageFailed(f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}") from None
    except CellTimeoutError:
        if time.monotonic() >= deadline - 1:
            raise StageFailed(f"stage timed out after {stage_timeout:g} s (execution.stage_timeout)") from None
        raise StageFailed(f"a cell ran longer than {cell_timeout:g} s (execution.cell_timeout)") from None
    except DeadKernelError:
        raise StageFailed("the kernel died (out of memory, or the process was killed)") from None
    finally:
        if km is not None:
            shutdown(km)


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



def peak_memory_mb(km: AsyncKernelManager) -> float | None:
    """The kernel process's peak resident memory (Linux ``VmHWM``), read before it is shut down."""
    try:
        status = Path(f"/proc/{km.provisioner.process.pid}/status").read_text(encoding="utf-8")
    except (AttributeError, OSError):
        return None
    kilobytes = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
    return round(kilobytes[0] / 1024, 1) if kilobytes else None
