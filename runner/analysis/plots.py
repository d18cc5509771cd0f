"""The figures the stages show; the report re-displays the ones a stage glues."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

MAX_BARS = 20  # categories drawn per column; the rest share one bar
OTHER = "(other)"


def distributions(frame: pd.DataFrame, target: str, columns: list[str], task: str = "binary") -> plt.Figure:
    """Each column's distribution split by the target (a regression target by its quartiles): histograms for
    numbers, bars for the most frequent categories (a column with thousands of them would take minutes
    to draw, and show nothing)."""
    if task == "regression":
        frame = frame.assign(**{target: pd.qcut(frame[target], 4, duplicates="drop").astype(str)})
    ncols = 3
    nrows = max(1, math.ceil(len(columns) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            for label, part in frame.groupby(target)[column]:
                # one filled outline per group, not 30 bar patches: a tenth of the drawing time
                ax.hist(part.dropna(), bins=30, alpha=0.55, density=True, histtype="stepfilled",
                        label=f"{target}={label}")
        else:
            top = values.value_counts().index[:MAX_BARS]
            shown = values.where(values.isin(top) | values.isna(), OTHER) if values.nunique() > MAX_BARS else values
            shares = pd.crosstab(shown, frame[target], normalize="columns")
            shares.plot.bar(ax=ax, alpha=0.8, legend=False)
        ax.set_title(column)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    axes.flat[0].legend()
    fig.tight_layout()
    return fig


def evaluation(y: np.ndarray, proba: np.ndarray, baseline_proba: np.ndarray, threshold: float) -> plt.Figure:
    """ROC, precision-recall, calibration and confusion matrix on the test split."""
    from sklearn.calibration import CalibrationDisplay  # here: the EDA stage draws without scikit-learn (1.4 s)
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6))
    RocCurveDisplay.from_predictions(y, proba, name="model", ax=axes[0])
    RocCurveDisplay.from_predictions(y, baseline_proba, name="baseline", ax=axes[0])
    axes[0].set_title("ROC (test)")
    PrecisionRecallDisplay.from_predictions(y, proba, name="model", ax=axes[1])
    axes[1].set_title("Precision-recall (test)")
    CalibrationDisplay.from_predictions(y, proba, n_bins=10, name="model", ax=axes[2])
    axes[2].set_title("Calibration (test)")
    ConfusionMatrixDisplay.from_predictions(y, (proba >= threshold).astype(int), ax=axes[3], colorbar=False)
    axes[3].set_title(f"Confusion at threshold {threshold:.3f}")
    fig.tight_layout()
    return fig


def regression_evaluation(y: np.ndarray, pred: np.ndarray) -> plt.Figure:
    """Predicted against actual, residuals against predicted, and the residuals' distribution (test)."""
    residuals = y - pred
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    axes[0].scatter(y, pred, s=6, alpha=0.4, color="#2e86c1")
    reach = [min(y.min(), pred.min()), max(y.max(), pred.max())]
    axes[0].plot(reach, reach, color="#c0392b", linewidth=1)
    axes[0].set(title="Predicted vs actual (test)", xlabel="actual", ylabel="predicted")
    axes[1].scatter(pred, residuals, s=6, alpha=0.4, color="#5d6d7e")
    axes[1].axhline(0, color="#c0392b", linewidth=1)
    axes[1].set(title="Residuals vs predicted", xlabel="predicted", ylabel="actual - predicted")
    axes[2].hist(residuals, bins=50, color="#5d6d7e")
    axes[2].set(title="Residuals", xlabel="actual - predicted")
    fig.tight_layout()
    return fig


def multiclass_evaluation(y: np.ndarray, proba: np.ndarray, classes: list[str], per_class: pd.DataFrame) -> plt.Figure:
    """Confusion matrix, per-class precision and recall, and top-label calibration (test)."""
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    ConfusionMatrixDisplay.from_predictions(y, proba.argmax(axis=1), labels=list(range(len(classes))),
                                            display_labels=classes, ax=axes[0], colorbar=False)
    axes[0].set_title("Confusion (most probable class)")
    per_class[["precision", "recall"]].plot.bar(ax=axes[1], color=["#2e86c1", "#c0392b"], rot=0)
    axes[1].set_title("Per class")
    CalibrationDisplay.from_predictions((proba.argmax(axis=1) == y).astype(int), proba.max(axis=1), n_bins=10,
                                        name="top class", ax=axes[2])
    axes[2].set_title("Top-label calibration (test)")
    fig.tight_layout()
    return fig
