"""The data a run is made of: the embedded synthetic credit data, or the user's files.

Stages share one copy: the first stage to ask materialises the data as Parquet
in the run's work folder, keyed by the data parameters, and later stages read
that instead of regenerating or re-parsing a CSV.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runner.analysis import datachecks
from runner.errors import SignoffError

NUMERIC = ["age", "income", "debt_ratio", "credit_lines", "late_payments", "loan_amount", "employment_years"]
CATEGORICAL = ["purpose", "housing", "employment_type", "sex", "age_band"]
PURPOSES = ["car", "home", "education", "business", "other"]
HOUSING = ["own", "rent", "mortgage"]
EMPLOYMENT_TYPES = ["full-time", "part-time", "self-employed"]
AGE_BANDS = ["18-34", "35-54", "55+"]


def synthetic_credit(
    n_rows: int, seed: int, bias: float = 0.0, drift: float = 0.0, leak: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded credit-default data set: the training sample and a "current" sample.

    ``bias`` moves the default log-odds of women up and of men down by half
    of it each (the overall rate stays put), so a fairness stage has a real
    disparity to find; ``drift`` shifts the current sample's income, debt,
    late payments and loan purposes away from the training sample's, while the
    relation between features and default stays the same.  ``leak`` adds
    ``collections_flag``, a column only known after the outcome (it copies the
    target but for 2% noise), which a leakage scan must catch.
    """
    reference = _sample(np.random.default_rng([seed, 0]), n_rows, bias, drift=0.0)
    current = _sample(np.random.default_rng([seed, 1]), max(n_rows // 2, 100), bias, drift)
    if leak:
        for frame, rng in ((reference, np.random.default_rng([seed, 2])), (current, np.random.default_rng([seed, 3]))):
            noise = rng.random(len(frame)) < 0.02
            frame.insert(frame.columns.get_loc("default"), "collections_flag", np.where(noise, 1 - frame["default"],
                                                                                        frame["default"]))
    return reference, current


def _sample(rng: np.random.Generator, n: int, bias: float, drift: float) -> pd.DataFrame:
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
    part_time = rng.random(n) < np.where(sex == "F", 0.6, 0.05)
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
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
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
            "default": default,
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan
    frame.loc[rng.random(n) < 0.02, "employment_years"] = np.nan
    return frame


def load(data: dict[str, Any], seed: int, cache_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The reference (training) frame and the current frame, if any, for these data parameters.

    The target column is returned as 0/1 integers; string columns become
    categorical features by being left as strings.
    """
    reference, current, _ = prepared(data, seed, cache_dir)
    return reference, current


def prepared(data: dict[str, Any], seed: int, cache_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """:func:`load`, and the warnings about columns dropped as unusable (:mod:`runner.analysis.datachecks`)."""
    key = hashlib.sha256(json.dumps([data, seed], sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir / f"data-{key}"
    reference_file, current_file, warnings_file = (folder / name for name in
                                                   ("reference.parquet", "current.parquet", "warnings.json"))
    if reference_file.exists():
        current = pd.read_parquet(current_file) if current_file.exists() else None
        return pd.read_parquet(reference_file), current, json.loads(warnings_file.read_text(encoding="utf-8"))
    reference, current, warnings = _build(data, seed)
    folder.mkdir(parents=True, exist_ok=True)
    warnings_file.write_text(json.dumps(warnings), encoding="utf-8")
    if current is not None:
        _write_atomically(current, current_file)
    _write_atomically(reference, reference_file)  # last: its presence says the folder is complete
    return reference, current, warnings


def _build(data: dict[str, Any], seed: int) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    if data.get("path"):
        reference = read_table(Path(data["path"]), data)
        dropped = datachecks.training(reference, data["path"], data)
        reference = reference.drop(columns=list(dropped))
        current = None
    else:
        synthetic = data["synthetic"]
        reference, current = synthetic_credit(
            synthetic["n_rows"], seed, synthetic["bias"], synthetic["drift"], synthetic.get("leak", False)
        )
        dropped = {}
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
    return reference, current, warnings


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
    for column in [target, *data["sensitive_features"]] if labelled else []:
        if column not in frame.columns:
            raise SignoffError(
                f"{path}: column {column!r} (named in data.target / data.sensitive_features) is missing; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )
    if target in frame.columns:
        frame[target] = _binary_target(frame[target], data.get("positive_label"), path, target)
    return frame


def _binary_target(column: pd.Series, positive_label: Any, path: Path, name: str) -> pd.Series:
    if column.isna().any():
        raise SignoffError(f"{path}: target column {name!r} has {int(column.isna().sum())} missing values")
    values = set(column.unique().tolist())
    if positive_label is not None:
        if positive_label not in values or len(values) != 2:
            raise SignoffError(
                f"{path}: target column {name!r} must hold two labels including data.positive_label "
                f"{positive_label!r}; found {sorted(map(str, values))}"
            )
        return (column == positive_label).astype("int64")
    if values <= {0, 1} or values <= {True, False}:
        return column.astype("int64")
    raise SignoffError(
        f"{path}: target column {name!r} must be 0/1 or boolean, or name data.positive_label; "
        f"found {sorted(map(str, values))[:10]}"
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
