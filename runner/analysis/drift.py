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

from runner.analysis import metrics, modeling, resampling

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
    reference_scores, current_scores = _columns(reference_scores), _columns(current_scores)
    return max(float(ks_2samp(reference_scores[:, k], current_scores[:, k]).statistic)
               for k in range(reference_scores.shape[1]))


def prediction_shift(reference_scores: np.ndarray, current_scores: np.ndarray, level: float = 0.95,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """:func:`prediction_ks` with an interval at ``level`` on the populations' K-S distance D.

    A distance is a supremum, so the observed one overshoots D (it is the largest of many noisy differences) by
    an amount that depends on how D is reached (one clear peak, a plateau, no shift at all): the interval used
    before (the K-S test's critical value below the observed distance, a standard error above it) held D 97-100%
    of the time, a percentile bootstrap (which adds the overshoot a second time) as little as 64%.  So:

    - the lower end is 0 unless the K-S test rejects "no shift" at the level (so it is exact with no shift);
      otherwise the observed distance less its estimated overshoot, less the normal quantile times the standard
      error of the two empirical distributions' difference where they differ most.  The overshoot is estimated
      by simulation-extrapolation (SIMEX, Cook and Stefanski 1994): ``n_boot`` bootstrap resamples of both
      samples add the sampling noise once more, and three times more (the resampled deviation scaled by
      sqrt(3)); how much the distance grows between the two gives how the overshoot scales with the noise
      (as noise^p, p between 1 for a plateau of pure noise and 2 for a smooth, regular figure; a clear peak
      gives 4/3), which is extrapolated back to no noise;
    - the upper end is the observed distance plus the normal quantile times that standard error, uncorrected:
      the observed distance is at least the difference where the populations differ most, so this end misses
      at most (1 - level) / 2 of the time at any shift, where a corrected one misses more often when the shift
      is small.

    Coverage of 95% intervals, normal location shifts of 0 to 0.8 sd (1,800 and 1,500 rows, 5,000 and 5,000;
    800 sample pairs each): 94-97%; in ``benchmarks/gate_calibration.py`` on the example's model: see the
    README.  A multiclass model's distance is the largest over its classes' probabilities: its test splits the
    level between the classes.
    """
    reference_scores, current_scores = _columns(reference_scores), _columns(current_scores)
    n, m = len(reference_scores), len(current_scores)
    curves = _cdf_gaps(reference_scores, current_scores)
    tops = [float(np.abs(gap).max()) for *_, gap in curves]
    statistic = max(tops)
    _, _, at_ref, at_cur, gap = curves[int(np.argmax(tops))]
    where = int(np.abs(gap).argmax())
    f, g = at_ref[where] / n, at_cur[where] / m
    error = math.sqrt(f * (1 - f) / n + g * (1 - g) / m)
    z = float(norm.isf((1 - level) / 2))
    critical = float(kstwobign.isf((1 - level) / len(curves))) * math.sqrt((n + m) / (n * m))
    low = 0.0
    if statistic > critical:
        grown = resampled_ks(reference_scores, current_scores, n_boot, seed, (1.0, math.sqrt(3))).mean(axis=0)
        low = max(0.0, statistic - _overshoot(*(grown - statistic)) - z * error)
    return {"prediction_ks": statistic, "prediction_ks_ci_low": float(low),
            "prediction_ks_ci_high": min(1.0, statistic + z * error)}


def resampled_ks(reference_scores: np.ndarray, current_scores: np.ndarray, n_boot: int, seed: int,
                 noise: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """``(n_boot, len(noise))``: in each bootstrap resample of both samples (``seed`` draws the training rows'
    weights, ``seed + 1`` the current rows'), the K-S distance of the observed difference of the distribution
    functions plus the resampled deviation from it times each ``noise`` factor (1: the resampled rows' own
    K-S distance).  Computed from cumulative row weights over the sorted scores, never by copying rows."""
    reference_scores, current_scores = _columns(reference_scores), _columns(current_scores)
    n, m = len(reference_scores), len(current_scores)
    curves = _cdf_gaps(reference_scores, current_scores)
    block = max(1, resampling.WEIGHTS_AT_ONCE // (n + m))
    found = []
    for ref_weights, cur_weights in zip(resampling.bootstrap_weights(n, n_boot, seed, block),
                                        resampling.bootstrap_weights(m, n_boot, seed + 1, block)):
        largest = np.zeros((len(ref_weights), len(noise)))
        for ref_order, cur_order, at_ref, at_cur, gap in curves:
            drawn = _cumulative(ref_weights[:, ref_order], n)[:, at_ref]
            drawn -= _cumulative(cur_weights[:, cur_order], m)[:, at_cur]
            gap = gap.astype(np.float32)
            deviation = drawn - gap
            for column, factor in enumerate(noise):
                moved = np.abs(gap + np.float32(factor) * deviation).max(axis=1)
                largest[:, column] = np.maximum(largest[:, column], moved)
        found.append(largest)
    return np.concatenate(found)


def _overshoot(once: float, thrice: float) -> float:
    """How far the observed K-S distance lies above the populations', from how far resampling moved it up with
    the noise added once (``once``: mean resampled distance less the observed one) and three times (``thrice``):
    with overshoot = c noise^p, once = c (2^(p/2) - 1) noise^p and thrice / once = 2^(p/2) + 1."""
    if once <= 0:
        return 0.0
    growth = min(max(thrice / once - 1, math.sqrt(2)), 2.0)  # 2^(p/2), p from 1 to 2
    return once / (growth - 1)


def _cdf_gaps(reference_scores: np.ndarray, current_scores: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Per column of scores: the two samples' sort orders, how many of each lie at or below each distinct
    value of both, and the difference of their empirical distribution functions there (where a K-S distance is
    reached)."""
    curves = []
    for reference, current in zip(reference_scores.T, current_scores.T):
        ref_order, cur_order = np.argsort(reference, kind="stable"), np.argsort(current, kind="stable")
        points = np.unique(np.r_[reference, current])
        at_ref = np.searchsorted(reference[ref_order], points, side="right")
        at_cur = np.searchsorted(current[cur_order], points, side="right")
        curves.append((ref_order, cur_order, at_ref, at_cur, at_ref / len(reference) - at_cur / len(current)))
    return curves


def _cumulative(weights: np.ndarray, n_rows: int) -> np.ndarray:
    """Each resample's empirical distribution function at its sorted rows, from 0 (no row at or below the
    lowest value); single precision (its error, 1e-7, is far below a K-S distance's) halves the memory moved."""
    running = np.zeros((len(weights), n_rows + 1), dtype=np.float32)
    np.cumsum(weights, axis=1, out=running[:, 1:])
    running /= n_rows
    return running


def _columns(scores: np.ndarray) -> np.ndarray:
    return scores if scores.ndim == 2 else scores[:, None]


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
