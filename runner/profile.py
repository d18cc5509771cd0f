"""What the EDA stage records about a data set: its schema, missing values and class balance."""

from __future__ import annotations

from typing import Any

import pandas as pd


def schema(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column: dtype, kind, distinct values, missing rate, range or categories."""
    rows = []
    for name in frame.columns:
        column = frame[name]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        rows.append(
            {
                "column": str(name),
                "dtype": str(column.dtype),
                "kind": "numeric" if numeric else "categorical",
                "distinct": int(column.nunique(dropna=True)),
                "missing_rate": float(column.isna().mean()),
                "min": float(column.min()) if numeric and column.notna().any() else None,
                "max": float(column.max()) if numeric and column.notna().any() else None,
                "categories": None if numeric else sorted(map(str, column.dropna().unique()))[:50],
            }
        )
    return pd.DataFrame(rows)


def summary(frame: pd.DataFrame, target: str) -> dict[str, Any]:
    """The EDA facts a gate may use."""
    table = schema(frame.drop(columns=[target]))
    return {
        "n_rows": int(len(frame)),
        "n_columns": int(frame.shape[1]),
        "n_numeric": int((table["kind"] == "numeric").sum()),
        "n_categorical": int((table["kind"] == "categorical").sum()),
        "max_missing_rate": float(table["missing_rate"].max()) if len(table) else 0.0,
        "missing_rate": {row.column: row.missing_rate for row in table.itertuples()},
        "positive_rate": float(frame[target].mean()),
        "duplicate_rows": int(frame.duplicated().sum()),
    }


def class_balance(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    counts = frame[target].value_counts().sort_index()
    return pd.DataFrame({"count": counts, "share": counts / counts.sum()})
