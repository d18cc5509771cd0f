"""Signoff from Python (a JupyterLab notebook, a script): the same functions the command line calls.

    import runner
    result = runner.signoff("params/credit.yaml", overrides=["data.synthetic.n_rows=5000"])
    result            # in a notebook: the verdict, the gates with their intervals, a link to the report
    runner.approve(result.folder, key="~/.ssh/id_ed25519", note="reviewed")

Errors a user can fix raise :class:`runner.errors.SignoffError` with the same message the command line
prints; nothing here exits the process.  (The run function is ``signoff``, as the command: ``runner.run``
is the sub-package that drives runs.)
"""

from __future__ import annotations

import html
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from runner import mlflow_store, records
from runner.analysis import workspace
from runner.audit import redact
from runner.audit import verify as checks
from runner.errors import SignoffError
from runner.judge import gates
from runner.release import decisions, mlflow_registry
from runner.run import stopping


@dataclass(frozen=True)
class Run:
    """An archived run (or monitor) folder, read through :class:`records.ArchivedRun`."""

    folder: Path
    release: str = field(default="", compare=False)  # what the registry did, when this session made the run

    @cached_property
    def _archived(self) -> records.ArchivedRun:
        return records.ArchivedRun(self.folder)

    @property
    def verdict(self) -> str:
        return self._archived.verdict.verdict

    @property
    def gates(self) -> list[dict[str, Any]]:
        return self._archived.verdict.gates

    @property
    def evidence(self) -> dict[str, Any]:
        return self._archived.evidence

    @property
    def report(self) -> Path:
        return self.folder / "html" / "report.html"

    @property
    def exit_code(self) -> int:
        """What `signoff run` exits with for this verdict: 0 PASS or WARN, 1 BLOCKED, 2 ERROR."""
        return gates.exit_code(self.verdict)

    def __repr__(self) -> str:
        return f"Run({self.verdict}, {self.folder})"

    def _repr_html_(self) -> str:
        """The verdict as a notebook shows it: banner, gates (not passed first, with intervals), links."""
        colour = records.VERDICT_COLOURS.get(self.verdict, "#555")
        order = sorted(self.gates, key=lambda g: g["status"] == "pass")
        rows = "".join(
            f"<tr><td>{html.escape(g['id'])}</td><td><code>{html.escape(g['metric'])}</code></td>"
            f"<td>{html.escape(records.shown(g.get('estimate', g['observed'])))}</td>"
            f"<td>{html.escape(records.interval_text(g))}</td>"
            f"<td>{html.escape(' and '.join(f'{k} {v:g}' for k, v in g['threshold'].items()))}</td>"
            f"<td>{html.escape(g['severity'])}</td><td><b>{html.escape(g['status'].upper())}</b></td></tr>"
            for g in order)
        links = f'<a href="{self.report.as_uri()}" target="_blank">report</a>' if self.report.is_file() else ""
        release = f"<div>registry: {html.escape(self.release)}</div>" if self.release else ""
        return (f'<div style="border-left:10px solid {colour};padding:6px 12px">'
                f'<div style="font-size:22px;font-weight:bold;color:{colour}">{html.escape(self.verdict)}</div>'
                f"<div>{html.escape(records.why(self._archived.verdict.to_json()))}</div>"
                f"<div>run <code>{html.escape(self.folder.name)}</code> · {links}</div>{release}</div>"
                "<table><tr><th>gate</th><th>metric</th><th>observed</th><th>interval</th><th>threshold</th>"
                f"<th>severity</th><th>status</th></tr>{rows}</table>")


def signoff(params: str | Path, overrides: list[str] | tuple[str, ...] = (), *, output_root: str | Path | None = None,
        notebooks: str | Path | None = None, jobs: int | None = None, by: str | None = None,
        key: str | Path | None = None, wait: float = 600) -> Run:
    """Run a params file as `signoff run` does (every stage, gates, report, archive, registry) and return
    the archived run.  ``by`` defaults to the key's principal, else the OS user."""
    from runner.run import forkserver

    jobs = jobs or os.cpu_count() or 1
    # the kernels' fork server imports on the idle core while this process imports Papermill, checks the
    # parameters and prepares the data
    with forkserver.started(jobs, mlflow_store.quiet_defaults()) as server:
        from runner.audit import provenance
        from runner.run import pipeline
        from runner.run.progress import Progress

        layout = layout_for(Path(params), notebooks, output_root)
        with stopping.handled():
            outcome = pipeline.run(Path(params), list(overrides), layout, jobs,
                                   Progress(redact=redact.from_environment().text, notebook=_in_notebook()),
                                   by if by or key else provenance.user(), wait, key=_path(key), server=server)
    return Run(outcome.folder, outcome.release)


