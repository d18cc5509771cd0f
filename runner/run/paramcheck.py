"""Check every parameter bound for a notebook against that notebook's parameters cell.

Papermill writes ``name = value`` lines into the notebook, so a name must be one
the notebook declares (which also makes it a Python identifier) and a value must
match the declared annotation.  The declarations are read with
``papermill.inspect_notebook``; annotations are checked with typeguard.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import papermill
from typeguard import TypeCheckError, check_type

from runner.config import IDENTIFIER, OWN_NOTEBOOK
from runner.errors import SignoffError
from runner.judge import evidence
from runner.run.stages import Stage

# Parameters Signoff itself passes to every notebook that declares them, never set under
# stages.<name>: seed and data come from the params file's top-level keys, the run's
# folders from the run.
FROM_PARAMS = ("seed", "data", "gates_confidence")
FROM_RUN = ("run_dir", "previous_run", "champion_dir", "mlflow_run_id")
COMMON = FROM_PARAMS + FROM_RUN

_TYPE_NAMES: dict[str, Any] = {
    "int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict,
    "tuple": tuple, "None": None, "Any": Any, "Optional": typing.Optional, "Union": typing.Union,
    "List": list, "Dict": dict, "Tuple": tuple, "Literal": typing.Literal,
}


def stage_parameters(stages: list[Stage], params: dict[str, Any], source: Path) -> dict[str, dict[str, Any]]:
    """The parameters each stage notebook will receive; ``run_dir`` and ``previous_run`` are filled in per run.

    Raises SignoffError naming the params file, the dotted key and what the
    notebook expected, before any notebook has run.
    """
    by_name = {stage.name: stage for stage in stages}
    for name in params["stages"]:
        if name not in by_name:
            raise SignoffError(
                f"{source}: stages.{name}: no stage notebook named *_{name}.ipynb "
                f"(stages: {', '.join(by_name)})"
            )
    resolved = {}
    for stage in stages:
        declared = papermill.inspect_notebook(str(stage.path))
        given = {k: v for k, v in params["stages"].get(stage.name, {}).items() if k != OWN_NOTEBOOK}
        resolved[stage.name] = _check_stage(stage, declared, given, params, source)
    return resolved


def gate_metrics(gates: list[dict[str, Any]], key: str, stages: list[Stage], facts: tuple[str, ...],
                 source: Path) -> None:
    """Refuse a gate on evidence that no stage declares (a typo would otherwise block every run, found only at
    the end of one), naming the closest declared names."""
    patterns = [*facts, *(name for stage in stages for name in stage.declared())]
    by_name = {stage.name: stage for stage in stages}
    for index, gate in enumerate(gates):
        metric = gate["metric"]
        if evidence.declared(metric, patterns):
            continue
        where = f"{source}: {key}[{index}].metric ({gate['id']})"
        stage = by_name.get(metric.split(".")[0])
        if stage is not None and not stage.evidence:
            raise SignoffError(f"{where}: {metric}: {stage.path.name} declares no evidence; list the names its "
                               "notebook glues in its metadata signoff.evidence")
        closest = evidence.closest(metric, patterns)
        hint = f"did you mean {' or '.join(closest)}?" if closest else \
            f"evidence names start with a stage ({', '.join(by_name)}) or are one of {', '.join(facts)}"
        raise SignoffError(f"{where}: no stage records {metric}; {hint} (each stage notebook lists what it "
                           "records in its metadata signoff.evidence; README's evidence table shows them)")


def _check_stage(
    stage: Stage, declared: dict[str, dict], given: dict[str, Any], params: dict[str, Any], source: Path
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in given.items():
        where = f"{source}: stages.{stage.name}.{key}"
        if not isinstance(key, str) or not IDENTIFIER.match(key):
            raise SignoffError(f"{where}: not a parameter name (expected a Python identifier)")
        if key in FROM_PARAMS:
            raise SignoffError(f"{where}: {key} is set by the top-level '{key}' key, not per stage")
        if key in FROM_RUN:
            raise SignoffError(f"{where}: {key} is set by Signoff for each run, not in a params file")
        if key not in declared:
            names = ", ".join(n for n in declared if n not in COMMON) or "none"
            raise SignoffError(f"{where}: {stage.path.name} declares no parameter {key!r} (it declares: {names})")
        values[key] = value
    for key in FROM_PARAMS:
        if key in declared:
            values[key] = params[key]
    for key, value in values.items():
        _check_type(stage, declared[key], value, f"{source}: stages.{stage.name}.{key}")
    for key, spec in declared.items():
        if key not in values and key not in FROM_RUN and _is_required(stage, spec):
            raise SignoffError(
                f"{source}: stages.{stage.name}.{key}: required by {stage.path.name} "
                f"({spec['inferred_type_name']}, no default) but not given"
            )
    for key in FROM_RUN:
        if key in declared:
            values[key] = ""
    return values


def _annotation(stage: Stage, spec: dict) -> Any:
    name = spec["inferred_type_name"]
    if name in ("None", ""):
        return Any
    try:
        return eval(name, {"__builtins__": {}}, _TYPE_NAMES)  # noqa: S307 - names limited to _TYPE_NAMES
    except Exception:
        raise SignoffError(
            f"{stage.path}: parameter {spec['name']!r} is annotated {name!r}; use built-in types "
            "(int, float, str, bool, list, dict, Optional[...]) so it can be checked"
        ) from None


def _check_type(stage: Stage, spec: dict, value: Any, where: str) -> None:
    annotation = _annotation(stage, spec)
    try:
        check_type(value, annotation)
    except TypeCheckError:
        raise SignoffError(
            f"{where}: expected {spec['inferred_type_name']} (declared in {stage.path.name}), got {value!r}"
        ) from None
    if annotation is int and isinstance(value, bool):
        raise SignoffError(f"{where}: expected int (declared in {stage.path.name}), got {value!r}")


def _is_required(stage: Stage, spec: dict) -> bool:
    """A parameter whose default is None but whose type does not admit None must be given."""
    if spec["default"].strip() != "None":
        return False
    annotation = _annotation(stage, spec)
    try:
        check_type(None, annotation)
    except TypeCheckError:
        return True
    return False
