"""Call a function in a fresh process: one that shares nothing with the kernel asking (the servability check
loads the logged model there, as a server would).

Inside a `signoff run`, a stage kernel asks the run's fork server (``SIGNOFF_FORK_SERVER``, a socket) for the
process: a child forked from the server, which has imported libraries and Signoff's modules and never ran a
notebook, so the child holds no kernel's objects, as a new interpreter would not; it only skips the new
interpreter's 2 s of imports.  Elsewhere (a notebook run by hand, a kernel started the usual way) it is a new
interpreter, ``python -m runner.analysis.fresh``.  Either way the function's return value comes back as JSON,
and what it raises comes back as :class:`Failed` with its last line.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from typing import Any

SOCKET = "SIGNOFF_FORK_SERVER"  # the run's fork server, for kernels forked from it


class Failed(Exception):
    """The function raised (the message is its last line), or the process ended without an answer."""


def call(target: str, args: list[Any], env: dict[str, str], timeout: float) -> Any:
    """``target`` ("package.module:function") called with ``args`` in a fresh process whose environment adds
    ``env``; raises :class:`Failed` or :class:`TimeoutError` (after ``timeout`` seconds)."""
    request = {"target": target, "args": args, "env": {**os.environ, **env}, "cwd": os.getcwd()}
    path = os.environ.get(SOCKET, "")
    answer = (_forked(path, request, timeout) if path else None) or _interpreter(request, timeout)
    if "error" in answer:
        raise Failed(answer["error"])
    return answer["result"]


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """In the fresh process: the target's result, or its error's last line."""
    module, _, function = request["target"].partition(":")
    try:
        return {"result": getattr(importlib.import_module(module), function)(*request["args"])}
    except SystemExit as exc:
        return {"error": str(exc.code)}
    except Exception:  # noqa: BLE001 - reported to the kernel that asked, as the answer
        return {"error": (traceback.format_exc().strip().splitlines() or ["(no message)"])[-1]}


def _forked(path: str, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """The answer of a child of the fork server at ``path``; None if the server takes no requests (it stopped,
    or could not listen there)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        try:
            connection.connect(path)
        except OSError:
            return None
        connection.sendall(json.dumps(request).encode() + b"\n")
        received = b""
        try:
            while chunk := connection.recv(1 << 16):
                received += chunk
                connection.settimeout(max(0.001, deadline - time.monotonic()))
        except TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s") from None
    if not received.endswith(b"\n"):
        return {"error": "the fresh process ended without answering"}
    return json.loads(received)


def _interpreter(request: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        done = subprocess.run([sys.executable, "-m", "runner.analysis.fresh"], input=json.dumps(request),
                              capture_output=True, text=True, env=request["env"], timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["the fresh process ended without answering"])[-1]}
    return json.loads(lines[-1])


if __name__ == "__main__":
    from runner import startup

    startup.skip_unused_imports()
    print(json.dumps(answer(json.loads(sys.stdin.read()))))
    startup.exit_at_once(0)  # the answer is out: skip a second of finalising what the function imported
