"""`signoff verify`: recompute every hash of the archive and check the chain of runs.

A run is intact when every file its manifest lists has the recorded sha256 and
size and no file was added; a model's runs are chained when each manifest's
``previous`` is the sha256 of the manifest of the run before it.  Decisions
appended later (a run's ``decisions.jsonl``, the model's ``ledger.jsonl``) are
checked line by line through their own hash chain.  A chain cannot reveal its own
truncation, so the ledger's last hash is also compared with the anchor kept outside
the archive (a tag in MLflow) and, when given, with a head the auditor noted; and
the newest run, which no later run links to, must exist wherever the ledger or MLflow
recorded it.  Finished runs are real folders of real files: a symbolic link is
reported, never followed (it could point anywhere, and its target could change).

A hash chain can be recomputed by whoever can write the archive; a signature cannot.  Every signed decision
line is checked against the allowed-signers file in force (`runner.audit.signatures`), a run whose params
require signatures must have every line signed, and ``champion`` in MLflow must point where the ledger's
last champion decision (signed, where required) left it: an alias moved in MLflow's UI is caught here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from runner import records
from runner.audit import journal, signatures
from runner.audit.archive import LEDGER, RENDERS, TEMP_PREFIX, core_sha256, finished_runs
from runner.audit.lock import HOLDER_FILE, LOCK_FILE
from runner.errors import SignoffError
from runner.records import DECISIONS, MANIFEST, sha256_file


@dataclass(frozen=True)
class Kept:
    """What MLflow keeps about a model's archive: the ledger's head (by model name), and the runs it
    records as archived in a model folder."""

    head: Callable[[str], str | None]
    archived_runs: Callable[[Path], set[str]]
    champion: Callable[[str], tuple[str | None, str]]  # by model name: the version the alias points to, and when


def verify(path: Path, kept: Kept | None = None, expect_head: str | None = None) -> tuple[list[str], int]:
    """Problems found under ``path`` (a run, a model folder or the output root) and how many runs were checked.

    ``kept``: what MLflow recorded; ``expect_head``: a ledger head noted at an earlier audit.
    """
    if not path.is_dir():
        raise SignoffError(f"{path}: no such folder (expected a run folder, a model folder or the output root)")
    if (path / MANIFEST).exists():
        return check_run(path), 1
    models = [path] if _is_model(path) else sorted(p for p in path.iterdir() if p.is_dir() and _is_model(p))
    if not models:
        raise SignoffError(f"{path}: holds no Signoff run (no {MANIFEST} found)")
    problems: list[str] = []
    runs = 0
    for model in models:
        problems += check_links(model) + check_chain(model) + check_ledger(model, kept, expect_head)
        problems += check_recorded_runs(model, kept) + check_champion(model, kept)
        for run in finished_runs(model):
            problems += check_run(run)
            runs += 1
    return problems, runs


def _is_model(folder: Path) -> bool:
    """A model's folder: it has (or had) a lock, a ledger or a finished run."""
    return (folder / LOCK_FILE).exists() or (folder / LEDGER).is_file() \
        or any((run / MANIFEST).exists() for run in folder.iterdir() if run.is_dir())


def check_links(model: Path) -> list[str]:
    """Symbolic links anywhere in a model's folder, each named and none followed."""
    found = []
    for top, folders, files in os.walk(model):  # never descends into a linked folder
        for name in sorted([*folders, *files]):
            path = Path(top) / name
            if path.is_symlink():
                found.append(f"{path}: a symbolic link (to {os.readlink(path)}); archived runs are real folders of "
                             "real files, and verify does not follow links out of the archive")
    return found


def check_recorded_runs(model: Path, kept: Kept | None) -> list[str]:
    """Every run the ledger or MLflow knows was archived must still be there: the newest run has no
    later run whose chain link would reveal its removal."""
    present = {run.name for run in finished_runs(model)}
    in_ledger = {e["run_id"] for e in journal.read(model / LEDGER) if e.get("run_id")}
    in_mlflow = kept.archived_runs(model) if kept is not None else set()
    return [f"{model / run_id}: missing; the {'ledger' if run_id in in_ledger else 'MLflow store'} records this "
            "run as archived" for run_id in sorted((in_ledger | in_mlflow) - present)]


