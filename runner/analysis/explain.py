"""Why the model predicts what it does: SHAP, permutation importance, and a leakage scan.

SHAP runs on the fitted estimator in its own (encoded) feature space where it can, where
shap's fast exact explainers apply: LinearExplainer for logistic regression,
TreeExplainer for boosted trees in its path-dependent form (given background
data, its interventional form does not add up for scikit-learn's
histogram boosting).  SHAP values are additive, so encoded columns (one-hot
levels) are summed back to the raw feature they came from.  Any other model (a user's own) gets SHAP's
model-agnostic permutation explainer on the raw features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shap
from sklearn.inspection import permutation_importance
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.pipeline import Pipeline

from runner.analysis import tasks


def shap_explanation(model: Pipeline, background: pd.DataFrame, rows: pd.DataFrame,
                     task: str = "binary") -> shap.Explanation:
    """SHAP values of ``rows``, one column per raw feature, in the model's raw output: log-odds for a
    booster or a linear classifier, probability for a forest, the predicted value for a regressor.
    A binary model's values are the positive class's; a multiclass model's have a last axis per class."""
    try:
        encode, estimator = model[:-1], model[-1]
        if hasattr(estimator, "coef_"):
            explainer = shap.LinearExplainer(estimator, encode.transform(background))
        else:
            explainer = shap.TreeExplainer(estimator)
        encoded = explainer(encode.transform(rows))
        owners = _owners(list(encode.get_feature_names_out()), list(rows.columns))
    except Exception:  # noqa: BLE001 - not an encoder and a linear or tree model (a user's own): no fast path
        return _model_agnostic(model, background, rows, task)
    if encoded.values.ndim == 3 and task == "binary":  # one slice per class (a forest): the positive class's
        encoded = encoded[..., 1]
    values = np.zeros((len(rows), rows.shape[1], *encoded.values.shape[2:]))
    for column, owner in enumerate(owners):
        values[:, owner] += encoded.values[:, column]
    return shap.Explanation(
        values=values,
        base_values=encoded.base_values,
        data=_numeric_view(rows),
        feature_names=list(rows.columns),
    )


def _model_agnostic(model: object, background: pd.DataFrame, rows: pd.DataFrame, task: str) -> shap.Explanation:
    """SHAP's permutation explainer on the model's own output (probability, or the predicted value), for any
    model that scores the raw frame: strings are coded as numbers for SHAP and decoded for the model.
    Slower than the exact explainers (2 x features + 1 evaluations per row against 50 background rows)."""
    strings = [c for c in rows.columns if not pd.api.types.is_numeric_dtype(rows[c])]
    levels = {c: pd.Index(pd.concat([background[c], rows[c]]).dropna().unique()) for c in strings}

    def numbers(frame: pd.DataFrame) -> np.ndarray:
        coded = frame.assign(**{c: levels[c].get_indexer(frame[c]).astype(float) for c in strings})
        return coded.to_numpy(dtype=float)

    def frame_of(matrix: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(matrix, columns=rows.columns)
        for c in strings:
            codes = frame[c].fillna(-1).astype(int).to_numpy()
            frame[c] = np.where(codes >= 0, levels[c].to_numpy()[codes.clip(0)], None)
        return frame

    def predict(matrix: np.ndarray) -> np.ndarray:
        return tasks.predictions(model, frame_of(matrix), task)

    masker = shap.maskers.Independent(numbers(background), max_samples=50)
    found = shap.explainers.Permutation(predict, masker)(numbers(rows), max_evals=2 * rows.shape[1] + 1, silent=True)
    return shap.Explanation(values=found.values, base_values=found.base_values, data=_numeric_view(rows),
                            feature_names=list(rows.columns))


def of_class(explanation: shap.Explanation, classes: np.ndarray) -> shap.Explanation:
    """A multiclass explanation cut to one class per row (e.g. the one the model predicted), the
    two-dimensional form SHAP's plots draw; other explanations as they are."""
    if explanation.values.ndim == 2:
        return explanation
    picked = np.arange(len(classes))
    return shap.Explanation(values=explanation.values[picked, :, classes],
                            base_values=np.asarray(explanation.base_values)[picked, classes],
                            data=explanation.data, feature_names=explanation.feature_names)


def class_importance(explanation: shap.Explanation, classes: list[str]) -> pd.DataFrame:
    """Mean |SHAP| per feature and class (multiclass); its row sums are :func:`global_importance`."""
    return pd.DataFrame(np.abs(explanation.values).mean(axis=0), index=explanation.feature_names, columns=classes)


def _owners(encoded_names: list[str], raw: list[str]) -> list[int]:
    """For each encoded column, the index of the raw feature it was made from."""
    owners = []
    for name in encoded_names:
        bare = name.split("__", 1)[-1]
        matches = [i for i, f in enumerate(raw) if bare == f or bare.startswith(f + "_")]
        if not matches:
            raise ValueError(f"cannot tell which feature encoded column {name!r} comes from")
        owners.append(max(matches, key=lambda i: len(raw[i])))
    return owners


def _numeric_view(rows: pd.DataFrame) -> np.ndarray:
    """Feature values as numbers for colouring plots: categories become their codes."""
    return np.column_stack([
        rows[c].to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(rows[c])
        else rows[c].astype("category").cat.codes.to_numpy(dtype=float)
        for c in rows.columns
    ])


def global_importance(explanation: shap.Explanation) -> pd.Series:
    """Mean |SHAP| per feature (summed over classes for a multiclass model), largest first."""
    importance = np.abs(explanation.values).mean(axis=0)
    if importance.ndim == 2:
        importance = importance.sum(axis=1)
    return pd.Series(importance, index=explanation.feature_names, name="mean_abs_shap").sort_values(ascending=False)


def confidently_wrong(y: np.ndarray, pred: np.ndarray, k: int = 5) -> np.ndarray:
    """Positions of the k predictions furthest from the truth: a default scored safe or the reverse, the
    lowest probability given to the true class, or the largest residuals."""
    miss = 1 - pred[np.arange(len(y)), y] if pred.ndim == 2 else np.abs(y - pred)
    return np.argsort(-miss)[:k]


SCORING = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "r2"}  # permutation importance


