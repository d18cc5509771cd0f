"""The MLflow store, opened the same way by the `signoff` process and by the servability kernel.

Creating MLflow's embedded SQLite store is not safe for two processes at once, and a process
killed meanwhile leaves a store no later run can open; so every opening goes through
:func:`connect`.  It sits beside ``errors`` and ``config`` because both sides of the process
boundary use it: ``analysis`` (inside kernels) and ``release`` (in the `signoff` process).

MLflow is imported lazily: it costs seconds, and `signoff params` or `verify` do not need it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from filelock import FileLock

from runner import records
from runner.errors import SignoffError

# MLflow's defaults retry a dead server for minutes (7 retries, backoff factor 2, 120 s per request):
# a run that loses its server fails in about a minute instead, unless these are set otherwise.
MLFLOW_DEFAULTS = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


TAG = "signoff."  # prefix of every tag Signoff writes


def quiet_defaults() -> dict[str, str]:
    """:data:`MLFLOW_DEFAULTS`, except where the environment sets its own."""
    return {name: os.environ.get(name, value) for name, value in MLFLOW_DEFAULTS.items()}


def embedded_uri(output_root: Path) -> str:
    return f"sqlite:///{(output_root / 'mlflow.db').resolve()}"


def connect(uri: str) -> Any:
    """An MlflowClient on ``uri``; a local SQLite store is created or repaired first, once, under a lock."""
    for name, value in MLFLOW_DEFAULTS.items():  # read by MLflow when it is imported
        os.environ.setdefault(name, value)
    import mlflow
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///"):
        _ready_store(Path(uri.removeprefix("sqlite:///")))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _ready_store(path: Path) -> None:
    """Create the embedded store, or repair one a killed process left half made, serialized across processes.

    MLflow creates its tables and runs its migrations when a store is first opened, which is not safe
    for two processes at once, and a process killed meanwhile leaves a store that no later run can open.
    So the store is built under another name and renamed into place; an existing store that MLflow
    cannot open is set aside and rebuilt if it holds no run or model, and otherwise reported.
    """
    from mlflow import MlflowClient

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(f".{path.name}.lock")):
        if path.exists():
            try:
                MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
                return
            except Exception as exc:
                if _holds_data(path):
                    raise SignoffError(
                        f"MLflow store {path} cannot be opened ({type(exc).__name__}: {str(exc).splitlines()[0]}); it "
                        f"holds runs or models, so Signoff leaves it alone: back it up (cp {path} {path}.bak), then "
                        f"run `mlflow db upgrade sqlite:///{path}`") from None
                aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
                forget_engines(f"sqlite:///{path}")
                for suffix in ("", "-wal", "-shm"):  # WAL mode: the database is the three files together
                    if path.with_name(path.name + suffix).exists():
                        os.replace(path.with_name(path.name + suffix), aside.with_name(aside.name + suffix))
                print(f"signoff: warning: MLflow store {path} was left half made ({type(exc).__name__}) and held no "
                      f"run or model: set aside as {aside.name}, a new one is made", file=sys.stderr)
        building = path.with_name(f".{path.name}.building-{os.getpid()}")
        shutil.copyfile(_empty_store(), building)
        with closing(sqlite3.connect(building)) as db, db:  # where MLflow itself would put the default's artifacts
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                       (str(Path.cwd() / "mlruns" / "0"),))
        os.replace(building, path)  # a rollback-journal database is whole in its one file once committed
    with closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # readers never block writers


def _empty_store() -> Path:
    """A new store exactly as this MLflow version makes one, made once per user and version and copied from
    then on: MLflow's migrations take about 3 s for every new store (a first run, a CI job's clean output
    root).  Kept in the user's cache folder (``$XDG_CACHE_HOME/signoff``); where that is not writable, in a
    temporary folder."""
    import mlflow
    from mlflow import MlflowClient

    for folder in (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "signoff",
                   Path(tempfile.gettempdir()) / f"signoff-{os.getuid()}"):
        template = folder / f"mlflow-{mlflow.__version__}-empty.db"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with FileLock(folder / f".{template.name}.lock"):
                if not template.exists():
                    building = folder / f".{template.name}.building-{os.getpid()}"
                    building.unlink(missing_ok=True)
                    MlflowClient(tracking_uri=f"sqlite:///{building}").search_experiments(max_results=1)
                    forget_engines(f"sqlite:///{building}")
                    os.replace(building, template)
            return template
        except OSError:
            continue
    raise SignoffError("no folder to keep MLflow's empty store in: make $XDG_CACHE_HOME or the temporary folder "
                       "writable")


def forget_engines(uri: str | None = None) -> None:
    """MLflow keeps each store it opened for the life of the process (its store registries' caches), with
    one SQLAlchemy engine per store URI; after the file behind ``uri`` is replaced, both would still read the
    old file.  Without ``uri``: every store this process opened (a long-lived process, such as a test
    session, whose stores are put back from copies)."""
    if "mlflow.store.tracking.sqlalchemy_store" not in sys.modules:
        return  # no store opened: nothing to forget, and MLflow need not be imported to know it
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
    from mlflow.tracking._model_registry.utils import _model_registry_store_registry
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    for registry in (_tracking_store_registry, _model_registry_store_registry):
        if registry is not None:  # made when the first store of its kind is asked for
            registry._get_store_with_resolved_uri.cache_clear()
    for store in (TrackingStore, RegistryStore):
        engines = getattr(store, "_engine_map", {})
        for known in [uri] if uri else list(engines):
            engine = engines.pop(known, None)
            if engine is not None:
                engine.dispose()


def _holds_data(path: Path) -> bool:
    """Whether a store someone could miss holds anything: a run, a registered model, an experiment of its own."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            counts = [db.execute(query).fetchone()[0] for table, query in (
                ("runs", "SELECT count(*) FROM runs"), ("registered_models", "SELECT count(*) FROM registered_models"),
                ("experiments", "SELECT count(*) FROM experiments WHERE experiment_id != 0")) if table in tables]
    except sqlite3.DatabaseError:
        return True  # cannot tell: assume it matters
    return any(counts)


