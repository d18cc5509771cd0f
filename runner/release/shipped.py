"""The model that ships is the model that was signed off: `signoff check-model`, for a deployment step.

A champion decision (approval, promotion, rollback) records the sha256 of the registered model's files, and,
with keys, signs it.  Checking a model (``models:/NAME@champion``, ``models:/NAME/VERSION``, or a local folder
a deployment is about to serve) hashes its files the same way and compares them with the latest champion
decision in the model's ledger: exit 0 when they are the files that decision named (its signature holding,
where the policy requires one), 1 when they are not.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner import mlflow_store, records
from runner.audit import journal, signatures
from runner.audit.archive import LEDGER
from runner.errors import SignoffError
from runner.release import mlflow_registry

MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def check_model(target: str, model: str | None, output_root: Path, connect: Callable[[], Any]) -> tuple[bool, str]:
    """Whether ``target``'s files are those of the model's latest champion decision, and what was found."""
    found = MODELS_URI.match(target)
    if found:
        model = found["name"]
        client = connect()
        version = mlflow_registry.alias(client, model, found["alias"]) if found["alias"] else found["version"]
        if version is None:
            raise SignoffError(f"{target}: model {model} has no alias {found['alias']}")
        with tempfile.TemporaryDirectory(prefix="signoff-check-model-") as scratch:
            import mlflow

            files = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model}/{version}",
                                                             dst_path=scratch))
            actual = mlflow_store.model_files_sha256(files)
    else:
        folder = Path(target)
        if not folder.is_dir():
            raise SignoffError(f"{target}: expected models:/NAME@ALIAS, models:/NAME/VERSION or a model folder")
        if not model:
            raise SignoffError(f"{target}: a local model folder needs --model NAME (whose ledger to check it against)")
        version, actual = None, mlflow_store.model_files_sha256(folder)
    decided = _latest_decision(output_root / model)
    said = (f"{decided['event']} of version {decided['version']} by {decided['by']} at {decided['at']}"
            + (" (signed)" if decided.get("signature") else " (unsigned)"))
    problem = _signature_problem(output_root / model, decided)
    if problem:
        return False, f"{target}: the latest champion decision ({said}) does not hold: {problem}"
    if decided.get("model_sha256") != actual or (version is not None and version != decided["version"]):
        return False, (f"{target}: its files hash to {actual[:12]}, not to those of the latest champion decision "
                       f"({said}: {str(decided.get('model_sha256'))[:12]}); do not ship it")
    return True, f"{target}: files match the latest champion decision ({said}); sha256 {actual}"


def _latest_decision(model_dir: Path) -> dict[str, Any]:
    moves = journal.champion_moves(model_dir / LEDGER)
    if not moves:
        raise SignoffError(f"{model_dir / LEDGER}: no champion decision recorded for {model_dir.name} "
                           "(--output-root names where its runs are archived)")
    return moves[-1]


def _signature_problem(model_dir: Path, decided: dict[str, Any]) -> str | None:
    """What is wrong with the decision's signature (or its absence where the run's params require one)."""
    run = model_dir / decided["run_id"] if decided.get("run_id") else None
    archived = records.ArchivedRun(run) if run is not None and (run / records.MANIFEST).exists() else None
    registry = (archived.params.get("registry") or {}) if archived else {}
    if not decided.get("signature"):
        return "it is unsigned, and the run's params require signatures" if registry.get("require_signatures") \
            else None
    allowed = signatures.allowed_signers(registry)
    if allowed is None:
        return f"it is signed, but no allowed-signers file names the keys (set {signatures.ENVIRONMENT})"
    return signatures.check(decided, archived.manifest.get("sha256") if archived else None, allowed)
