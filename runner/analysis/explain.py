"""Why the model predicts what it does: SHAP, permutation importance, and a leakage scan.

SHAP runs on the fitted estimator in its own (encoded) feature space, where
shap's fast exact explainers apply: LinearExplainer for logistic regression,
TreeExplainer for boosted trees in its path-dependent form (given background
data, its interventional form does not add up for scikit-learn's
histogram boosting).  SHAP values are additive, so encoded columns (one-hot
levels) are summed back to the raw feature they came from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shap
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline


def shap_explanation(model: Pipeline, background: pd.DataFrame, rows: pd.DataFrame) -> shap.Explanation:
    """SHAP values of ``rows`` for the positive class, one column per raw feature, in the model's raw
    output: log-odds for a booster or a linear model, probability for a forest."""
    encode, estimator = model[:-1], model[-1]
    if hasattr(estimator, "coef_"):
        explainer = shap.LinearExplainer(estimator, encode.transform(background))
    else:
        explainer = shap.TreeExplainer(estimator)
    encoded = explainer(encode.transform(rows))
    if encoded.values.ndim == 3:  # one slice per class (a forest): the positive class's
        encoded = encoded[..., 1]
    owners = _owners(list(encode.get_feature_names_out()), list(rows.columns))
    values = np.zeros((len(rows), rows.shape[1]))
    for column, owner in enumerate(owners):
        values[:, owner] += encoded.values[:, column]
    return shap.Explanation(
        values=values,
        base_values=encoded.base_values,
        data=_numeric_view(rows),
        feature_names=list(rows.columns),
    )


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
    """Mean |SHAP| per feature, largest first."""
    importance = np.abs(explanation.values).mean(axis=0)
    return pd.Series(importance, index=explanation.feature_names, name="mean_abs_shap").sort_values(ascending=False)


def confidently_wrong(y: np.ndarray, proba: np.ndarray, k: int = 5) -> np.ndarray:
    """Positions of the k predictions furthest from the truth (a default scored safe, or the reverse)."""
    return np.argsort(-np.abs(y - proba))[:k]


def permutation(model: Pipeline, X: pd.DataFrame, y: np.ndarray, seed: int, repeats: int = 5) -> pd.DataFrame:
    """Drop in test ROC AUC when one feature's values are shuffled."""
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats, random_state=seed)
    return pd.DataFrame(
        {"mean_auc_drop": result.importances_mean, "std": result.importances_std}, index=X.columns
    ).sort_values("mean_auc_drop", ascending=False)


def single_feature_auc(
    X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame, y_test: np.ndarray
) -> pd.Series:
    """How well each feature alone separates the classes on the test split (0.5 = not at all).

    Categories are scored by their default rate on the training split; the AUC
    is folded to >= 0.5 since a feature that predicts the target inversely
    leaks just as much.
    """
    scores = {}
    for column in X_test.columns:
        if pd.api.types.is_numeric_dtype(X_test[column]):
            values = X_test[column].fillna(X_train[column].median())
        else:
            rates = pd.Series(y_train, index=X_train.index).groupby(X_train[column]).mean()
            values = X_test[column].map(rates).fillna(y_train.mean())
        auc = roc_auc_score(y_test, values.to_numpy(dtype=float))
        scores[column] = max(auc, 1 - auc)
    return pd.Series(scores, name="single_feature_auc").sort_values(ascending=False)