# MLflow 3's UI opens an experiment of this kind on its runs table, not on the GenAI overview
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def experiment(client: Any, model: str, output_root: Path) -> str:
    """The experiment named after the model; on a local store its artifacts live beside the database."""
    found = client.get_experiment_by_name(model)
    if found is not None:
        if EXPERIMENT_KIND[0] not in found.tags:  # made before Signoff said its kind
            client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
        return found.experiment_id
    local = client.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in client.tracking_uri
    location = (output_root / "mlartifacts" / model).resolve().as_uri() if local else None
    try:
        return client.create_experiment(model, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
    except Exception:  # created meanwhile by a concurrent run
        found = client.get_experiment_by_name(model)
        if found is None:
            raise
        return found.experiment_id


def start_run(client: Any, model: str, output_root: Path, run_id: str, started_by: str = "", source: str = "") -> str:
    """The MLflow run that tracks one Signoff run; its id is handed to the infra stage.  MLflow's UI shows
    ``started_by`` as "Created by" and the params file as "Source"."""
    tags = {f"{TAG}run_id": run_id, "mlflow.source.type": "JOB",
            **({"mlflow.user": started_by} if started_by else {}), **({"mlflow.source.name": source} if source else {})}
    return client.create_run(experiment(client, model, output_root), run_name=run_id, tags=tags).info.run_id


def model_files_sha256(folder: Path) -> str:
    """One hash over a downloaded model folder: every file's relative path and sha256, in order.

    ``registered_model_meta`` is left out: MLflow's client writes it while downloading
    (the registered name and version the files were fetched under), it is not stored.
    """
    lines = [
        f"{path.relative_to(folder).as_posix()} {records.sha256_file(path)}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != "registered_model_meta"
    ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