def _in_notebook() -> bool:
    """Called from a Jupyter kernel (JupyterLab, nbclient), where a live display replaces the log lines."""
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def load(run_dir: str | Path) -> Run:
    """An archived run folder, to read its verdict, gates and evidence."""
    folder = Path(run_dir).expanduser().resolve()
    if not (folder / records.VERDICT).is_file():
        raise SignoffError(f"{folder}: not a Signoff run folder (no {records.VERDICT})")
    return Run(folder)


def verify(path: str | Path | None = None, tracking_uri: str | None = None, expect_head: str | None = None) \
        -> list[str]:
    """Problems found in the archive under ``path`` (default: the project's outputs/), as `signoff verify`
    finds them (with what MLflow keeps: the given store, MLFLOW_TRACKING_URI, or the embedded one): empty when
    intact."""
    where = Path(path) if path else workspace.project_root() / "outputs"
    return checks.verify(where, kept_for(where, tracking_uri), expect_head)[0]


def kept_for(path: Path, tracking_uri: str | None) -> checks.Kept | None:
    """What MLflow keeps about the archive: the given or configured store, else an embedded one if it exists."""
    root = path if (path / "mlflow.db").exists() else path.parent
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri is None and (root / "mlflow.db").exists():
        uri = mlflow_store.embedded_uri(root)
    return mlflow_registry.kept(mlflow_store.connect(uri)) if uri else None


def approve(run_dir: str | Path, *, by: str | None = None, key: str | Path | None = None, note: str = "",
            waivers: list[decisions.Waiver] | tuple[decisions.Waiver, ...] = (), tracking_uri: str | None = None,
            wait: float = 600) -> str:
    """Sign off a run: its model becomes the champion (the command line's `signoff approve`)."""
    reg, folder = run_registry(Path(run_dir), tracking_uri)
    return decisions.approve(reg, folder, by, _path(key), note, list(waivers), wait, _say)


def reject(run_dir: str | Path, *, note: str, by: str | None = None, key: str | Path | None = None,
           tracking_uri: str | None = None, wait: float = 600) -> str:
    reg, folder = run_registry(Path(run_dir), tracking_uri)
    return decisions.reject(reg, folder, by, _path(key), note, wait, _say)


def promote(model: str, version: str, *, note: str = "", by: str | None = None, key: str | Path | None = None,
            output_root: str | Path | None = None, tracking_uri: str | None = None, wait: float = 600) -> str:
    return decisions.promote(model_registry(model, output_root, tracking_uri), version, by, _path(key), note, wait,
                             _say)


def rollback(model: str, *, note: str, to: str | None = None, by: str | None = None, key: str | Path | None = None,
             output_root: str | Path | None = None, tracking_uri: str | None = None, wait: float = 600) -> str:
    return decisions.rollback(model_registry(model, output_root, tracking_uri), to, by, _path(key), note, wait, _say)


def layout_for(params: Path, notebooks: str | Path | None, output_root: str | Path | None) -> Any:
    """Where a params file's project keeps its notebooks, templates and outputs (overridable)."""
    from runner.run import pipeline

    root = workspace.project_root(params.resolve().parent)
    return pipeline.Layout(notebooks=Path(notebooks) if notebooks else root / "notebooks",
                           templates=root / "templates",
                           output_root=Path(output_root) if output_root else root / "outputs")


def run_registry(run_dir: Path, tracking_uri: str | None) -> tuple[decisions.RegisteredModel, Path]:
    """The registry a run folder belongs to: its model, its output root, its tracking store."""
    folder = run_dir.expanduser().resolve()
    archived = records.ArchivedRun(folder)
    recorded = archived.params.get("registry") or {}
    output_root = folder.parent.parent
    usable = recorded.get("tracking_uri") if "***@" not in str(recorded.get("tracking_uri")) else None
    uri = tracking_uri or mlflow_registry.tracking_uri({"tracking_uri": usable}, output_root)
    return decisions.RegisteredModel(lambda: mlflow_store.connect(uri), archived.verdict.model, output_root), folder


def model_registry(model: str, output_root: str | Path | None, tracking_uri: str | None) -> decisions.RegisteredModel:
    root = Path(output_root) if output_root else workspace.project_root() / "outputs"
    uri = tracking_uri or mlflow_registry.tracking_uri({}, root)
    return decisions.RegisteredModel(lambda: mlflow_store.connect(uri), model, root)


def _path(key: str | Path | None) -> Path | None:
    return Path(key).expanduser() if key else None


def _say(text: str) -> None:
    """A command waiting for the model's lock says so (on stderr, as the command line does)."""
    print(f"signoff: {text}", file=sys.stderr, flush=True)