def check_run(run: Path) -> list[str]:
    try:
        manifest = records.ArchivedRun(run).manifest
        listed = {**manifest["files"], **manifest[RENDERS]}
    except (SignoffError, KeyError, TypeError) as exc:
        return [f"{run / MANIFEST}: unreadable manifest ({exc})"]
    chain = journal.problems(run / DECISIONS)
    problems = list(chain) + check_signatures(run / DECISIONS, run.parent)
    if core_sha256(manifest) != manifest.get("sha256"):
        problems.append(f"{run / MANIFEST}: its file list does not hash to the sha256 it records "
                        "(and the reports' banners show)")
    for name, recorded in sorted(listed.items()):
        path = run / name
        if _through_link(run, path):
            problems.append(f"{path}: a symbolic link, not the archived file (not followed)")
        elif not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != recorded["size"] or sha256_file(path) != recorded["sha256"]:
            problems.append(f"{path}: modified (sha256 differs from the manifest)")
    decided = {} if chain else _decided_files(run)  # a broken chain vouches for no file
    for name, sha256 in sorted(decided.items()):
        path = run / name
        if not path.is_file():
            problems.append(f"{path}: missing (written with a decision)")
        elif sha256_file(path) != sha256:
            problems.append(f"{path}: modified (sha256 differs from its decision's record)")
    present = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {MANIFEST, DECISIONS}
    added = present - set(listed) - set(decided)
    return problems + [
        f"{run / name}: added after the run (not in the manifest or a decision)" for name in sorted(added)
    ]


def _through_link(run: Path, path: Path) -> bool:
    """Whether ``path``, or a folder between it and ``run``, is a symbolic link."""
    parts = path.relative_to(run).parts
    return any(run.joinpath(*parts[:end]).is_symlink() for end in range(1, len(parts) + 1))


def _decided_files(run: Path) -> dict[str, str]:
    """Files a decision added to the run (a model card naming it), with their recorded sha256."""
    return {name: sha256 for entry in journal.read(run / DECISIONS) for name, sha256 in entry.get("files", {}).items()}


def check_signatures(lines: Path, model: Path) -> list[str]:
    """Each signed line of a decisions file or ledger against the allowed-signers file in force, and each
    unsigned line where its run's params require signatures."""
    problems = []
    for number, entry in enumerate(journal.read(lines), start=1):
        run = model / entry["run_id"] if entry.get("run_id") else None
        registry = _registry(run)
        where = f"{lines}: line {number} ({entry.get('event')} by {entry.get('by')})"
        if not entry.get("signature"):
            if registry.get("require_signatures"):
                problems.append(f"{where}: unsigned, but the run's params require signatures")
            continue
        try:
            allowed = signatures.allowed_signers(registry)
        except SignoffError as exc:
            problems.append(f"{where}: cannot check its signature: {exc}")
            continue
        if allowed is None:
            problems.append(f"{where}: signed, but no allowed-signers file to check it against (set "
                            f"{signatures.ENVIRONMENT})")
            continue
        wrong = signatures.check(entry, _manifest_sha256(run), allowed)
        if wrong:
            problems.append(f"{where}: {wrong}")
    return problems


def signers(path: Path) -> list[str]:
    """Who signed what, or that nobody did, line by line of every ledger under ``path``: for the auditor's
    reading, not a verdict (unsigned lines are problems only where a run's params require signatures)."""
    if not path.is_dir() or (path / MANIFEST).exists():
        return []
    models = [path] if _is_model(path) else sorted(p for p in path.iterdir() if p.is_dir() and _is_model(p))
    found = []
    for model in models:
        for entry in journal.read(model / LEDGER):
            what = f"{model.name}: {entry['event']}" + (f" version {entry['version']}" if entry.get("version") else "")
            what += f" (run {entry.get('run_id')})"
            found.append(f"signed: {what} by {entry['signature']['principal']}" if entry.get("signature")
                         else f"unsigned: {what}, recorded as by {entry.get('by')}")
    return found


