"""Read a params file: `extends:` chains, `-p` overrides, defaults, structural checks.

Everything here happens before any notebook runs, so that a typo in a params file
costs the user a second, not a half-finished run.  Checking parameters against
the notebooks themselves is :mod:`runner.run.paramcheck`'s job.
"""

from __future__ import annotations

import copy
import datetime as _dt
import importlib.util
import math
import re
from pathlib import Path
from typing import Any

import yaml

from runner.errors import SignoffError

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MODEL_TYPES = ("hist_gradient_boosting", "linear", "logistic_regression", "random_forest", "xgboost", "lightgbm")
CLASSIFICATION_ONLY = {"logistic_regression": "linear"}  # a model type a regression cannot use: what to use instead
TASKS = ("auto", "binary", "multiclass", "regression")  # data.task (runner.analysis.tasks infers "auto")
OWN_NOTEBOOK = "notebook"  # stages.<stage>.notebook: the user's notebook run in place of that stage's
EXTRA_MODULES = {"xgboost": "xgboost", "lightgbm": "lightgbm"}  # model types of the boosters extra: their module

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "data": {
        "path": None,
        "current_path": None,
        "target": "default",
        "task": "auto",
        "positive_label": None,
        "sensitive_features": ["sex", "age_band"],
        "synthetic": {"n_rows": 10000, "drift": 0.0, "bias": 0.0, "leak": False, "task": "binary"},
    },
    "stages": {},
    "gates": [],
    "gates_confidence": 0.95,  # the confidence level of every interval a gate judges
    "monitor_gates": [],  # judged by `signoff monitor` on the champion and the newest data
    "execution": {"cell_timeout": 600, "stage_timeout": 1800},
    "checklist": {},
    "checklist_required": False,
    "card": {},
    # allowed_signers: an OpenSSH allowed-signers file (relative to the params file); approvers: the principals who
    # may approve; require_signatures: every run and decision signed with a key in that file (`--key`)
    "registry": {"tracking_uri": None, "promotion": "manual", "allowed_signers": None, "approvers": [],
                 "require_signatures": False},
}
TOP_LEVEL = {"extends", "model", "seed", "data", "stages", "gates", "gates_confidence", "monitor_gates", "execution",
             "checklist", "checklist_required", "card", "registry"}
REGISTRY_KEYS = set(DEFAULTS["registry"])
PROMOTIONS = ("auto", "manual")
CARD_KEYS = {"intended_use", "out_of_scope", "owners", "limitations"}
DATA_KEYS = set(DEFAULTS["data"])
SYNTHETIC_KEYS = set(DEFAULTS["data"]["synthetic"])
EXECUTION_KEYS = set(DEFAULTS["execution"])
GATE_KEYS = {"id", "metric", "min", "max", "vs_champion", "champion_only", "waivable", "severity", "inconclusive",
             "why"}
VS_CHAMPION_KEYS = ("max_drop", "min_gain")
SEVERITIES = ("block", "warn")
INCONCLUSIVE = ("warn", "block")  # what a gate whose interval straddles its bound does; the first is the default


