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

A kernel that needs a fresh process (:mod:`runner.analysis.fresh`: the servability check) asks the same
server, over a Unix socket in a private temporary folder named in the kernel's environment: the child
forked for it has the server's imports and no notebook's objects, as a new interpreter would have none.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import json
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

from runner import startup
from runner.analysis import fresh
from runner.run import cores

# Top-level packages whose modules the server imports ahead: Signoff's own and those its stages use.
PRELOADED = ("runner", "numpy", "pandas", "scipy", "sklearn", "matplotlib", "shap", "scrapbook", "IPython",
             "pyarrow", "ipykernel", "jupyter_client", "zmq", "tornado")
KERNEL_MAIN = ("ipykernel.kernelapp", "ipykernel.ipkernel", "matplotlib_inline.backend_inline")
SWITCH = "SIGNOFF_FORK_KERNELS"  # "0": every kernel started the usual way
FRESH_REQUEST_TIMEOUT = 10  # seconds a kernel that connected may take to say what it wants
# The server's folder, first on its import path (`python -m`), and so its kernels'; a fresh process imports from
# the asking kernel's folder instead, as a new interpreter started there would (a module lying in the `signoff`
# command's folder is no more importable in the check that the model loads than where it will be served).
STARTED_IN = os.getcwd()


def available() -> bool:
    return hasattr(os, "pidfd_open") and hasattr(os, "fork") and os.environ.get(SWITCH, "1") != "0"


def preloadable(modules: list[str]) -> list[str]:
    """The modules of ``modules`` the server may import: standard library and :data:`PRELOADED` packages."""
    return [m for m in modules if m.split(".")[0] in PRELOADED or m.split(".")[0] in sys.stdlib_module_names]


