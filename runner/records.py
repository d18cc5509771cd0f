"""The records a run leaves, as every room reads and writes them: the verdict, the archived run folder,
file hashes and the evidence conventions.

Kept outside the rooms because all of them share it: kernels record evidence by these conventions,
the pipeline writes the verdict, the audit trail hashes the files, releases and reviewers read them
back.  Every reader of an archived run goes through :class:`ArchivedRun`, so a run folder written by
an older Signoff reads the same everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from runner.errors import SignoffError

NOT_APPLICABLE = "not_applicable"  # evidence ``<scope>.not_applicable``: why a stage recorded no figures there
INTERVAL_ENDS = ("_ci_low", "_ci_high")  # evidence ``<name>_ci_low``/``_ci_high``: the sampling interval of ``<name>``
UNDECIDED = ("fail", "missing", "inconclusive")  # gate outcomes a run cannot be released on without a person
VERDICT = "verdict.json"
EVIDENCE = "evidence.json"
PARAMS = "params.yaml"
MANIFEST = "manifest.json"
PROVENANCE = "provenance.json"
DECISIONS = "decisions.jsonl"  # per run, appended after it was archived (not in its manifest)
MONITOR_SUFFIX = ".monitor"  # outputs/<model>.monitor: a model name cannot contain a dot, so no clash
VERDICT_COLOURS = {"PASS": "#1e8449", "WARN": "#b9770e", "BLOCKED": "#c0392b", "ERROR": "#7b241c"}  # pages, notebooks


@dataclass
class Verdict:
    """What one run (or monitor) decided and why, as ``verdict.json`` holds it.

    ``extra`` keeps what only some runs record (a monitor's ``current``, ``labels``, ``not_evaluated``)
    and anything a later Signoff adds, so reading and writing a verdict never loses a key.
    """

    model: str = ""
    run_id: str = ""
    verdict: str = "ERROR"  # PASS, WARN, BLOCKED or ERROR (a file that says none fails closed)
    gates: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checklist: list[dict[str, Any]] = field(default_factory=list)
    gate_policy_changes: list[dict[str, Any]] = field(default_factory=list)
    params_file: str = ""
    started: str = ""
    started_by: str = ""
    rerun_of: str | None = None
    finished: str | None = None
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    champion: dict[str, Any] | None = None
    error: str | None = None  # why the run ended in ERROR, when it did not get as far as its gates
    registry_error: str | None = None  # MLflow could not be reached: the run is ERROR, its gates still shown
    extra: dict[str, Any] = field(default_factory=dict)

    OMITTED_WHEN_EMPTY = ("error", "registry_error")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, path: Path) -> Verdict:
        return cls.from_json(_read_json(path))

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        for name in self.OMITTED_WHEN_EMPTY:
            if data[name] is None:
                del data[name]
        return {**data, **self.extra}

    def write(self, path: Path) -> None:
        write_json(path, self.to_json())

    @property
    def failed_gates(self) -> list[str]:
        """Gates that did not pass: failed, without evidence, or (on an interval) undecided."""
        return [g["id"] for g in self.gates if g.get("status") in UNDECIDED]


def interval_text(gate: dict[str, Any]) -> str:
    """A checked gate's interval as the terminal and the report show it (empty for a gate judged on a point)."""
    if not gate.get("interval"):
        return ""
    low, high = gate["interval"]
    level = f"{gate['level']:.0%} " if gate.get("level") else ""
    return f"{level}[{low:.4g}, {high:.4g}]"


def blocks(gate: dict[str, Any]) -> bool:
    """A checked gate that blocks the release: no evidence (fail closed); failed, if it blocks; undecided, if it
    blocks and says ``inconclusive: block`` (by default an undecided gate asks for a person instead)."""
    blocking = gate.get("severity", "block") == "block"
    return gate["status"] == "missing" or (blocking and gate["status"] == "fail") or \
        (blocking and gate["status"] == "inconclusive" and gate.get("inconclusive") == "block")


def why(verdict: dict[str, Any]) -> str:
    """The verdict and its reason in one sentence, naming the gates (or the stage) it rests on."""
    gates, name = verdict["gates"], verdict["verdict"]
    if name == "ERROR":
        broken = [s["name"] for s in verdict.get("stages", []) if s.get("status") == "failed"]
        reason = verdict.get("error") or verdict.get("registry_error") or \
            (f"stage {', '.join(broken)} failed" if broken else "the run did not finish")
        return f"ERROR: {reason}; nothing can be released from this run."
    if name == "BLOCKED":
        return f"BLOCKED by {_listed([g for g in gates if blocks(g)])}."
    if name == "WARN":
        waiting = [g for g in gates if g["status"] in ("fail", "inconclusive") and
                   (g["status"] == "fail" or g["severity"] == "block")]
        return f"WARN: nothing blocks, but {_listed(waiting)}; a person must approve before it is released."
    undecided = [g["id"] for g in gates if g["status"] != "pass"]
    if not undecided:
        return f"PASS: all {len(gates)} gates passed."
    return (f"PASS: {len(gates) - len(undecided)} of {len(gates)} gates passed and none failed; "
            f"{', '.join(undecided)} (warnings) could not decide on these rows.")


def _listed(gates: list[dict[str, Any]], first: int = 3) -> str:
    """The first gates, each with what it found; how many more."""
    def one(g: dict[str, Any]) -> str:
        if g["status"] == "missing":
            return f"{g['id']} (no evidence {g['metric']})"
        bounds = " and ".join(f"{k} {v:g}" for k, v in g["threshold"].items())
        interval = interval_text(g)
        found = f"{shown(g.get('estimate', g.get('observed')))}" + (f" {interval}" if interval else "")
        return f"{g['id']} ({g['metric']} {found}, {g['status']} against {bounds})"

    text = "; ".join(one(g) for g in gates[:first])
    return text + (f"; and {len(gates) - first} more" if len(gates) > first else "")


def shown(value: Any) -> str:
    """A recorded figure as Signoff prints it: four significant digits for a float."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class ArchivedRun:
    """An archived run folder, read lazily; a file that is missing or unreadable is a SignoffError naming it."""

    folder: Path

    @cached_property
    def verdict(self) -> Verdict:
        return Verdict.from_json(self._json(VERDICT))

    @cached_property
    def evidence(self) -> dict[str, Any]:
        return self._json(EVIDENCE)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return self._json(MANIFEST)

    @cached_property
    def provenance(self) -> dict[str, Any]:
        return self._json(PROVENANCE)

    @cached_property
    def params(self) -> dict[str, Any]:
        try:
            params = yaml.safe_load((self.folder / PARAMS).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise self._unreadable(PARAMS, exc) from None
        if not isinstance(params, dict):
            raise self._unreadable(PARAMS, "not a mapping")
        return params

    @cached_property
    def decisions(self) -> list[dict[str, Any]]:
        """Every decision line recorded for the run, oldest first (none yet: empty)."""
        return read_jsonl(self.folder / DECISIONS)

    @property
    def sealed(self) -> bool:
        """Whether the run was archived whole: its manifest exists (a run still being written has none)."""
        return (self.folder / MANIFEST).is_file()

    def _json(self, name: str) -> dict[str, Any]:
        try:
            return _read_json(self.folder / name)
        except SignoffError as exc:
            raise self._unreadable(name, exc.__cause__ or exc) from None

    def _unreadable(self, name: str, why: object) -> SignoffError:
        return SignoffError(f"{self.folder}: not an archived run folder ({name}: {why})")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SignoffError(f"{path}: {exc}") from exc
    if not isinstance(value, dict):
        raise SignoffError(f"{path}: expected a JSON object")
    return value


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line; a file not written yet holds none."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
