"""What the EDA stage records about a data set: its schema, missing values and class balance."""

from __future__ import annotations

from typing import Any

import pandas as pd

MAX_CATEGORIES = 200  # beyond this a column is an identifier or free text, not a category set


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
                "categories": None if numeric else sorted(map(str, column.dropna().unique()))[:MAX_CATEGORIES],
            }
        )
    return pd.DataFrame(rows)


def summary(frame: pd.DataFrame, target: str, task: str = "binary") -> dict[str, Any]:
    """The EDA facts a gate may use; the target's by task: the positive rate (binary), the number of
    classes and the smallest class's share (multiclass), or the target's mean, spread and range."""
    table = schema(frame.drop(columns=[target]))
    return {
        "n_rows": int(len(frame)),
        "n_columns": int(frame.shape[1]),
        "n_numeric": int((table["kind"] == "numeric").sum()),
        "n_categorical": int((table["kind"] == "categorical").sum()),
        "max_missing_rate": float(table["missing_rate"].max()) if len(table) else 0.0,
        "missing_rate": {row.column: row.missing_rate for row in table.itertuples()},
        "duplicate_rows": int(frame.duplicated().sum()),
        **_target_summary(frame[target], task),
    }


def _target_summary(target: pd.Series, task: str) -> dict[str, Any]:
    if task == "binary":
        return {"positive_rate": float(target.mean())}
    if task == "multiclass":
        return {"n_classes": int(target.nunique()), "min_class_rate": float(target.value_counts(normalize=True).min())}
    return {"target_mean": float(target.mean()), "target_std": float(target.std()), "target_min": float(target.min()),
            "target_max": float(target.max()), "target_zero_rate": float((target == 0).mean())}


def class_balance(frame: pd.DataFrame, target: str, classes: list[str] | None = None) -> pd.DataFrame:
    """Rows and share of each class, named (``classes`` in code order); a regression target's distribution."""
    if not classes:
        return frame[target].describe().to_frame()
    counts = frame[target].value_counts().sort_index()
    return pd.DataFrame({"count": counts, "share": counts / counts.sum()},
                        index=counts.index).rename(index=dict(enumerate(classes))).rename_axis(target)


MISSING_RATE_JUMP = 0.05  # an absolute rise in a column's missing rate that counts as a violation


def schema_record(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The schema as JSON-ready data, column name -> facts; saved as schema.json in the run."""
    return {row["column"]: {k: v for k, v in row.items() if k != "column"} for row in schema(frame).to_dict("records")}


def violations(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]], source: str) -> list[dict[str,
                                                                                                                 str]]:
    """How ``actual`` departs from ``expected``: columns added or removed, dtype changes,
    new or vanished categories, and missing-rate jumps of more than MISSING_RATE_JUMP."""
    found: list[dict[str, str]] = []

    def add(column: str, kind: str, detail: str) -> None:
        found.append({"source": source, "column": column, "violation": kind, "detail": detail})

    for column in expected.keys() - actual.keys():
        add(column, "column removed", "present before, absent now")
    for column in actual.keys() - expected.keys():
        add(column, "column added", f"new column of dtype {actual[column]['dtype']}")
    for column in sorted(expected.keys() & actual.keys()):
        before, now = expected[column], actual[column]
        if before["kind"] != now["kind"] or before["dtype"] != now["dtype"]:
            add(column, "dtype changed", f"{before['dtype']} -> {now['dtype']}")
        comparable = max(before["distinct"], now["distinct"]) <= MAX_CATEGORIES
        if before["kind"] == now["kind"] == "categorical" and comparable:
            new = sorted(set(now["categories"]) - set(before["categories"]))
            gone = sorted(set(before["categories"]) - set(now["categories"]))
            if new:
                add(column, "new categories", ", ".join(new))
            if gone:
                add(column, "vanished categories", ", ".join(gone))
        if now["missing_rate"] - before["missing_rate"] > MISSING_RATE_JUMP:
            add(column, "missing-rate jump", f"{before['missing_rate']:.1%} -> {now['missing_rate']:.1%}")
    return sorted(found, key=lambda v: (v["source"], v["column"], v["violation"]))
