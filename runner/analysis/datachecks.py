"""Data a run cannot learn from is refused before any notebook runs; columns no model can use are dropped.

Found here, a problem costs the user a second and names the file and the column; found
by a notebook, it costs minutes and ends in a traceback that names neither.  Columns
that carry nothing a model can use (entirely missing, or a string identifier with a
different value in nearly every row) are dropped with a warning that the verdict
keeps: refusing them would make users edit their files for nothing, and keeping them
would only make the stages slow (an identifier plotted as thousands of bars) or wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from runner.analysis import tasks
from runner.errors import SignoffError

MIN_CLASS_ROWS = 10  # the smaller class must fill the train, validation and test splits
IDENTIFIER_SHARE = 0.95  # a string column with at least this share of distinct values is an identifier
IDENTIFIER_MIN_ROWS = 50  # below this, a column of distinct strings proves nothing


def training(frame: pd.DataFrame, path: Path | str, data: dict[str, Any], task: str) -> dict[str, str]:
    """The feature columns to drop from the training frame, each with a warning saying why."""
    target = data["target"]
    if task != "regression":
        _classes(frame[target], path, target)
    for column in data["sensitive_features"]:
        if frame[column].isna().all():
            raise SignoffError(f"{path}: sensitive feature {column!r} is missing in every row; "
                               "remove it from data.sensitive_features or fill it")
    protected = {target, *data["sensitive_features"]}
    dropped = {}
    for column in frame.columns:
        why = None if column in protected else _unusable(frame[column])
        if why:
            dropped[column] = f"{path}: column {column!r} dropped: {why}"
    if len(dropped) == len(frame.columns) - len(protected):
        raise SignoffError(f"{path}: no feature column left to learn from (every column but the target and the "
                           f"sensitive features was dropped or absent): {'; '.join(dropped.values()) or 'none'}")
    return dropped


def _classes(target: pd.Series, path: Path | str, name: str) -> None:
    classes = target.value_counts()
    if classes.min() < MIN_CLASS_ROWS:
        raise SignoffError(f"{path}: target column {name!r} has only {classes.min()} rows of class "
                           f"{tasks.plain(classes.idxmin())!r}; at least {MIN_CLASS_ROWS} per class are needed to fill "
                           "the train, validation and test splits")


def lacking_features(frame: pd.DataFrame, reference: pd.DataFrame, data: dict[str, Any]) -> list[str]:
    """The (already tidied) training data's feature columns that current data lacks.  A run measures drift
    on the columns there are and its EDA stage reports the others as removed (a finding, for the schema
    gate); a monitor refuses, since the champion cannot score rows without them."""
    excluded = {data["target"], *data["sensitive_features"]}
    return [c for c in reference.columns if c not in excluded and c not in frame.columns]


def rows(frame: pd.DataFrame, path: Path | str) -> None:
    """Refuse a file with a header and no rows."""
    if frame.empty:
        raise SignoffError(f"{path}: no rows (only a header: {', '.join(map(str, frame.columns)) or 'no columns'}); "
                           "expected data to learn from or compare with")


def _unusable(column: pd.Series) -> str | None:
    """Why a feature column cannot help a model, or None."""
    present = column.dropna()
    if present.empty:
        return "every value is missing"
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None
    distinct = present.nunique()
    if len(present) >= IDENTIFIER_MIN_ROWS and distinct >= IDENTIFIER_SHARE * len(present):
        return (f"a string with {distinct:,} distinct values in {len(present):,} rows looks like an identifier, "
                "not a feature (encode it yourself if it is one)")
    return None
