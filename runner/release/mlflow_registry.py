"""MLflow: one tracking run per `signoff run`, one model version per releasable run, aliases.

The registry is where a release becomes visible to whoever serves models, so it
is written last and read back: a version exists only for a PASS or WARN run,
``challenger`` marks the newest candidate and ``champion`` the model in
production.  Decisions that move ``champion`` live in :mod:`runner.release.decisions`.

MLflow is imported lazily: it costs seconds, and `signoff params` or `verify`
do not need it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import posixpath
import re
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import mlflow_store, records
from runner.audit import redact, verify
from runner.errors import SignoffError

SERVER_TIMEOUT = 10.0  # seconds a tracking server has to answer before a run starts
CHAMPION = "champion"
CURRENT_CHAMPION = "@champion"  # compare with whichever version holds the alias when the run starts
CHALLENGER = "challenger"
ARCHIVED_TAG = f"{mlflow_store.TAG}archived"  # on an MLflow run: the folder its Signoff run was archived in
PARAM_VALUE_LIMIT = 6000  # MLflow refuses longer param values
NAME_LIMIT = 250  # MLflow's longest metric or param name
NAMES_FILE = "mlflow_names.json"  # in a run folder: MLflow name -> evidence or param name, for the names that differ
# What MLflow accepts in a metric or param name on every platform (colons are refused on Windows)
MLFLOW_NAME_CHARACTER = re.compile(r"[\w.\- ]")
BATCH = 100  # params per log_batch call (MLflow's limit)


def tracking_uri(registry: dict[str, Any], output_root: Path) -> str:
    """params ``registry.tracking_uri``, else ``MLFLOW_TRACKING_URI``, else SQLite under the output root."""
    return (
        registry.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or mlflow_store.embedded_uri(output_root)
    )


def check_store(uri: str) -> None:
    """Refuse, in seconds and before any stage runs, a store that cannot be opened: a local file that is
    not an SQLite database, or a tracking server that does not answer within :data:`SERVER_TIMEOUT`."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if path.is_dir():
            raise SignoffError(f"MLflow store {path}: is a directory, expected an SQLite file (registry.tracking_uri)")
        if path.exists():
            try:
                with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
                    db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                raise SignoffError(f"MLflow store {path}: cannot be opened ({exc}); if it is not your store, move it "
                                   "away and the next run creates a new one, else restore it from a backup") from None
    elif uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT).close()
        except urllib.error.HTTPError:
            return  # it answered; what it thinks of us shows when the run is tracked
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SignoffError(f"MLflow tracking server {redact.redact_uri(uri)} did not answer within "
                               f"{SERVER_TIMEOUT:g} s ({reason}); check registry.tracking_uri or "
                               "MLFLOW_TRACKING_URI, and that the server is up") from None


@dataclass(frozen=True)
class Tracking:
    """A run's link to MLflow: the client, the MLflow run, and the champion it is compared with."""

    client: Any
    mlflow_run: str
    champion: dict[str, Any] | None  # see fetch_champion; None: no champion yet
    champion_dir: str  # where the champion's files were put ("" if none)


def open_run(uri: str, model: str, output_root: Path, run_id: str, dest: Path,
             champion_version: str = CURRENT_CHAMPION, started_by: str = "", source: str = "") -> Tracking:
    """Connect, open the MLflow run, and fetch the champion into ``dest`` (hash-checked).

    ``champion_version``: the version to compare with; by default whichever holds the alias now
    (a re-run names the one its original was compared with, "" for none).
    """
    try:
        client = mlflow_store.connect(uri)
        mlflow_run = mlflow_store.start_run(client, model, output_root, run_id, started_by, source)
        if champion_version == CURRENT_CHAMPION:
            champion_version = alias(client, model, CHAMPION) or ""
        champion = fetch_champion(client, model, champion_version, dest) if champion_version else None
    except SignoffError:
        raise
    except Exception as exc:
        raise SignoffError(f"MLflow at {redact.redact_uri(uri)}: {type(exc).__name__}: {exc}") from exc
    return Tracking(client, mlflow_run, champion, str(dest) if champion else "")


def log_run(client: Any, mlflow_run: str, params: dict[str, Any], facts: dict[str, Any], tags: dict[str, str],
            folder: Path) -> None:
    """Params flattened, numeric evidence as metrics, tags, and the archived run folder as artifacts."""
    from mlflow.entities import Metric, Param, RunTag

    flat = [Param(mlflow_name(k), v) for k, v in flatten_params(params).items()]
    for start in range(0, len(flat), BATCH):
        client.log_batch(mlflow_run, params=flat[start:start + BATCH])
    now = int(time.time() * 1000)
    metrics = [Metric(mlflow_name(k), v, now, 0) for k, v in numeric(facts).items()]
    for start in range(0, len(metrics), 1000):
        client.log_batch(mlflow_run, metrics=metrics[start:start + 1000])
    client.log_batch(mlflow_run, tags=[RunTag(f"{mlflow_store.TAG}{k}", v) for k, v in tags.items()])
    client.log_artifacts(mlflow_run, str(folder))


