"""Who or what moved a model forward or back, on which evidence, and how to undo it.

Every decision (registration, approval, rejection, promotion, rollback) is taken
behind the model's lock, checks that ``champion`` still points where it expected,
reads the alias back, and is recorded three times: a chained line in the run
folder's ``decisions.jsonl``, a chained line in the model's ``ledger.jsonl``, and
MLflow tags on the model version and its run.  Nothing earlier is rewritten.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import mlflow_store, records
from runner.audit import index, journal, lock, model_card, signatures, verify
from runner.audit.archive import LEDGER
from runner.errors import SignoffError
from runner.records import DECISIONS
from runner.release import mlflow_registry

RELEASABLE = ("PASS", "WARN")
AUTO = "signoff (automatic promotion)"


@dataclass
class RegisteredModel:
    """Where a model's versions live and where its runs are archived."""

    connect: Callable[[], Any]  # the MLflow client, opened on first use: a refusal that needs no store is instant
    model: str
    output_root: Path

    @functools.cached_property
    def client(self) -> Any:
        return self.connect()

    @property
    def model_dir(self) -> Path:
        return self.output_root / self.model


@dataclass(frozen=True)
class Signer:
    """Who acts, and the SSH key that proves it (no key: an unsigned decision, where the policy allows one)."""

    by: str
    key: Path | None = None
    allowed: Path | None = None

    def sign(self, entry: dict[str, Any], manifest_sha256: str | None) -> dict[str, Any]:
        return signatures.signed(entry, manifest_sha256, self.key, self.allowed) if self.key else entry


def signer(by: str | None, key: Path | None, registry: dict[str, Any], doing: str) -> Signer:
    """The decider under the registry policy of the params file in force, checked before anything changes:
    with ``require_signatures`` a key is needed; a key's principal in the allowed-signers file is who decides
    (``by`` defaults to it, and a ``by`` that disagrees with it is refused)."""
    allowed = signatures.allowed_signers(registry)
    if key is None:
        if registry.get("require_signatures"):
            raise SignoffError(f"{doing}: registry.require_signatures is true: sign it with --key YOUR_SSH_KEY "
                               "(a private key, or the .pub of a key in ssh-agent) whose public key is in "
                               f"{allowed or 'the allowed-signers file'}")
        if not by:
            raise SignoffError(f"{doing}: say who decides: --by NAME, or --key KEY to prove it")
        return Signer(by)
    principal = signatures.principal(key, allowed)
    if by and by != principal:
        raise SignoffError(f"--by {by}: the key {key} is {principal}'s in {allowed}; decide as {principal} "
                           "(leave out --by) or with your own key")
    return Signer(principal, key, allowed)


@dataclass(frozen=True)
class Waiver:
    gate: str
    reason: str
    expires: str  # YYYY-MM-DD


def release(reg: RegisteredModel, folder: Path, verdict: records.Verdict, facts: dict[str, Any], promotion: str,
            starter: Signer) -> str:
    """After a run is archived: register a PASS or WARN run's model as ``challenger``, and
    under ``auto`` promotion make a PASS the champion.  Returns what happened, in words.

    The caller (``signoff run``) holds the model's lock.  With a key, the starter signs the run (its sealed
    manifest) and what follows from it (registration, automatic promotion).
    """
    _record(reg, folder, None, {"event": "run finished", "by": starter.by, "verdict": verdict.verdict, "note": "",
                                "model_sha256": facts.get("infra.model_sha256")}, starter)
    if verdict.rerun_of:
        return "not registered: a re-run checks that the evidence reproduces; it does not release"
    if verdict.verdict not in RELEASABLE:
        return f"not registered: the verdict is {verdict.verdict}"
    system = starter if starter.key else Signer("signoff")
    version = _register(reg, folder, verdict, facts, system)
    if promotion == "auto" and verdict.verdict == "PASS":
        _promote(reg, folder, version, "promoted", "promotion: auto, verdict PASS", [],
                 starter if starter.key else Signer(AUTO))
        return f"registered as version {version} and promoted to champion (promotion: auto)"
    why = "the verdict is WARN" if verdict.verdict == "WARN" else "promotion: manual"
    return (f"registered as version {version} (alias challenger); awaiting sign-off ({why}): "
            f"signoff approve {folder} --by NAME")


