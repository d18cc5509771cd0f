"""Does the model survive inputs production will send it sooner or later?

Each scenario takes real rows and breaks them one way; a scenario fails when
scoring raises or returns a non-finite probability or prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runner.analysis import tasks

UNSEEN = "__unseen_category__"


def scenarios(train: pd.DataFrame, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    numeric = [c for c in rows.columns if pd.api.types.is_numeric_dtype(rows[c])]
    categorical = [c for c in rows.columns if c not in numeric]
    reach = train[numeric].abs().max().fillna(1.0).replace(0, 1.0)
    return {
        "all-zero numerics": rows.assign(**{c: 0.0 for c in numeric}),
        "missing in every column": rows.assign(**{c: np.nan for c in rows.columns}),
        "10x above the training range": rows.assign(**{c: 10 * reach[c] for c in numeric}),
        "10x below the training range": rows.assign(**{c: -10 * reach[c] for c in numeric}),
        "unseen categories": rows.assign(**{c: UNSEEN for c in categorical}),
    }


def check(model, cases: dict[str, pd.DataFrame], task: str = "binary") -> pd.DataFrame:
    """One row per scenario: whether scoring worked, and why not."""
    results = []
    for name, frame in cases.items():
        try:
            scores = tasks.predictions(model, frame, task)
            bad = int((~np.isfinite(scores)).sum())
            results.append({"scenario": name, "ok": bad == 0, "problem": f"{bad} non-finite scores" if bad else ""})
        except Exception as exc:  # any failure to score is the finding, whatever its type
            results.append({"scenario": name, "ok": False, "problem": f"{type(exc).__name__}: {exc}"})
    return pd.DataFrame(results, columns=["scenario", "ok", "problem"])
