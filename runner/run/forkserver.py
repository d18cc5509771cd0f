"""Stage kernels forked from one process that has already imported what the stages import.

Every stage runs in a kernel of its own, a fresh process: nothing one notebook defines reaches the
next.  Started the usual way, each of a run's eight kernels pays the same imports again (pandas,
scikit-learn and SciPy, SHAP, matplotlib, scrapbook, IPython: 3-5 CPU-seconds each).  The fork server
imports them once; each kernel is then a child forked from it that becomes an ipykernel (what
``python -m ipykernel_launcher`` would run), sharing those imports copy-on-write.  Still one fresh
process per stage: only modules are inherited, no notebook's state.

What is imported ahead is limited to the packages Signoff itself runs on (:data:`PRELOADED`), plus what
Signoff's own modules list in ``PRELOAD`` (MLflow, Evidently: imported inside their functions): a user's
module may start threads or open connections when imported, which a fork does not carry over; a
notebook's other imports load in its own kernel after the fork, as before.

The server lives while its kernels do: told to close, it ends when its last kernel has ended; if the
``signoff`` process that started it dies, it kills its kernels and ends (kernels also end by themselves
when their parent, the server, is gone).  ``ps`` shows a forked kernel with the server's command line
(``python -m runner.run.forkserver``), in the run folder.  Linux only (process file descriptors); elsewhere, and with
``SIGNOFF_FORK_KERNELS=0``, kernels start the usual way.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from runner import startup

# Top-level packages whose modules the server imports ahead: Signoff's own and those its stages use.
PRELOADED = ("runner", "numpy", "pandas", "scipy", "sklearn", "matplotlib", "shap", "scrapbook", "IPython",
             "pyarrow", "ipykernel", "jupyter_client", "zmq", "tornado")
KERNEL_MAIN = ("ipykernel.kernelapp", "ipykernel.ipkernel", "matplotlib_inline.backend_inline")
SWITCH = "SIGNOFF_FORK_KERNELS"  # "0": every kernel started the usual way


def available() -> bool:
    return hasattr(os, "pidfd_open") and hasattr(os, "fork") and os.environ.get(SWITCH, "1") != "0"


def preloadable(modules: list[str]) -> list[str]:
    """The modules of ``modules`` the server may import: standard library and :data:`PRELOADED` packages."""
    return [m for m in modules if m.split(".")[0] in PRELOADED or m.split(".")[0] in sys.stdlib_module_names]


class Server:
    """The ``signoff`` side of a fork server: asks it for kernels (thread-safe), closes it.

    ``modules`` (in stage order) are imported while the server waits for requests; a request names what its
    notebook imports, which the server imports (if it has not yet) before forking that kernel: the first
    stage's kernel waits for its own imports only, not for every stage's.  A kernel that will wait for other
    stages anyway (``extras``) also waits for what its modules import inside their functions (``PRELOAD``)."""

    def __init__(self, modules: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner.run.forkserver", json.dumps(preloadable(modules))],
            env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lock = threading.Lock()

    def fork(self, argv: list[str], env: dict[str, str], cwd: str, modules: list[str],
             extras: bool) -> ForkedProcess:
        """A kernel child running ``ipykernel_launcher`` with ``argv``, ``modules`` imported; raises if the server
        is gone."""
        request = {"argv": argv, "env": env, "cwd": cwd, "modules": preloadable(modules), "extras": extras}
        with self._lock:
            assert self.process.stdin is not None and self.process.stdout is not None
            try:
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
            except OSError as exc:
                raise RuntimeError(f"the kernel fork server is gone ({exc})") from None
            line = self.process.stdout.readline()
        if not line.startswith("pid "):
            raise RuntimeError(f"the kernel fork server ended (exit code {self.process.poll()})")
        return ForkedProcess(int(line[4:]))

    def close(self) -> None:
        """No more kernels: the server ends once the ones it forked have."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass


class ForkedProcess:
    """A forked kernel, as jupyter_client's provisioner handles a ``Popen``: alive or not, signals.
    Its exit status belongs to the server that forked it; here an ended kernel reports 0."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # ended (and reaped) already
            self.returncode = 0

    def poll(self) -> int | None:
        return self.wait(0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if self._pidfd is not None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                return None
            os.close(self._pidfd)
            self._pidfd, self.returncode = None, 0
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager with its launch step ("override in a subclass to launch kernel
    subprocesses differently") asking a :class:`Server` instead of starting ``python``."""

    def __init__(self, server: Server, modules: list[str], extras: bool, **kwargs: Any):
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


# ---- the server process -----------------------------------------------------------------------------------

def serve(modules: list[str]) -> None:
    """Fork a kernel for each request on stdin (one JSON line), answering its pid; import ``modules`` meanwhile."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # what kernels print to the real stdout goes to stderr, not into the replies
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the `signoff` process's to handle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ended kernels are reaped by the OS
    startup.skip_unused_imports()
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as ipykernel sets it
    later, requests, parent, children = [*KERNEL_MAIN, *modules], _Requests(), os.getppid(), []
    while (request := requests.next(wait=not later)) is not None or (later and not requests.closed):
        if request is None:
            later.extend(_load(later.pop(0)))
            continue
        extras = [extra for name in [*KERNEL_MAIN, *request["modules"]] for extra in _load(name)]
        for name in extras:
            _load(name) if request["extras"] else later.append(name)
        pid = os.fork()
        if pid == 0:
            _become_kernel(request, [replies.fileno(), 0])
        children.append(pid)
        replies.write(f"pid {pid}\n")
    _linger(parent, children)


class _Requests:
    """Lines on stdin, read without blocking while there is something else to do (``wait=False``)."""

    def __init__(self) -> None:
        self.buffer, self.closed = b"", False

    def next(self, wait: bool) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            if self.closed or (not wait and not select.select([0], [], [], 0)[0]):
                return None
            chunk = os.read(0, 1 << 16)
            self.buffer += chunk
            self.closed = not chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _load(name: str) -> tuple[str, ...]:
    """Import ``name`` quietly (import-time chatter, as a kernel's warm-up swallows it); returns what it imports
    inside its functions, if it is a module of Signoff's that says so (``PRELOAD``)."""
    module = sys.modules.get(name)
    if module is None:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the notebook meets (and reports) its own import errors
                return ()
    return tuple(getattr(module, "PRELOAD", ())) if name.startswith("runner.") else ()


def _become_kernel(request: dict[str, Any], private: list[int]) -> None:
    """In the forked child: the kernel's own session, folder, environment and arguments; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the kernel waits for its own subprocesses
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()  # its own process group, as jupyter_client starts kernels: interrupts reach it alone
        for fd in private:
            os.close(fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if "numpy" in sys.modules:  # a fresh process draws fresh unseeded numbers (``random`` reseeds itself)
            sys.modules["numpy"].random.seed()
        # ends when the server does (ipykernel read JPY_PARENT_PID when the server imported it)
        argv = [*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported on stderr, then the child ends like a kernel that died
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _linger(parent: int, children: list[int]) -> None:
    """Asked to close: wait for the kernels still running; if ``signoff`` died, kill them first."""
    while alive := [pid for pid in children if _alive(pid)]:
        if os.getppid() != parent:
            for pid in alive:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
    os._exit(0)  # not the 1-2 s of tearing down every module it imported