def check_champion(model: Path, kept: Kept | None) -> list[str]:
    """``champion`` must be where the ledger's last champion decision put it, and that decision signed where its
    run's params require signatures: anything else moved it outside Signoff."""
    current, when = kept.champion(model.name) if kept is not None else (None, "")
    if current is None:
        return []
    moves = journal.champion_moves(model / LEDGER)
    decided = moves[-1] if moves else None
    if decided is None:
        why = "the ledger records no champion decision"
    elif decided.get("version") != current:
        why = (f"the ledger's last champion decision ({decided['event']} by {decided['by']}) made version "
               f"{decided['version']} the champion")
    elif not decided.get("signature") and _registry(_run_of(model, decided)).get("require_signatures"):
        why = (f"the ledger's decision for it ({decided['event']} by {decided['by']}) is unsigned where its run's "
               "params require signatures")
    else:
        return []
    return [f"{model.name}: champion moved outside Signoff: MLflow's alias points to version {current} "
            f"(alias last changed {when}), but {why}"]


def _run_of(model: Path, entry: dict) -> Path | None:
    return model / entry["run_id"] if entry.get("run_id") else None


def _registry(run: Path | None) -> dict:
    """The registry policy of an archived run's params (empty for a line about no run, or an unreadable run)."""
    if run is None or not (run / MANIFEST).exists():
        return {}
    try:
        return records.ArchivedRun(run).params.get("registry") or {}
    except SignoffError:
        return {}


def _manifest_sha256(run: Path | None) -> str | None:
    if run is None or not (run / MANIFEST).exists():
        return None
    try:
        return records.ArchivedRun(run).manifest.get("sha256")
    except SignoffError:
        return None


def check_ledger(model: Path, kept: Kept | None, expect_head: str | None) -> list[str]:
    ledger = model / LEDGER
    problems = journal.problems(ledger) + check_signatures(ledger, model)
    head = journal.head(ledger)
    if expect_head is not None and head != expect_head:
        problems.append(f"{ledger}: head {head or 'none'} is not the expected {expect_head}")
    if kept is not None and (anchored := kept.head(model.name)) != head:
        problems.append(f"{ledger}: head {(head or 'none')[:12]} does not match the anchor kept in MLflow "
                        f"({(anchored or 'none')[:12]}): lines were removed or the ledger was replaced")
    return problems


def check_chain(model: Path) -> list[str]:
    """Each run's ``previous`` must be the hash of the manifest before it: a run removed,
    replaced or reordered breaks a link."""
    problems = []
    expected = None
    for run in finished_runs(model):
        try:
            previous = records.ArchivedRun(run).manifest.get("previous")
        except SignoffError as exc:
            problems.append(f"{run / MANIFEST}: unreadable manifest ({exc})")
            previous = None
        if previous != expected:
            problems.append(f"{run}: broken chain: previous {previous or 'none'}, "
                            f"but the run before it has manifest sha256 {expected or 'none (first run)'}")
        expected = sha256_file(run / MANIFEST)
    return problems


def stale_lock_holders(path: Path) -> list[str]:
    """``.lock.holder`` files whose lock nobody holds: left by a command that was killed.  Harmless (the
    next command overwrites it), so they are noted, not counted as problems."""
    notes = []
    models = [path] if _is_model(path) else [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()]
    for model in models:
        holder = model / HOLDER_FILE
        if not holder.is_file():
            continue
        try:
            with FileLock(model / LOCK_FILE, timeout=0):
                notes.append(f"{holder}: left by a command that was killed ({holder.read_text(encoding='utf-8')}); "
                             "nobody holds the lock, the file can be deleted")
        except Timeout:
            continue  # a command is running now
    return notes


def unfinished(path: Path) -> list[Path]:
    """Temporary run folders under ``path``: runs still being written, or killed before they could be archived.
    They are not part of the archive (no manifest, no chain link), so they are reported, not failed."""
    models = [path] if _is_model(path) else [p for p in path.iterdir() if p.is_dir()]
    return sorted(p for m in models if m.is_dir() for p in m.iterdir() if p.name.startswith(TEMP_PREFIX))