def permutation(model: Pipeline, X: pd.DataFrame, y: np.ndarray, seed: int, repeats: int = 5,
                task: str = "binary") -> pd.DataFrame:
    """Drop in the test score (ROC AUC, macro one-vs-rest ROC AUC, or R²) when one feature's values are shuffled."""
    result = permutation_importance(model, X, y, scoring=SCORING[task], n_repeats=repeats, random_state=seed)
    return pd.DataFrame(
        {"mean_score_drop": result.importances_mean, "std": result.importances_std}, index=X.columns
    ).sort_values("mean_score_drop", ascending=False)


def single_feature_scores(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame, y_test: np.ndarray,
                          task: str = "binary", n_classes: int = 2) -> pd.Series:
    """How well each feature alone predicts the target on the test split: ROC AUC (0.5 = not at all) for
    a classifier, R² (0 = not at all) for a regression.

    Binary: numbers as they are, categories scored by their training default rate, the AUC folded to
    >= 0.5 (a feature that predicts the target inversely leaks just as much).  Multiclass: each feature
    cut into at most 20 bins (categories as they are), each bin predicting its training class shares,
    scored by macro one-vs-rest AUC.  Regression: a monotone (isotonic) fit of the target on a number,
    the category means for a string, scored by R².
    """
    scores = {}
    for column in X_test.columns:
        if task == "binary":
            scores[column] = _binary_single(X_train[column], y_train, X_test[column], y_test)
            continue
        if task == "regression":
            scores[column] = float(r2_score(y_test, _one_feature_regression(X_train[column], y_train, X_test[column])))
        else:
            train_bins, test_bins = _bins(X_train[column], X_test[column])
            shares = pd.crosstab(train_bins.to_numpy(), y_train, normalize="index").reindex(
                columns=range(n_classes), fill_value=0.0)
            prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
            predicted = shares.reindex(test_bins.to_numpy()).fillna(pd.Series(prior, index=range(n_classes)))
            scores[column] = float(roc_auc_score(y_test, predicted.to_numpy(), multi_class="ovr",
                                                 labels=list(range(n_classes))))
    name = "single_feature_r2" if task == "regression" else "single_feature_auc"
    return pd.Series(scores, name=name).sort_values(ascending=False)


def _binary_single(train: pd.Series, y_train: np.ndarray, test: pd.Series, y_test: np.ndarray) -> float:
    if pd.api.types.is_numeric_dtype(test):
        values = test.fillna(train.median())
    else:
        rates = pd.Series(y_train, index=train.index).groupby(train).mean()
        values = test.map(rates).fillna(y_train.mean())
    auc = roc_auc_score(y_test, values.to_numpy(dtype=float))
    return max(auc, 1 - auc)


def _one_feature_regression(train: pd.Series, y_train: np.ndarray, test: pd.Series) -> np.ndarray:
    """The target predicted from one feature: a monotone fit for numbers (a leaked copy of the target, however
    skewed, is fitted almost exactly), the training mean per category otherwise."""
    if pd.api.types.is_numeric_dtype(train):
        fill = train.median() if train.notna().any() else 0.0
        fitted = IsotonicRegression(increasing="auto", out_of_bounds="clip")
        fitted.fit(train.fillna(fill).to_numpy(dtype=float), y_train)
        return fitted.predict(test.fillna(fill).to_numpy(dtype=float))
    means = pd.Series(y_train, index=train.index).groupby(train.astype(str)).mean()
    return test.astype(str).map(means).fillna(float(np.mean(y_train))).to_numpy(dtype=float)


def _bins(train: pd.Series, test: pd.Series, n_bins: int = 20) -> tuple[pd.Series, pd.Series]:
    """A feature as bin labels: quantile bins of the training values for numbers, categories as they are;
    missing values are a bin of their own."""
    if pd.api.types.is_numeric_dtype(train) and train.nunique() > n_bins:
        edges = np.unique(np.nanquantile(train.to_numpy(dtype=float), np.linspace(0, 1, n_bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        cut = [pd.cut(side, edges, labels=False).astype("float64").fillna(-1) for side in (train, test)]
        return cut[0].astype(str), cut[1].astype(str)
    return train.astype(str), test.astype(str)