def approve(reg: RegisteredModel, folder: Path, by: str | None, key: Path | None, note: str, waivers: list[Waiver],
            wait: float, say: Callable[[str], None]) -> str:
    run = _archived(folder)
    verdict, gates = run.verdict, {g["id"]: g for g in run.params.get("gates", [])}
    registry = run.params.get("registry") or {}
    decider = signer(by, key, registry, f"approving {folder}")
    if verdict.verdict == "ERROR":
        raise SignoffError(f"{folder}: the run's verdict is ERROR (a stage did not finish); it cannot be approved")
    started = _run_signer(run) or verdict.started_by
    if decider.by == started:
        proven = " (proven by their keys)" if decider.key and _run_signer(run) else ""
        raise SignoffError(f"{folder}: {decider.by} started this run and cannot also approve it (four-eyes rule"
                           f"{proven})")
    approvers = registry.get("approvers") or []
    if approvers and decider.by not in approvers:
        raise SignoffError(f"{folder}: {decider.by} is not an approver of {verdict.model} (registry.approvers: "
                           f"{', '.join(approvers)})")
    altered = verify.check_run(folder)
    if altered:
        raise SignoffError(f"{folder}: the archived run was altered ({altered[0]}); it cannot be approved")
    _check_waivers(folder, verdict, gates, waivers)
    waived = {w.gate for w in waivers}
    unwaived = [g["id"] for g in verdict.gates if records.blocks(g) and g["id"] not in waived]
    if unwaived:
        raise SignoffError(f"{folder}: the run is BLOCKED by {', '.join(unwaived)}; approving it is refused "
                           "(only gates marked waivable: true can be waived, with --waive)")
    with lock.held(reg.model_dir, f"approving run {verdict.run_id}", wait, say):
        version = _registered_version(reg, folder) or _register(reg, folder, verdict, run.evidence, decider)
        if mlflow_registry.alias(reg.client, reg.model, mlflow_registry.CHAMPION) == version:
            raise SignoffError(f"{folder}: version {version} is already the champion")
        listed = [w.__dict__ | {"by": decider.by} for w in waivers]
        _promote(reg, folder, version, "approved", note, listed, decider)
    return f"approved: version {version} of {reg.model} is the champion"


def reject(reg: RegisteredModel, folder: Path, by: str | None, key: Path | None, note: str, wait: float,
           say: Callable[[str], None]) -> str:
    run = _archived(folder)
    verdict = run.verdict
    decider = signer(by, key, run.params.get("registry") or {}, f"rejecting {folder}")
    with lock.held(reg.model_dir, f"rejecting run {verdict.run_id}", wait, say):
        version = _registered_version(reg, folder)
        if version and mlflow_registry.alias(reg.client, reg.model, mlflow_registry.CHAMPION) == version:
            raise SignoffError(f"{folder}: version {version} is the champion; roll back instead of rejecting it")
        _record(reg, folder, version, {"event": "rejected", "by": decider.by, "note": note}, decider)
    return f"rejected: run {verdict.run_id}" + (f" (version {version} stays unpromoted)" if version else "")


def promote(reg: RegisteredModel, version: str, by: str | None, key: Path | None, note: str, wait: float,
            say: Callable[[str], None]) -> str:
    """Make an approved version the champion (again)."""
    with lock.held(reg.model_dir, f"promoting version {version}", wait, say):
        tags = _version(reg, version).tags
        decider = signer(by, key, _policy(reg, tags), f"promoting version {version} of {reg.model}")
        if tags.get(f"{mlflow_store.TAG}approved") != "true":
            raise SignoffError(f"model {reg.model} version {version} was never approved; "
                               "`signoff approve RUN_DIR` it first")
        if mlflow_registry.alias(reg.client, reg.model, mlflow_registry.CHAMPION) == version:
            raise SignoffError(f"model {reg.model} version {version} is already the champion")
        _check_files(reg, version)
        _promote(reg, _run_folder(reg, tags), version, "promoted", note, [], decider)
    return f"promoted: version {version} of {reg.model} is the champion"


