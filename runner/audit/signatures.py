"""Who decided, proven: statements signed with SSH keys (``ssh-keygen -Y``), as git signs commits.

People and services are principals in an OpenSSH ``allowed_signers`` file (``alice@bank.example ssh-ed25519
AAAA…``).  A run or a decision is signed as a *statement*: canonical JSON of what was decided, on which run
(its manifest's sha256), which model files and when.  The signature and the statement go into the decision's
line; `signoff verify` recomputes the statement from the line and the archive, so an edited line, a signature
copied from another run and a re-sealed manifest each fail with their own message.  OpenSSH's own
``ssh-keygen`` signs and verifies (no Python crypto of Signoff's): the same tool an auditor has, with keys
on disk or in the running ssh-agent (give the ``.pub`` file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from runner.audit.bundle_check import NAMESPACE, statement
from runner.errors import SignoffError

ENVIRONMENT = "SIGNOFF_ALLOWED_SIGNERS"


def allowed_signers(registry: dict[str, Any]) -> Path | None:
    """The allowed-signers file in force: ``SIGNOFF_ALLOWED_SIGNERS``, else the params file's
    ``registry.allowed_signers`` (made absolute when the params were read); None when neither names one."""
    named = os.environ.get(ENVIRONMENT) or registry.get("allowed_signers")
    if not named:
        return None
    path = Path(named)
    if not path.is_file():
        source = ENVIRONMENT if os.environ.get(ENVIRONMENT) else "registry.allowed_signers"
        raise SignoffError(f"{source}: {path}: no such allowed-signers file (lines 'PRINCIPAL ssh-ed25519 AAAA…', "
                           "as for git's gpg.ssh.allowedSignersFile)")
    return path


def sign(text: str, key: Path) -> str:
    """An armored SSH signature of ``text`` by ``key`` (a private key file, or a public one whose private half
    the running ssh-agent holds)."""
    if not key.is_file():
        raise SignoffError(f"--key {key}: no such key file (an SSH private key, or a .pub whose key ssh-agent holds)")
    done = _ssh_keygen(["-Y", "sign", "-f", str(key), "-n", NAMESPACE], text)
    if done.returncode != 0:
        raise SignoffError(f"--key {key}: ssh-keygen could not sign with it: {_said(done)}")
    return done.stdout


def principals(text: str, signature: str, allowed: Path) -> list[str]:
    """The principals of ``allowed`` whose key made ``signature`` over ``text`` (empty: a key not in the file,
    or a signature that does not verify)."""
    with tempfile.TemporaryDirectory(prefix="signoff-sig-") as scratch:
        sig = Path(scratch) / "statement.sig"
        sig.write_text(signature, encoding="utf-8")
        found = _ssh_keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed)], "")
        named = found.stdout.split() if found.returncode == 0 else []
        return [p for p in named if _ssh_keygen(["-Y", "verify", "-f", str(allowed), "-I", p, "-n", NAMESPACE,
                                                 "-s", str(sig)], text).returncode == 0]


def principal(key: Path, allowed: Path | None) -> str:
    """Whose key ``key`` is, by the allowed-signers file: proven by signing a probe and finding its signer."""
    if allowed is None:
        raise SignoffError(f"--key {key}: no allowed-signers file to check it against; name one in the params "
                           f"file (registry.allowed_signers) or in {ENVIRONMENT}")
    probe = f"{NAMESPACE}: whose key is {key.name}?"
    owners = principals(probe, sign(probe, key), allowed)
    if not owners:
        raise SignoffError(f"--key {key}: its public key is not in {allowed}; ask whoever keeps that file to add "
                           "a line 'PRINCIPAL <public key>'")
    return owners[0]


def signed(entry: dict[str, Any], manifest_sha256: str | None, key: Path, allowed: Path | None) -> dict[str, Any]:
    """``entry`` with its signature by ``key`` (whose principal is ``entry["by"]``: see :func:`principal`)."""
    text = statement(entry, manifest_sha256)
    return {**entry, "signature": {"principal": entry["by"], "statement": text, "ssh": sign(text, key)}}


def check(entry: dict[str, Any], manifest_sha256: str | None, allowed: Path) -> str | None:
    """What is wrong with a signed line, in words (None: the signature holds).  Each tamper has its own message:
    a signature by a key not in the file; one copied from another run or decision; a line edited after signing;
    a run manifest re-sealed after the run was signed."""
    seal = entry["signature"]
    said = _loads(seal.get("statement", ""))
    owners = principals(seal.get("statement", ""), seal.get("ssh", ""), allowed)
    if not owners:
        return (f"signed by a key not in {allowed} (or a signature that does not verify): "
                f"'{seal.get('principal')}' is not proven")
    if said.get("run_id") != entry.get("run_id") or said.get("version") != entry.get("version") or \
            said.get("model") != entry.get("model"):
        return (f"a signature moved here from another decision (it signs run {said.get('run_id')}, version "
                f"{said.get('version')} of {said.get('model')})")
    if seal.get("principal") not in owners or entry.get("by") not in owners:
        return f"signed by {', '.join(owners)}, but the line says {entry.get('by')!r}"
    if said.get("manifest_sha256") != manifest_sha256:
        return (f"the run's manifest was re-sealed after {owners[0]} signed it (signed "
                f"{str(said.get('manifest_sha256'))[:12]}, now {str(manifest_sha256)[:12]})")
    now = _loads(statement(entry, manifest_sha256))
    edited = sorted(name for name in now if now[name] != said.get(name))
    if edited:
        return f"the line was edited after {owners[0]} signed it ({', '.join(edited)} differ from what was signed)"
    return None


def _loads(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _ssh_keygen(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    program = shutil.which("ssh-keygen")
    if program is None:
        raise SignoffError("ssh-keygen not found: signatures need OpenSSH 8.2 or newer (Debian: apt install "
                           "openssh-client)")
    return subprocess.run([program, *args], input=stdin, capture_output=True, text=True, timeout=60)


def _said(done: subprocess.CompletedProcess) -> str:
    return (done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout).strip() else \
        f"exit {done.returncode}"