def load_params(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Resolve a params file into the plain mapping a run is made from.

    Returns the merged, defaulted, checked parameters; data paths are made
    absolute relative to the params file that named them.
    """
    path = Path(path)
    raw = _read_with_extends(path.resolve(), seen=())
    for override in overrides:
        _apply_override(raw, override, path)
    if raw.get("data", {}).get("path") and "target" not in raw.get("data", {}):
        raise SignoffError(f"{path}: data.target is required when data.path is set (the name of the label column)")
    params = _deep_merge(copy.deepcopy(DEFAULTS), raw)
    _check(params, path)
    return params


def _read_with_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise SignoffError(f"{seen[-1]}: extends: forms a cycle ({chain})")
    doc = _read_yaml(path)
    _resolve_data_paths(doc, path.parent)
    base_name = doc.pop("extends", None)
    if base_name is None:
        return doc
    if not isinstance(base_name, str):
        raise SignoffError(f"{path}: extends: expected a path to another params file, got {base_name!r}")
    base_path = (path.parent / base_name).resolve()
    if not base_path.is_file():
        raise SignoffError(f"{path}: extends: no such file {base_path}")
    return _deep_merge(_read_with_extends(base_path, (*seen, path)), doc)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignoffError(f"{path}: no such params file") from None
    except OSError as exc:
        raise SignoffError(f"{path}: cannot read params file ({exc.strerror})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SignoffError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SignoffError(f"{path}: expected a mapping of parameters at the top level, got {type(doc).__name__}")
    return doc


def _resolve_data_paths(doc: dict[str, Any], base: Path) -> None:
    """Make data paths and a stage's own notebook (``stages.<stage>.notebook``) absolute, so a run does
    not depend on the working directory."""
    data = doc.get("data")
    if isinstance(data, dict):
        for key in ("path", "current_path"):
            value = data.get(key)
            if isinstance(value, str) and value:
                data[key] = str((base / value).resolve())
    registry = doc.get("registry")
    if isinstance(registry, dict) and isinstance(registry.get("allowed_signers"), str) and registry["allowed_signers"]:
        registry["allowed_signers"] = str((base / registry["allowed_signers"]).resolve())
    for values in (doc.get("stages") or {}).values() if isinstance(doc.get("stages"), dict) else ():
        if isinstance(values, dict) and isinstance(values.get(OWN_NOTEBOOK), str) and values[OWN_NOTEBOOK]:
            values[OWN_NOTEBOOK] = str((base / values[OWN_NOTEBOOK]).resolve())


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_override(raw: dict[str, Any], override: str, path: Path) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise SignoffError(f"-p {override!r}: expected KEY=VALUE, e.g. -p data.synthetic.n_rows=5000")
    parts = key.split(".")
    if not all(parts):
        raise SignoffError(f"-p {override!r}: {key!r} is not a dotted key such as stages.train.max_iter")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise SignoffError(f"-p {key}: value {text!r} is not a YAML scalar: {exc}") from None
    if isinstance(value, str) and value and (key in ("data.path", "data.current_path", "registry.allowed_signers")
                                             or (parts[0] == "stages" and parts[-1] == OWN_NOTEBOOK)):
        value = str(Path(value).resolve())
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SignoffError(f"{path}: -p {key}: {part!r} holds {type(child).__name__}, not a mapping")
        node = child
    node[parts[-1]] = value


def _check(params: dict[str, Any], path: Path) -> None:
    def fail(key: str, expected: str) -> None:
        raise SignoffError(f"{path}: {key}: {expected}")

    unknown = sorted(set(params) - TOP_LEVEL)
    if unknown:
        fail(unknown[0], f"unknown top-level key; expected one of {', '.join(sorted(TOP_LEVEL - {'extends'}))}")
    check_plain(params, "", path)
    model = params.get("model")
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        fail("model", f"expected a name matching [a-z0-9][a-z0-9_-]* (it names a folder), got {model!r}")
    if not _is_int(params["seed"]):
        fail("seed", f"expected an integer, got {params['seed']!r}")
    data = params["data"]
    if not isinstance(data, dict):
        fail("data", "expected a mapping")
    _check_keys(data, DATA_KEYS, "data", path)
    if not isinstance(data["target"], str) or not data["target"]:
        fail("data.target", f"expected a column name, got {data['target']!r}")
    features = data["sensitive_features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        fail("data.sensitive_features", f"expected a list of column names, got {features!r}")
    synthetic = data["synthetic"]
    if not isinstance(synthetic, dict):
        fail("data.synthetic", "expected a mapping with n_rows, drift, bias, leak, task")
    _check_keys(synthetic, SYNTHETIC_KEYS, "data.synthetic", path)
    if not _is_int(synthetic["n_rows"]) or synthetic["n_rows"] < 100:
        fail("data.synthetic.n_rows", f"expected an integer >= 100, got {synthetic['n_rows']!r}")
    for knob in ("drift", "bias"):
        if not _is_number(synthetic[knob]):
            fail(f"data.synthetic.{knob}", f"expected a number, got {synthetic[knob]!r}")
    if not isinstance(synthetic["leak"], bool):
        fail("data.synthetic.leak", f"expected true or false, got {synthetic['leak']!r}")
    if data["task"] not in TASKS:
        fail("data.task", f"expected one of {', '.join(TASKS)}, got {data['task']!r}")
    if synthetic["task"] not in TASKS[1:]:
        fail("data.synthetic.task", f"expected one of {', '.join(TASKS[1:])}, got {synthetic['task']!r}")
    stages = params["stages"]
    if not isinstance(stages, dict):
        fail("stages", "expected a mapping of stage name to that notebook's parameters")
    for stage, values in stages.items():
        if not isinstance(values, dict):
            fail(f"stages.{stage}", "expected a mapping of parameter names to values")
    model_type = stages.get("train", {}).get("model_type", MODEL_TYPES[0])
    if model_type not in MODEL_TYPES:
        fail("stages.train.model_type", f"expected one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    if model_type in EXTRA_MODULES and importlib.util.find_spec(EXTRA_MODULES[model_type]) is None:
        fail("stages.train.model_type", f"{model_type} needs the boosters extra, which is not installed: "
                                        "pip install -e '.[boosters]'")
    execution = params["execution"]
    if not isinstance(execution, dict):
        fail("execution", "expected a mapping with cell_timeout and stage_timeout (seconds)")
    _check_keys(execution, EXECUTION_KEYS, "execution", path)
    for key in EXECUTION_KEYS:
        if not _is_number(execution[key]) or execution[key] <= 0:
            fail(f"execution.{key}", f"expected a number of seconds > 0, got {execution[key]!r}")
    confidence = params["gates_confidence"]
    if not _is_number(confidence) or not 0.5 <= confidence < 1:
        fail("gates_confidence", f"expected a confidence level such as 0.95 (at least 0.5, below 1), "
                                 f"got {confidence!r}")
    _check_gates(params["gates"], path)
    _check_gates(params["monitor_gates"], path, "monitor_gates")
    if not isinstance(params["checklist"], dict) or not all(isinstance(v, str) for v in params["checklist"].values()):
        fail("checklist", "expected a mapping of checklist item id to an attestation (text, who, when)")
    if not isinstance(params["checklist_required"], bool):
        fail("checklist_required", f"expected true or false, got {params['checklist_required']!r}")
    if not isinstance(params["card"], dict):
        fail("card", f"expected a mapping with {', '.join(sorted(CARD_KEYS))}")
    _check_keys(params["card"], CARD_KEYS, "card", path)
    registry = params["registry"]
    if not isinstance(registry, dict):
        fail("registry", f"expected a mapping with {', '.join(sorted(REGISTRY_KEYS))}")
    _check_keys(registry, REGISTRY_KEYS, "registry", path)
    if registry["tracking_uri"] is not None and (not isinstance(registry["tracking_uri"],
                                                                str) or not registry["tracking_uri"]):
        fail("registry.tracking_uri",
             f"expected an MLflow tracking URI such as http://127.0.0.1:5000, got {registry['tracking_uri']!r}")
    if registry["promotion"] not in PROMOTIONS:
        fail("registry.promotion", f"expected auto or manual, got {registry['promotion']!r}")
    signers = registry["allowed_signers"]
    if signers is not None and (not isinstance(signers, str) or not Path(signers).is_file()):
        fail("registry.allowed_signers", f"expected an OpenSSH allowed-signers file ('PRINCIPAL ssh-ed25519 AAAA…' "
             f"per line), got {signers!r}: no such file")
    approvers = registry["approvers"]
    if not isinstance(approvers, list) or not all(isinstance(a, str) and a for a in approvers):
        fail("registry.approvers", f"expected a list of principals (as in the allowed-signers file), got {approvers!r}")
    if not isinstance(registry["require_signatures"], bool):
        fail("registry.require_signatures", f"expected true or false, got {registry['require_signatures']!r}")


def _check_gates(gates: Any, path: Path, key: str = "gates") -> None:
    if not isinstance(gates, list):
        raise SignoffError(f"{path}: {key}: expected a list of gates, got {type(gates).__name__}")
    seen: set[str] = set()
    for index, gate in enumerate(gates):
        where = f"{key}[{index}]"
        if not isinstance(gate, dict):
            raise SignoffError(f"{path}: {where}: expected a mapping with id, metric, min or max")
        _check_keys(gate, GATE_KEYS, where, path)
        gate_id = gate.get("id")
        if not isinstance(gate_id, str) or not gate_id:
            raise SignoffError(f"{path}: {where}.id: expected a non-empty string")
        if gate_id in seen:
            raise SignoffError(f"{path}: {where}.id: {gate_id!r} is used by two gates")
        seen.add(gate_id)
        if not isinstance(gate.get("metric"), str) or not gate["metric"]:
            raise SignoffError(f"{path}: {where}.metric: expected an evidence name such as validate.roc_auc")
        versus = gate.get("vs_champion")
        if versus is not None:
            if "min" in gate or "max" in gate:
                raise SignoffError(f"{path}: {where} ({gate_id}): vs_champion replaces min/max; give one or the other")
            if not isinstance(versus, dict) or len(versus) != 1 or next(iter(versus)) not in VS_CHAMPION_KEYS \
                    or not _is_number(next(iter(versus.values()))):
                raise SignoffError(f"{path}: {where}.vs_champion ({gate_id}): expected {{max_drop: NUMBER}} "
                                   f"or {{min_gain: NUMBER}}, got {versus!r}")
        elif "min" not in gate and "max" not in gate:
            raise SignoffError(f"{path}: {where} ({gate_id}): expected min or max (or both), or vs_champion")
        for bound in ("min", "max"):
            if bound in gate and not _is_number(gate[bound]):
                raise SignoffError(f"{path}: {where}.{bound} ({gate_id}): expected a number, got {gate[bound]!r}")
        if "min" in gate and "max" in gate and gate["min"] > gate["max"]:
            raise SignoffError(f"{path}: {where} ({gate_id}): min {gate['min']:g} is greater than max {gate['max']:g}; "
                               "no value could pass")
        for flag in ("champion_only", "waivable"):
            if flag in gate and not isinstance(gate[flag], bool):
                raise SignoffError(f"{path}: {where}.{flag} ({gate_id}): expected true or false, got {gate[flag]!r}")
        if gate.get("severity", "block") not in SEVERITIES:
            raise SignoffError(
                f"{path}: {where}.severity ({gate_id}): expected block or warn, got {gate['severity']!r}"
            )
        if gate.get("inconclusive", INCONCLUSIVE[0]) not in INCONCLUSIVE:
            raise SignoffError(f"{path}: {where}.inconclusive ({gate_id}): expected warn (a person decides) or block "
                               f"(an undecided gate blocks like a failed one), got {gate['inconclusive']!r}")


def _check_keys(mapping: dict[str, Any], allowed: set[str], where: str, path: Path) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise SignoffError(f"{path}: {where}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(allowed))}")


def check_plain(value: Any, key: str, path: Path) -> None:
    """Refuse anything but JSON-like data: values become code in a notebook.

    YAML happily produces dates, sets and bytes; Papermill would write a date as
    bare ``2024-01-01`` (arithmetic), so only str, int, float, bool, None, lists
    and string-keyed mappings are let through.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_plain(item, f"{key}[{index}]", path)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise SignoffError(f"{path}: {key}: keys must be strings, got {name!r}")
            check_plain(item, f"{key}.{name}" if key else name, path)
        return
    kind = "a date (quote it to pass a string)" if isinstance(value, (_dt.date, _dt.datetime)) else type(value).__name__
    raise SignoffError(f"{path}: {key}: expected plain data (string, number, boolean, null, list, mapping), got {kind}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by several keys out in full, never as an &anchor/*alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_params(params: dict[str, Any]) -> str:
    """The resolved params as YAML, in the order the user wrote them."""
    return yaml.dump(params, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