def rollback(reg: RegisteredModel, to: str | None, by: str | None, key: Path | None, note: str, wait: float,
             say: Callable[[str], None]) -> str:
    """Move ``champion`` back to the version that was champion before (or to ``to``, a former champion)."""
    with lock.held(reg.model_dir, "rolling back", wait, say):
        current = mlflow_registry.alias(reg.client, reg.model, mlflow_registry.CHAMPION)
        if current is None:
            raise SignoffError(f"model {reg.model} has no champion to roll back from")
        target = to or _version(reg, current).tags.get(f"{mlflow_store.TAG}previous_champion")
        if not target or target == "none":
            raise SignoffError(f"model {reg.model}: version {current} is the first champion; there is nothing "
                               "to roll back to (name one with --to)")
        tags = _version(reg, target).tags
        decider = signer(by, key, _policy(reg, tags), f"rolling back {reg.model} to version {target}")
        if tags.get(f"{mlflow_store.TAG}was_champion") != "true" or target == current:
            raise SignoffError(f"model {reg.model} version {target} was never a champion before; rollback "
                               "only returns to a former champion (`signoff list` shows them)")
        _check_files(reg, target)
        mlflow_registry.move_alias(reg.client, reg.model, mlflow_registry.CHAMPION, target, current)
        _record(reg, _run_folder(reg, tags), target,
                {"event": "rolled back", "by": decider.by, "note": note, "previous_champion": current,
                 "model_sha256": tags.get(f"{mlflow_store.TAG}model_sha256")}, decider)
    return f"rolled back: version {target} of {reg.model} is the champion again (was {current})"