class Server:
    """The ``signoff`` side of a fork server: tells it what to import, asks it for kernels (thread-safe), closes it.

    Started before the run knows its notebooks (:func:`started`), the server imports what every kernel runs on
    (ipykernel) meanwhile; :meth:`preload` then names the notebooks' modules (in stage order), which it imports
    while it waits for requests.  A request names what its notebook imports, which the server imports (if it
    has not yet) before forking that kernel: the first stage's kernel waits for its own imports only, not for
    every stage's.  A kernel that will wait for other stages anyway (``extras``) also waits for what its
    modules import inside their functions (``PRELOAD``)."""

    def __init__(self, env: dict[str, str]):
        # where its kernels ask for fresh processes (runner.analysis.fresh); the server removes it when it ends
        self.socket = os.path.join(tempfile.mkdtemp(prefix="signoff-fork-"), "socket")
        self.process = subprocess.Popen([sys.executable, "-m", "runner.run.forkserver", self.socket],
                                        env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self._lock = threading.Lock()  # one request written at a time; the waiting list
        self._waiting: dict[int, queue.SimpleQueue[int | None]] = {}
        self._numbers = itertools.count()
        self._ended = False
        threading.Thread(target=self._answer, name="fork-server-replies", daemon=True).start()

    def preload(self, modules: list[str]) -> None:
        """Import these modules ahead, in this order, between kernel requests; a server that is gone already will
        say so when asked for a kernel."""
        with self._lock, contextlib.suppress(RuntimeError):
            self._send({"preload": preloadable(modules)})

    def fork(self, argv: list[str], env: dict[str, str], cwd: str, modules: list[str],
             extras: bool) -> ForkedProcess:
        """A kernel child running ``ipykernel_launcher`` with ``argv``, ``modules`` imported; raises if the server
        is gone.  Requests from several threads queue up in the server, which answers them in order without
        starting a preload import between them."""
        reply: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        with self._lock:
            number = next(self._numbers)
            self._waiting[number] = reply
            try:
                if self._ended:
                    raise RuntimeError("the kernel fork server is gone")
                self._send({"number": number, "argv": argv, "env": {**env, fresh.SOCKET: self.socket}, "cwd": cwd,
                            "modules": preloadable(modules), "extras": extras})
            except RuntimeError:
                del self._waiting[number]
                raise
        pid = reply.get()
        if pid is None:
            raise RuntimeError(f"the kernel fork server ended (exit code {self.process.poll()})")
        return ForkedProcess(pid)

    def _send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError as exc:
            raise RuntimeError(f"the kernel fork server is gone ({exc})") from None

    def _answer(self) -> None:
        """Hand each reply (``NUMBER pid PID``) to the request waiting for it; when the server ends, tell the rest."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            number, _, pid = line.partition(" pid ")
            with self._lock:
                self._waiting.pop(int(number)).put(int(pid))
        with self._lock:
            self._ended = True
            for reply in self._waiting.values():
                reply.put(None)
            self._waiting.clear()

    def close(self) -> None:
        """No more kernels, nor fresh processes (their socket goes now, even if a signal ended the server before it
        could remove it): the server ends once the kernels it forked have."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        shutil.rmtree(os.path.dirname(self.socket), ignore_errors=True)


@contextlib.contextmanager
def started(jobs: int, env: dict[str, str]) -> Iterator[Server | None]:
    """A server for a run of ``jobs`` stages at a time, started now: before the caller imports Papermill and
    prepares the data, so that its own imports run on the core those leave idle (None where forking is not
    available).  Closed on leaving; it ends with the last of its kernels."""
    server = Server({**env, **cores.thread_caps(cores.threads_per_kernel(jobs))}) if available() else None
    try:
        yield server
    finally:
        if server is not None:
            server.close()


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


# ---- the server process -----------------------------------------------------------------------------------

def serve(path: str) -> None:
    """Fork a kernel for each request on stdin (one JSON line), answering its pid, and a fresh process for each
    connection to the socket at ``path`` (:mod:`runner.analysis.fresh`); meanwhile import the modules that
    preload requests name."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # what kernels print to the real stdout goes to stderr, not into the replies
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the `signoff` process's to handle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ended kernels are reaped by the OS
    startup.skip_unused_imports()
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as ipykernel sets it
    listener = _listening(path)
    private = [replies.fileno(), 0, *([listener.fileno()] if listener else [])]  # what a child must not keep
    later, requests, parent, children = [*KERNEL_MAIN], _Requests(listener), os.getppid(), []
    try:
        while (request := requests.next(wait=not later)) is not None or (later and not requests.closed):
            if request is None:
                later.extend(_load(later.pop(0)))
                continue
            if "preload" in request:
                later.extend(request["preload"])
                continue
            if "connection" in request:
                if (pid := os.fork()) == 0:
                    _answer_fresh(request["connection"], request["fresh"], private)
                request["connection"].close()
                children.append(pid)
                continue
            extras = [extra for name in [*KERNEL_MAIN, *request["modules"]] for extra in _load(name)]
            for name in extras:
                _load(name) if request["extras"] else later.append(name)
            if (pid := os.fork()) == 0:
                _become_kernel(request, private)
            children.append(pid)
            replies.write(f"{request['number']} pid {pid}\n")
        if listener is not None:  # a fresh process asked for from now on is a new interpreter
            listener.close()
            with contextlib.suppress(OSError):  # removed already by the `signoff` side
                os.unlink(path)
        _linger(parent, children)
    finally:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def _listening(path: str) -> socket.socket | None:
    """The socket kernels ask for fresh processes on; None where it cannot be made (a path longer than a socket
    address holds, under a long TMPDIR): the kernels then start new interpreters, as they would without a server."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen()
    except OSError:
        listener.close()
        return None
    return listener


class _Requests:
    """Lines on stdin and connections to the socket, read without blocking while there is something else to do
    (``wait=False``).  Once stdin is closed (no more kernels), no more connections are taken either."""

    def __init__(self, listener: socket.socket | None) -> None:
        self.buffer, self.closed, self.listener = b"", False, listener
        self.sources: list[Any] = [0, *([listener] if listener else [])]

    def next(self, wait: bool) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            ready = [] if self.closed else select.select(self.sources, [], [], None if wait else 0)[0]
            if not ready:
                return None
            if self.listener is not None and self.listener in ready:
                connection, _ = self.listener.accept()
                connection.settimeout(FRESH_REQUEST_TIMEOUT)
                try:
                    with connection.makefile("rb") as lines:
                        return {"connection": connection, "fresh": json.loads(lines.readline())}
                except (OSError, ValueError):  # a caller that went away, or garbled: it gets no answer
                    connection.close()
                    continue
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


def _leave_server(request: dict[str, Any], private: list[int]) -> None:
    """In a forked child: its own session (as jupyter_client starts kernels: interrupts reach it alone, and
    ``signoff`` dying ends it with the kernels), none of the server's pipes, the asker's folder and environment."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # it waits for its own subprocesses
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()
    for fd in private:
        os.close(fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "numpy" in sys.modules:  # a fresh process draws fresh unseeded numbers (``random`` reseeds itself)
        sys.modules["numpy"].random.seed()


def _become_kernel(request: dict[str, Any], private: list[int]) -> None:
    """In the forked child: the kernel, with its own arguments; never returns."""
    code = 1
    try:
        _leave_server(request, private)
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


def _answer_fresh(connection: socket.socket, request: dict[str, Any], private: list[int]) -> None:
    """In the forked child: the function's answer sent back to the kernel that asked (what it prints goes
    nowhere: the answer carries its error); never returns."""
    try:
        _leave_server(request, private)
        if sys.path and sys.path[0] == STARTED_IN:  # where `python -m` in the asker's folder would look first
            sys.path[0] = request["cwd"]
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        answer = json.dumps(fresh.answer(request))
    except BaseException as exc:  # noqa: BLE001 - told to the kernel that asked
        answer = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    try:
        connection.settimeout(None)
        connection.sendall(answer.encode() + b"\n")
    finally:
        os._exit(0)


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
    serve(sys.argv[1])
    os._exit(0)  # not the 1-2 s of tearing down every module it imported
