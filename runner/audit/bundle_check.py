"""Check a Signoff audit bundle without Signoff: Python's standard library, and OpenSSH's ssh-keygen for signatures.

This file is copied into every bundle `signoff export` writes (as ``verify_bundle.py``), and Signoff's own code
uses its definitions of the archive's formats (how a manifest, a chained line and a signed statement hash),
so the bundle is checked by the very rules the archive was written with.  Run it inside the unpacked bundle:

    python3 verify_bundle.py

It recomputes every file's sha256 against the run's manifest and the manifest's own hash, follows the hash
chains of the run's decisions and of the model's ledger, checks the files decisions added, checks each
signature with ``ssh-keygen -Y verify`` against the bundled allowed-signers file and that each signed
statement is the line it sits on, and says plainly what it could not check.  Exit 0 intact, 1 not.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MANIFEST, DECISIONS, LEDGER, RENDERS = "manifest.json", "decisions.jsonl", "ledger.jsonl", "html"
NAMESPACE = "signoff"
SIGNED = ("decision", "model", "version", "run_id", "manifest_sha256", "model_sha256", "waivers", "note", "at", "by")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def core_sha256(manifest: dict) -> str:
    """A manifest's own hash: of what the run holds, independent of how the file is laid out."""
    core = {key: manifest.get(key) for key in ("model", "run_id", "previous", "files")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def line_sha256(line: str) -> str:
    """The hash a chained line's successor records as its ``previous``."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def statement(entry: dict, manifest_sha256: str | None) -> str:
    """The exact text a signature on a decision line signs."""
    fields = {**{name: entry.get(name) for name in SIGNED}, "decision": entry.get("event"),
              "manifest_sha256": manifest_sha256, "namespace": NAMESPACE}
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_problems(path: Path) -> list[str]:
    """Every line of a chained file whose ``previous`` is not the hash of the line before it."""
    found, before = [], None
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line] if path.exists() else []
    for number, line in enumerate(lines, start=1):
        try:
            previous = json.loads(line).get("previous")
        except (ValueError, AttributeError):
            found.append(f"{path}: line {number} is not a JSON record")
            previous = "unreadable"
        if previous != before:
            found.append(f"{path}: line {number} does not follow line {number - 1} (altered, removed or inserted line)")
        before = line_sha256(line)
    return found


def main() -> int:
    here = Path(__file__).resolve().parent
    run = next((p.parent for p in sorted((here / "run").glob(f"*/{MANIFEST}"))), None)
    if run is None:
        print(f"NOT INTACT: no run folder with a {MANIFEST} under {here / 'run'}")
        return 1
    problems, unchecked = check_run(run), []
    problems += chain_problems(here / LEDGER)
    allowed = here / "allowed_signers"
    signed = [(path, number, entry) for path in (run / DECISIONS, here / LEDGER) for number, entry in _entries(path)
              if entry.get("signature")]
    if signed and not allowed.is_file():
        unchecked.append(f"{len(signed)} signatures: the bundle holds no allowed_signers file to check them against")
    elif signed and shutil.which("ssh-keygen") is None:
        unchecked.append(f"{len(signed)} signatures: ssh-keygen (OpenSSH 8.2 or newer) is not installed")
    else:
        manifest_sha = json.loads((run / MANIFEST).read_text(encoding="utf-8")).get("sha256")
        for path, number, entry in signed:
            about_this_run = entry.get("run_id") == run.name
            problem = check_signature(entry, manifest_sha if about_this_run else None, allowed, about_this_run)
            where = f"{path.name} line {number} ({entry.get('event')} by {entry.get('by')})"
            if problem:
                problems.append(f"{where}: {problem}")
            else:
                print(f"signed: {where}, by {entry['signature']['principal']}")
    unchecked += [
        "the link to the model's previous run (its manifest is not in the bundle): manifest.json's 'previous'",
        "the ledger's head against the anchor MLflow keeps (signoff verify does that, with the MLflow store)",
        "that the allowed_signers file is the one in force: compare it with your organisation's copy",
    ]
    for problem in problems:
        print(problem)
    for note in unchecked:
        print(f"not checked: {note}")
    if problems:
        print(f"NOT INTACT: {len(problems)} problems")
        return 1
    print(f"intact: run {run.name}: every file matches its manifest, every chain link and signature holds")
    return 0


def check_run(run: Path) -> list[str]:
    manifest = json.loads((run / MANIFEST).read_text(encoding="utf-8"))
    problems = [] if core_sha256(manifest) == manifest.get("sha256") else [
        f"{run / MANIFEST}: its file list does not hash to the sha256 it records"]
    listed = {**manifest.get("files", {}), **manifest.get(RENDERS, {})}
    decided = {name: sha for _, entry in _entries(run / DECISIONS) for name, sha in entry.get("files", {}).items()}
    for name, recorded in sorted(listed.items()):
        path = run / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif file_sha256(path) != recorded["sha256"]:
            problems.append(f"{path}: modified (sha256 differs from the manifest)")
    for name, sha in sorted(decided.items()):
        if not (run / name).is_file() or file_sha256(run / name) != sha:
            problems.append(f"{run / name}: missing or modified (written with a decision)")
    present = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {MANIFEST, DECISIONS}
    problems += [f"{run / name}: added after the run" for name in sorted(present - set(listed) - set(decided))]
    return problems + chain_problems(run / DECISIONS)


def check_signature(entry: dict, manifest_sha: str | None, allowed: Path, about_this_run: bool) -> str | None:
    """The signature over its stored statement by a key in ``allowed``, and the statement being this line."""
    seal = entry["signature"]
    with tempfile.TemporaryDirectory() as scratch:
        sig = Path(scratch) / "statement.sig"
        sig.write_text(seal.get("ssh", ""), encoding="utf-8")
        verified = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", str(seal.get("principal")),
                                   "-n", NAMESPACE, "-s", str(sig)], input=seal.get("statement", ""),
                                  capture_output=True, text=True)
    if verified.returncode != 0:
        return f"the signature does not verify as {seal.get('principal')}'s with the bundled allowed_signers"
    said = json.loads(seal["statement"])
    if not about_this_run:  # a ledger line about another run: its manifest is not here to compare
        said["manifest_sha256"] = None
    now = json.loads(statement(entry, manifest_sha))
    edited = sorted(name for name in now if now[name] != said.get(name))
    return f"the line differs from what was signed ({', '.join(edited)})" if edited else None


def _entries(path: Path) -> list[tuple[int, dict]]:
    if not path.exists():
        return []
    return [(n, json.loads(line)) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if line.strip()]


if __name__ == "__main__":
    sys.exit(main())