def listing(reg: RegisteredModel, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Every version with its run, verdict, aliases, last decision and waivers (expired ones flagged)."""
    today = today or dt.date.today()
    rows = []
    aliases = mlflow_registry.aliases(reg.client, reg.model)
    for entry in mlflow_registry.versions(reg.client, reg.model):
        tags = entry.tags
        waivers = json.loads(tags.get(f"{mlflow_store.TAG}waivers", "[]"))
        rows.append({
            "version": str(entry.version),
            "run": tags.get(f"{mlflow_store.TAG}run_id", ""),
            "verdict": tags.get(f"{mlflow_store.TAG}verdict", ""),
            "aliases": sorted(name for name, version in aliases.items() if version == str(entry.version)),
            "decision": tags.get(f"{mlflow_store.TAG}decision", ""),
            "decided_by": tags.get(f"{mlflow_store.TAG}decided_by", ""),
            "waivers": waivers,
            "expired_waivers": [w["gate"] for w in waivers if dt.date.fromisoformat(w["expires"]) < today],
        })
    return rows


def _register(reg: RegisteredModel, folder: Path, verdict: records.Verdict, facts: dict[str, Any],
              decider: Signer) -> str:
    model_sha256 = str(facts.get("infra.model_sha256", ""))
    tags = {"run_id": verdict.run_id, "run_folder": str(folder), "verdict": verdict.verdict,
            "model_sha256": model_sha256, "started_by": verdict.started_by}
    version = mlflow_registry.register(reg.client, reg.model, facts["infra.model_uri"], verdict.mlflow_run_id, tags)
    _record(reg, folder, version, {"event": "registered", "by": decider.by, "note": "alias challenger",
                                   "model_sha256": model_sha256}, decider)
    return version


def _promote(reg: RegisteredModel, folder: Path | None, version: str, event: str, note: str,
             waivers: list[dict[str, Any]], decider: Signer) -> None:
    """Move ``champion`` to ``version``; the run folder gets a model card that names this decision."""
    previous = mlflow_registry.alias(reg.client, reg.model, mlflow_registry.CHAMPION)
    model_sha256 = _version(reg, version).tags.get(f"{mlflow_store.TAG}model_sha256")
    decision = {"event": event, "by": decider.by, "note": note, "previous_champion": previous, "waivers": waivers,
                "model_sha256": model_sha256}
    files = _card_with_decisions(folder, _entry(reg, folder, version, decision)) if folder else {}
    mlflow_registry.move_alias(reg.client, reg.model, mlflow_registry.CHAMPION, version, previous)
    mlflow_registry.version_tags(reg.client, reg.model, version, {
        "approved": "true", "was_champion": "true", "previous_champion": previous or "none",
        "waivers": json.dumps(waivers),
    })
    _record(reg, folder, version, {**decision, "files": files}, decider)


def _record(reg: RegisteredModel, folder: Path | None, version: str | None, decision: dict[str, Any],
            decider: Signer) -> None:
    entry = decider.sign(_entry(reg, folder, version, decision), _manifest_sha256(folder))
    if folder is not None:
        journal.append(folder / DECISIONS, entry)
    head = journal.append(reg.model_dir / LEDGER, entry)
    if version is not None:
        mlflow_registry.version_tags(reg.client, reg.model, version, {
            "decision": decision["event"], "decided_by": decision["by"], "decided_at": entry["at"],
            "decision_note": decision.get("note", ""),
        })
    mlflow_registry.anchor(reg.client, reg.model, head)
    index.write(reg.output_root)


def _entry(reg: RegisteredModel, folder: Path | None, version: str | None, decision: dict[str, Any]) -> dict[str, Any]:
    return {"at": _now(), "model": reg.model, "version": version, "run_id": folder.name if folder else None, **decision}


def _card_with_decisions(folder: Path, entry: dict[str, Any]) -> dict[str, str]:
    """The model card again, with every decision so far and this one (waivers included), as new files
    under ``decisions/``; their hashes go into the decision's line, so `verify` checks them."""
    template = folder / "templates" / "model_card.md.j2"  # the run's own, archived with it
    if not template.is_file():
        raise SignoffError(f"{template}: missing; the model card recording this decision cannot be written")
    run = _archived(folder)
    decided = [*run.decisions, entry]
    paths = model_card.write(template, folder / "decisions", run.params, run.verdict, run.evidence, decided,
                             f"{len(decided):03d}-model_card")
    return {str(p.relative_to(folder)): records.sha256_file(p) for p in paths}


def _manifest_sha256(folder: Path | None) -> str | None:
    """The sealed manifest's sha256 of the run a decision is about (what a signature on it vouches for)."""
    return records.ArchivedRun(folder).manifest.get("sha256") if folder is not None else None


def _run_signer(run: records.ArchivedRun) -> str | None:
    """The principal who signed the run (its "run finished" line), if it was signed."""
    finished = [d for d in run.decisions if d.get("event") == "run finished" and d.get("signature")]
    return finished[0]["signature"]["principal"] if finished else None


def _policy(reg: RegisteredModel, tags: dict[str, str]) -> dict[str, Any]:
    """The registry policy a version was released under: its run's params (none: the defaults, unsigned)."""
    folder = _run_folder(reg, tags)
    return (records.ArchivedRun(folder).params.get("registry") or {}) if folder else {}


def _archived(folder: Path) -> records.ArchivedRun:
    """A run folder archived whole: a decision on anything else is refused."""
    run = records.ArchivedRun(folder)
    if not run.sealed:
        raise SignoffError(f"{folder}: not a finished run (no manifest.json)")
    return run


def _check_waivers(folder: Path, verdict: records.Verdict, declared: dict[str, dict[str, Any]],
                   waivers: list[Waiver]) -> None:
    failed = set(verdict.failed_gates)
    for waiver in waivers:
        if waiver.gate not in failed:
            raise SignoffError(f"{folder}: --waive {waiver.gate}: no such failed gate in this run "
                               f"(failed: {', '.join(sorted(failed)) or 'none'})")
        if not declared.get(waiver.gate, {}).get("waivable", False):
            raise SignoffError(f"{folder}: --waive {waiver.gate}: the gate is not waivable "
                               "(its params declare no waivable: true)")
        if not waiver.reason.strip():
            raise SignoffError(f"--waive {waiver.gate}: --reason must say why the failure is accepted")
        try:
            expires = dt.date.fromisoformat(waiver.expires)
        except ValueError:
            raise SignoffError(f"--waive {waiver.gate}: --expires expects a date YYYY-MM-DD, "
                               f"got {waiver.expires!r}") from None
        if expires <= dt.date.today():
            raise SignoffError(f"--waive {waiver.gate}: --expires {waiver.expires} is not in the future")


def _check_files(reg: RegisteredModel, version: str) -> None:
    """A version goes back into production only if its files are still the ones registered."""
    with tempfile.TemporaryDirectory(prefix="signoff-check-") as scratch:
        mlflow_registry.verified_files(reg.client, reg.model, version, Path(scratch))


def _registered_version(reg: RegisteredModel, folder: Path) -> str | None:
    registered = [d for d in journal.read(folder / DECISIONS) if d["event"] == "registered"]
    return registered[-1]["version"] if registered else None


def _version(reg: RegisteredModel, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return reg.client.get_model_version(reg.model, version)
    except MlflowException:
        raise SignoffError(f"model {reg.model} has no version {version} (`signoff list {reg.model}`)") from None


def _run_folder(reg: RegisteredModel, tags: dict[str, str]) -> Path | None:
    run_id = tags.get(f"{mlflow_store.TAG}run_id")
    folder = reg.model_dir / run_id if run_id else None
    return folder if folder is not None and folder.is_dir() else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