def finish_run(client: Any, mlflow_run: str, verdict: str, folder: Path) -> None:
    """End the tracked run, its name leading with the verdict: the column MLflow's runs table always shows."""
    client.update_run(mlflow_run, name=f"{verdict} {folder.name}")
    end_run(client, mlflow_run, "FINISHED" if verdict in ("PASS", "WARN") else "FAILED", folder)


def end_run(client: Any, mlflow_run: str, status: str, folder: Path) -> None:
    """FINISHED, FAILED or KILLED (a run stopped by a signal); called once the run is archived in ``folder``,
    which tag ``signoff.archived`` records (the infra stage's model logging may have ended the run before)."""
    client.set_tag(mlflow_run, ARCHIVED_TAG, str(folder.resolve()))
    client.set_terminated(mlflow_run, status)


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys; lists (gates) as JSON, cut to MLflow's length limit."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_params(value, f"{name}."))
            continue
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
        flat[name] = text if len(text) <= PARAM_VALUE_LIMIT else text[: PARAM_VALUE_LIMIT - 1] + "…"
    return flat


def mlflow_name(name: str) -> str:
    """``name`` as MLflow accepts it: unchanged when it can be, else every other character replaced by
    ``_`` and a hash of the original appended, so that two names never meet.

    Evidence names carry column names (``eda.missing_rate.<column>``), and columns are called
    anything (``ratio (%)``, ``<b>``, ``€``); MLflow refuses a whole batch for one such name.
    """
    if len(name) <= NAME_LIMIT and all(MLFLOW_NAME_CHARACTER.match(c) for c in name) \
            and posixpath.normpath(name) == name and not name.startswith(".."):
        return name
    tail = "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    safe = "".join(c if MLFLOW_NAME_CHARACTER.match(c) else "_" for c in name)
    return safe[: NAME_LIMIT - len(tail)] + tail


def renamed(names: list[str]) -> dict[str, str]:
    """MLflow name -> original name, for every name :func:`mlflow_name` had to change (kept in the archive)."""
    return {mlflow_name(n): n for n in names if mlflow_name(n) != n}


def numeric(facts: dict[str, Any]) -> dict[str, float]:
    """The evidence MLflow can chart: finite numbers (booleans as 0/1)."""
    return {
        key: float(value)
        for key, value in facts.items()
        if isinstance(value, (int, float)) and math.isfinite(float(value))
    }


