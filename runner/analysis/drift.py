"""Has the data moved since training?  Per-column tests from Evidently, prediction drift, a domain classifier.

Evidently picks each column's method by type and size (K-S / chi-squared for
small samples, Wasserstein / Jensen-Shannon distance for large ones) and its
tests give each column's verdict; Signoff keeps Evidently's own HTML report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, kstwobign, norm
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from runner.analysis import metrics, modeling

# imported inside column_drift (seconds a monitor without current data never pays); a fork server that runs stages
# importing this module imports it ahead (runner/run/forkserver.py)
PRELOAD = ("evidently", "evidently.presets")


def column_drift(reference: pd.DataFrame, current: pd.DataFrame, html: Path | None = None) -> pd.DataFrame:
    """One row per column both frames share: method, score, threshold, drifted."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [c for c in reference.columns if c in current.columns]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(reference[c])]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=[c for c in columns if c not in numeric])
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    if html is not None:
        snapshot.save_html(str(html))
    result = snapshot.dict()
    verdicts = {
        t["bound_test"]["metric_fingerprint"]: str(t["status"].value) for t in result["tests"] if "bound_test" in t
    }
    rows = []
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            rows.append({
                "column": config["column"],
                "method": config["method"],
                "score": float(metric["value"]),
                "threshold": float(config["threshold"]),
                "drifted": verdicts.get(metric["id"]) == "FAIL",
            })
    return pd.DataFrame(rows, columns=["column", "method", "score", "threshold", "drifted"])


def prediction_ks(reference_scores: np.ndarray, current_scores: np.ndarray) -> float:
    """Two-sample K-S statistic between the model's score distributions (0 = identical): scores of a
    binary classifier, predicted values of a regressor, and for a multiclass model the largest over
    its classes' probabilities."""
    return max(float(found.statistic) for found in _per_column(reference_scores, current_scores))


def prediction_shift(reference_scores: np.ndarray, current_scores: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """:func:`prediction_ks` with an interval at ``level`` on the populations' K-S distance D.

    The lower end inverts the K-S test: above 0 only where the test rejects "no shift" (the observed distance
    less the test's critical value, the Kolmogorov quantile times sqrt((n + m) / nm)), so with no shift the
    interval starts at 0 as often as the level says.  The upper end is the observed distance plus the normal
    quantile times the standard error of the two empirical distributions' difference where they differ most.
    A distance is a supremum, so no interval of it is exact everywhere: this one holds its level with no
    shift, where a drift gate's false alarms are decided, and errs wide once the samples differ (97-100% in
    the calibration benchmark; the Dvoretzky-Kiefer-Wolfowitz band used before held 100%, its lower reach
    about 1.5 times this one's).
    A multiclass model's level is split between its classes."""
    reference_scores, current_scores = _columns(reference_scores), _columns(current_scores)
    n, m = len(reference_scores), len(current_scores)
    alpha = (1 - level) / reference_scores.shape[1]
    critical = float(kstwobign.isf(alpha)) * math.sqrt((n + m) / (n * m))
    statistic, low, high = 0.0, 0.0, 0.0
    for k, found in enumerate(_per_column(reference_scores, current_scores)):
        f = np.mean(reference_scores[:, k] <= found.statistic_location)
        g = np.mean(current_scores[:, k] <= found.statistic_location)
        error = math.sqrt(f * (1 - f) / n + g * (1 - g) / m)
        statistic = max(statistic, float(found.statistic))
        low = max(low, found.statistic - critical)
        high = max(high, found.statistic + float(norm.isf(alpha / 2)) * error)
    return {"prediction_ks": statistic, "prediction_ks_ci_low": float(low),
            "prediction_ks_ci_high": float(min(1.0, high))}


def _columns(scores: np.ndarray) -> np.ndarray:
    return scores if scores.ndim == 2 else scores[:, None]


def _per_column(reference_scores: np.ndarray, current_scores: np.ndarray) -> list[Any]:
    """scipy's two-sample K-S result (statistic and where it is reached) for each column of scores."""
    reference_scores, current_scores = _columns(reference_scores), _columns(current_scores)
    return [ks_2samp(reference_scores[:, k], current_scores[:, k]) for k in range(reference_scores.shape[1])]


def domain_classifier(reference: pd.DataFrame, current: pd.DataFrame, seed: int, max_rows: int, n_boot: int = 1000,
                      level: float = 0.95) -> dict[str, float]:
    """Cross-validated ROC AUC of a classifier told to separate reference rows from current rows, with a
    bootstrap interval at ``level`` over its out-of-fold scores (the folds' refits are not redone: the
    interval is that of the AUC of these scores).

    About 0.5 means the two samples cannot be told apart; near 1.0, the current
    data comes from somewhere else.  Each side is sampled down to ``max_rows``.
    """
    columns = [c for c in reference.columns if c in current.columns]
    sides = [frame[columns].sample(min(len(frame), max_rows), random_state=seed) for frame in (reference, current)]
    rows = pd.concat(sides, ignore_index=True)
    origin = np.r_[np.zeros(len(sides[0]), int), np.ones(len(sides[1]), int)]
    classifier = modeling.build("hist_gradient_boosting", rows, seed, max_iter=100, learning_rate=0.1)
    scores = cross_val_predict(classifier, rows, origin, cv=3, method="predict_proba")[:, 1]
    low, high = metrics.intervals("binary", origin, scores, ["roc_auc"], n_boot, seed, level)["roc_auc"]
    return {"domain_classifier_auc": float(roc_auc_score(origin, scores)), "domain_classifier_auc_ci_low": low,
            "domain_classifier_auc_ci_high": high}


def summary(table: pd.DataFrame) -> dict[str, Any]:
    drifted = table.loc[table["drifted"], "column"].tolist()
    return {
        "share_drifted_columns": float(len(drifted) / len(table)) if len(table) else 0.0,
        "drifted_columns": drifted,
        "n_drifted_columns": len(drifted),
    }
