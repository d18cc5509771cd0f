"""The data a run is made of: the embedded synthetic credit data (for any task), or the user's files.

Stages share one copy: the first stage to ask materialises the data as Parquet
in the run's work folder, keyed by the data parameters, and later stages read
that instead of regenerating or re-parsing a CSV.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from runner.analysis import datachecks, tasks
from runner.errors import SignoffError

NUMERIC = ["age", "income", "debt_ratio", "credit_lines", "late_payments", "loan_amount", "employment_years"]
CATEGORICAL = ["purpose", "housing", "employment_type", "sex", "age_band"]
PURPOSES = ["car", "home", "education", "business", "other"]
HOUSING = ["own", "rent", "mortgage"]
EMPLOYMENT_TYPES = ["full-time", "part-time", "self-employed"]
AGE_BANDS = ["18-34", "35-54", "55+"]
GRADES = ["A", "B", "C", "D"]  # the multiclass outcome: risk grade, A the safest
GRADE_CUTS = [-3.0, -1.5, 0.0]  # on the noisy log-odds of default: about 10/35/35/20% of applicants


def synthetic_credit(
    n_rows: int, seed: int, bias: float = 0.0, drift: float = 0.0, leak: bool = False, task: str = "binary",
    target: str = "default",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded credit data set: the training sample and a "current" sample, for any task.

    The outcome comes from one latent credit risk: ``binary``, whether the loan defaults; ``multiclass``,
    the risk grade A-D an underwriter would give (fixed cut points on the noisy risk, so drift moves
    the grade mix); ``regression``, the loss on the loan (its amount times the default probability,
    with noise).  ``bias`` moves the risk of women up and of men down by half of it each (the overall
    level stays put), so a fairness stage has a real disparity to find; ``drift`` shifts the current
    sample's income, debt, late payments and loan purposes away from the training sample's, while the
    relation between features and outcome stays the same.  ``leak`` adds ``collections_flag``, a column
    only known after the outcome (it copies the target but for 2% noise), which a leakage scan must catch.
    """
    reference = _sample(np.random.default_rng([seed, 0]), n_rows, bias, 0.0, task, target)
    current = _sample(np.random.default_rng([seed, 1]), max(n_rows // 2, 100), bias, drift, task, target)
    if leak:
        for frame, rng in ((reference, np.random.default_rng([seed, 2])), (current, np.random.default_rng([seed, 3]))):
            frame.insert(frame.columns.get_loc(target), "collections_flag", _noisy_copy(frame[target], rng))
    return reference, current


def _noisy_copy(outcome: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """The outcome but for 2% of rows: flipped (binary), another grade (multiclass), or 2% off (regression)."""
    noise = rng.random(len(outcome)) < 0.02
    if pd.api.types.is_float_dtype(outcome):
        return (outcome * rng.normal(1, 0.02, len(outcome))).round(2).to_numpy()
    if pd.api.types.is_integer_dtype(outcome):
        return np.where(noise, 1 - outcome, outcome)
    return np.where(noise, rng.choice(GRADES, len(outcome)), outcome)


def _sample(rng: np.random.Generator, n: int, bias: float, drift: float, task: str, target: str) -> pd.DataFrame:
    age = np.clip(rng.normal(42 - 4 * drift, 12, n), 18, 90).round()
    sex = rng.choice(["F", "M"], n, p=[0.48, 0.52])
    income = np.round(rng.lognormal(np.log(42_000) - 0.25 * drift, 0.45, n), -1)
    debt_ratio = np.clip(rng.beta(2.2, 4.5, n) + 0.12 * drift, 0, 1.5)
    credit_lines = rng.poisson(4 + drift, n)
    late_payments = rng.poisson(0.6 + 0.8 * drift, n)
    loan_amount = np.round(income * rng.uniform(0.05, 0.6, n), -1)
    employment_years = np.clip(rng.normal((age - 18) * 0.45, 4), 0, None).round(1)
    purpose_p = np.array([0.3, 0.25, 0.15, 0.12, 0.18]) + drift * np.array([-0.1, -0.05, 0.0, 0.12, 0.03])
    purpose = rng.choice(PURPOSES, n, p=purpose_p / purpose_p.sum())
    housing = rng.choice(HOUSING, n, p=[0.3, 0.35, 0.35])
    # No effect on default of its own, but far more common among women: a proxy through
    # which a model that never sees `sex` can still learn a biased outcome.
    part_time = rng.random(n) < np.where(sex == "F", 0.75, 0.03)
    employment_type = np.where(part_time, "part-time", rng.choice(["full-time", "self-employed"], n, p=[0.85, 0.15]))
    logit = (
        -1.9
        + 4.5 * (debt_ratio - 0.33)
        + 1.0 * late_payments
        - 1.3 * np.log(income / 42_000)
        - 0.005 * (employment_years - 10)
        + 1.5 * (loan_amount / income - 0.33)
        + 0.45 * (purpose == "business")
        + 0.25 * (housing == "rent")
        + bias * ((sex == "F") - 0.5)
    )
    outcome = _outcome(rng, logit, loan_amount, task)
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio.round(4),
            "credit_lines": credit_lines,
            "late_payments": late_payments,
            "loan_amount": loan_amount,
            "employment_years": employment_years,
            "purpose": purpose,
            "housing": housing,
            "employment_type": employment_type,
            "sex": sex,
            "age_band": pd.cut(age, [0, 34, 54, 200], labels=AGE_BANDS).astype(str),
            target: outcome,
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n) < 0.02, "employment_years"] = np.nan
    return frame


def _outcome(rng: np.random.Generator, logit: np.ndarray, loan_amount: np.ndarray, task: str) -> np.ndarray:
    probability = 1 / (1 + np.exp(-logit))
    if task == "regression":
        return np.round(loan_amount * probability * rng.lognormal(0, 0.35, len(logit)), 2)
    if task == "multiclass":
        return np.array(GRADES)[np.searchsorted(GRADE_CUTS, logit + rng.logistic(0, 0.5, len(logit)))]
    return (rng.random(len(logit)) < probability).astype("int64")


class Prepared(NamedTuple):
    """The run's data as every stage reads it, and what was settled about its target."""

    reference: pd.DataFrame
    current: pd.DataFrame | None
    warnings: list[str]  # columns dropped as unusable, and other facts the verdict keeps
    task: str  # binary, multiclass or regression (runner.analysis.tasks)
    classes: list[str]  # class names in code order; empty for regression


def load(data: dict[str, Any], seed: int, cache_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The reference (training) frame and the current frame, if any, for these data parameters.

    The target column is encoded as :func:`runner.analysis.tasks.encode` says (0/1, class codes, or
    floats); string columns become categorical features by being left as strings.
    """
    prepared_data = prepared(data, seed, cache_dir)
    return prepared_data.reference, prepared_data.current


def prepared(data: dict[str, Any], seed: int, cache_dir: Path) -> Prepared:
    """:func:`load`, the warnings about columns dropped as unusable (:mod:`runner.analysis.datachecks`),
    and the target's task and classes."""
    key = hashlib.sha256(json.dumps([data, seed], sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir / f"data-{key}"
    reference_file, current_file, facts_file = (folder / name for name in
                                                ("reference.parquet", "current.parquet", "facts.json"))
    if reference_file.exists() and facts_file.exists():  # a folder of an older Signoff lacks the facts: rebuilt
        current = pd.read_parquet(current_file) if current_file.exists() else None
        facts = json.loads(facts_file.read_text(encoding="utf-8"))
        return Prepared(pd.read_parquet(reference_file), current, **facts)
    built = _build(data, seed)
    folder.mkdir(parents=True, exist_ok=True)
    facts_file.write_text(json.dumps({"warnings": built.warnings, "task": built.task, "classes": built.classes}),
                          encoding="utf-8")
    if built.current is not None:
        _write_atomically(built.current, current_file)
    _write_atomically(built.reference, reference_file)  # last: its presence says the folder is complete
    return built


def _build(data: dict[str, Any], seed: int) -> Prepared:
    target = data["target"]
    if data.get("path"):
        source = data["path"]
        reference = read_table(Path(source), data)
        current = None
    else:
        source = "data.synthetic"
        synthetic = data["synthetic"]
        reference, current = synthetic_credit(
            synthetic["n_rows"], seed, synthetic["bias"], synthetic["drift"], synthetic.get("leak", False),
            synthetic.get("task", "binary"), target,
        )
    datachecks.rows(reference, source)
    _require_columns(reference, [target, *data["sensitive_features"]], source)
    task = tasks.infer(reference[target], data.get("task", "auto"), source, target)
    dropped = datachecks.training(reference, source, data, task)
    reference[target], classes = tasks.encode(reference[target], task, data, source, target)
    reference = reference.drop(columns=list(dropped))
    warnings = list(dropped.values())
    if data.get("current_path"):
        current = read_table(Path(data["current_path"]), data, labelled=False)
        datachecks.rows(current, data["current_path"])
        current = current.drop(columns=[c for c in dropped if c in current.columns])
        lacking = datachecks.lacking_features(current, reference, data)
        if lacking:
            warnings.append(f"{data['current_path']}: current data lacks the training data's feature columns "
                            f"{', '.join(map(repr, lacking))}: drift is measured on the columns it has, and the "
                            "EDA stage reports these as removed")
    if current is not None and target in current.columns:
        current[target], _ = tasks.encode(current[target], task, {**data, "classes": classes},
                                          data.get("current_path") or source, target)
    return Prepared(reference, current, warnings, task, classes)


def read_table(path: Path, data: dict[str, Any], labelled: bool = True) -> pd.DataFrame:
    """Read a CSV or Parquet file and check the columns the params file names.

    Training data must hold the target and the sensitive features; current data
    (production's newest rows) often has no labels yet, so there they are optional.
    """
    if path.is_dir():
        raise SignoffError(f"{path}: is a directory; expected a CSV or Parquet file (data.path / data.current_path)")
    if not path.is_file():
        raise SignoffError(f"{path}: no such data file (data.path / data.current_path)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise SignoffError(f"{path}: expected a .csv or .parquet file")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise SignoffError(f"{path}: cannot read data: {exc}") from None
    target = data["target"]
    if labelled:
        _require_columns(frame, [target, *data["sensitive_features"]], path)
    if target in frame.columns and frame[target].isna().any():
        raise SignoffError(f"{path}: target column {target!r} has {int(frame[target].isna().sum()):,} missing values "
                           f"in {len(frame):,} rows; drop or fill those rows")
    return frame


def _require_columns(frame: pd.DataFrame, columns: list[str], source: Path | str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise SignoffError(
                f"{source}: column {column!r} (named in data.target / data.sensitive_features) is missing; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    partial = path.with_suffix(".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)


def features(frame: pd.DataFrame, data: dict[str, Any]) -> list[str]:
    """Model inputs: every column but the target and the sensitive features."""
    excluded = {data["target"], *data["sensitive_features"]}
    return [c for c in frame.columns if c not in excluded]


def fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """Which exact data was used: content hash, rows and columns."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()
    return {"sha256": digest, "rows": int(len(frame)), "columns": [str(c) for c in frame.columns]}