def ensure_model(client: Any, model: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def anchor(client: Any, model: str, head: str) -> None:
    """The model ledger's head hash, kept outside the archive: a truncated ledger no longer matches it."""
    ensure_model(client, model)
    client.set_registered_model_tag(model, f"{mlflow_store.TAG}ledger_head", head)


def anchored_head(client: Any, model: str) -> str | None:
    """The ledger head kept in MLflow (None if the model was never tracked)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(model).tags.get(f"{mlflow_store.TAG}ledger_head")
    except MlflowException:
        return None


def archived_runs(client: Any, model_dir: Path) -> set[str]:
    """The runs MLflow records as archived in ``model_dir`` (a shared server also knows other archives'):
    Signoff ends an MLflow run once its run is archived, and tags where."""
    found = client.get_experiment_by_name(model_dir.name)
    if found is None:
        return set()
    ids, token, here = set(), None, model_dir.resolve()
    while True:
        page = client.search_runs([found.experiment_id], max_results=1000, page_token=token)
        ids |= {Path(r.data.tags[ARCHIVED_TAG]).name for r in page
                if ARCHIVED_TAG in r.data.tags and Path(r.data.tags[ARCHIVED_TAG]).parent == here}
        token = page.token
        if not token:
            return ids


def register(client: Any, model: str, model_uri: str, mlflow_run: str, tags: dict[str, str]) -> str:
    """A new version of registered model ``model`` with alias ``challenger``; returns its version."""
    ensure_model(client, model)
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(
        model, model_uri, run_id=mlflow_run, tags={f"{mlflow_store.TAG}{k}": v for k, v in tags.items()},
        model_id=model_id
    )
    client.set_registered_model_alias(model, CHALLENGER, version.version)
    return str(version.version)


def alias(client: Any, model: str, name: str) -> str | None:
    """The version an alias points to, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, name).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def move_alias(client: Any, model: str, name: str, version: str, expected: str | None) -> None:
    """Point ``name`` at ``version`` if it still points at ``expected``, and read it back.

    MLflow's alias update is last-writer-wins; callers hold the model's lock, and this
    check catches a writer outside Signoff.
    """
    current = alias(client, model, name)
    if current != expected:
        raise SignoffError(
            f"model {model}: alias {name} points to version {current or 'none'}, not {expected or 'none'} as this "
            "decision expected; someone else moved it. Look at `signoff list` and decide again"
        )
    client.set_registered_model_alias(model, name, version)
    after = alias(client, model, name)
    if after != version:
        raise SignoffError(f"model {model}: alias {name} reads back as version {after}, not {version}")


def version_tags(client: Any, model: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model, version, f"{mlflow_store.TAG}{key}", value)


def kept(client: Any) -> verify.Kept:
    """What this MLflow store keeps about the archive, for `signoff verify` and the champion checks."""
    return verify.Kept(head=lambda model: anchored_head(client, model),
                       archived_runs=lambda model_dir: archived_runs(client, model_dir),
                       champion=lambda model: champion_state(client, model))


def champion_state(client: Any, model: str) -> tuple[str | None, str]:
    """The version ``champion`` points to, and when the registered model last changed (MLflow keeps no history
    of an alias: this is the nearest it says about when the alias moved)."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(model)
    except MlflowException:
        return None, ""
    version = registered.aliases.get(CHAMPION)
    stamp = registered.last_updated_timestamp
    when = dt.datetime.fromtimestamp(stamp / 1000, dt.UTC).isoformat(timespec="seconds") if stamp else "unknown"
    return (str(version) if version is not None else None), when


def aliases(client: Any, model: str) -> dict[str, str]:
    """Alias name -> version (search results do not carry aliases; the registered model does)."""
    from mlflow.exceptions import MlflowException

    try:
        return {name: str(version) for name, version in client.get_registered_model(model).aliases.items()}
    except MlflowException:
        return {}


def versions(client: Any, model: str) -> list[Any]:
    """Every version of the registered model, oldest first (none if it was never registered)."""
    found = client.search_model_versions(f"name = '{model}'")
    return sorted(found, key=lambda v: int(v.version))


def verified_files(client: Any, model: str, version: str, dest: Path) -> tuple[Path, str]:
    """Download a version's model files and check them against the hash recorded at registration."""
    import mlflow

    recorded = client.get_model_version(model, version).tags.get(f"{mlflow_store.TAG}model_sha256")
    files = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model}/{version}", dst_path=str(dest)))
    actual = mlflow_store.model_files_sha256(files)
    if recorded != actual:
        raise SignoffError(
            f"model {model} version {version}: its files hash to {actual[:12]}, registration recorded "
            f"{(recorded or 'nothing')[:12]}; refusing a model that changed after registration"
        )
    return files, actual


def fetch_run_files(client: Any, mlflow_run: str, names: tuple[str, ...], dest: Path) -> Path:
    """Download files of an archived run from its MLflow run into ``dest``, each checked against the
    run's own manifest: a monitor loads the champion's training artifacts from there."""
    manifest = json.loads(Path(client.download_artifacts(mlflow_run, records.MANIFEST, str(dest))).read_text("utf-8"))
    for name in names:
        client.download_artifacts(mlflow_run, name, str(dest))
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and p.name != records.MANIFEST):
        relative = str(path.relative_to(dest))
        recorded = manifest["files"].get(relative, {}).get("sha256")
        if recorded != records.sha256_file(path):
            raise SignoffError(f"MLflow run {mlflow_run}: {relative} does not match the archived run's manifest; "
                               "refusing files that changed after the run")
    return dest


def fetch_champion(client: Any, model: str, version: str, dest: Path) -> dict[str, Any]:
    """Download the champion's model files and evidence into ``dest``, checking the files' hash first.

    Returns what the run records about the champion.  A model whose files no longer
    hash to what was recorded at registration is refused.
    """
    entry = client.get_model_version(model, version)
    files, actual = verified_files(client, model, version, dest / "model")
    evidence_file = client.download_artifacts(entry.run_id, "evidence.json", str(dest))
    champion = {
        "version": version,
        "mlflow_run_id": entry.run_id,
        "signoff_run_id": entry.tags.get(f"{mlflow_store.TAG}run_id"),
        "model_sha256": actual,
        "model_dir": str(files),
        "evidence": json.loads(Path(evidence_file).read_text(encoding="utf-8")),
    }
    records.write_json(dest / "champion.json", champion)
    return champion
