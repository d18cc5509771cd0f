"""Multiclass and regression evidence: each figure against scikit-learn or a hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from runner.analysis import comparison, fairness, metrics, modeling, plots, profiling, robustness, tasks

rng = np.random.default_rng(3)
N = 600
Y_CLASS = rng.integers(0, 3, N)
PROBA = np.clip(np.eye(3)[Y_CLASS] * 0.5 + rng.random((N, 3)), 0.01, None)
PROBA = PROBA / PROBA.sum(axis=1, keepdims=True)
PRIOR = np.tile(np.bincount(Y_CLASS) / N, (N, 1))
Y_REG = rng.gamma(2.0, 500.0, N) + 1
PRED_REG = Y_REG * rng.normal(1, 0.3, N)


def test_multiclass_evidence_matches_scikit_learn():
    found = metrics.evaluate("multiclass", Y_CLASS, PROBA, PRIOR, 3, n_boot=50, seed=1)
    top = PROBA.argmax(axis=1)
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(Y_CLASS, top))
    assert found["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y_CLASS, top))
    assert found["f1_macro"] == pytest.approx(skm.f1_score(Y_CLASS, top, average="macro"))
    assert found["f1_weighted"] == pytest.approx(skm.f1_score(Y_CLASS, top, average="weighted"))
    assert found["log_loss"] == pytest.approx(skm.log_loss(Y_CLASS, PROBA))
    assert found["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(Y_CLASS, PROBA, multi_class="ovr"))
    assert found["baseline_roc_auc_ovr"] == pytest.approx(0.5)
    assert found["log_loss_lift"] == pytest.approx(found["baseline_log_loss"] - found["log_loss"]) and \
        found["log_loss_lift"] > 0  # lower is better: the lift is still positive for the better model
    for name in metrics.HEADLINE["multiclass"]:
        assert found[f"{name}_ci_low"] <= found[name] <= found[f"{name}_ci_high"]


def test_regression_evidence_matches_scikit_learn_and_mape_needs_nonzero_targets():
    base = np.full(N, Y_REG.mean())
    found = metrics.evaluate("regression", Y_REG, PRED_REG, base, 0, n_boot=50, seed=1)
    assert found["mae"] == pytest.approx(skm.mean_absolute_error(Y_REG, PRED_REG))
    assert found["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(Y_REG, PRED_REG)))
    assert found["r2"] == pytest.approx(skm.r2_score(Y_REG, PRED_REG))
    assert found["median_ae"] == pytest.approx(skm.median_absolute_error(Y_REG, PRED_REG))
    assert found["mape"] == pytest.approx(skm.mean_absolute_percentage_error(Y_REG, PRED_REG))
    assert found["mae_lift"] == pytest.approx(found["baseline_mae"] - found["mae"]) and found["mae_lift"] > 0
    assert found["r2_ci_low"] < found["r2"] < found["r2_ci_high"]
    median = np.full(N, np.median(Y_REG))
    by_median = metrics.evaluate("regression", Y_REG, PRED_REG, base, 0, n_boot=20, seed=1, median_pred=median)
    assert by_median["baseline_mae"] == pytest.approx(skm.mean_absolute_error(Y_REG, median))
    assert by_median["baseline_mae"] < found["baseline_mae"]  # the median is the better constant for MAE
    assert by_median["baseline_rmse"] == found["baseline_rmse"]  # the mean stays the baseline of squared errors
    with_zero = metrics.evaluate("regression", np.r_[0.0, Y_REG[1:]], PRED_REG, base, 0, n_boot=20, seed=1)
    assert "mape" not in with_zero and "mape_ci_low" not in with_zero


def test_bootstrap_says_when_a_class_is_too_rare_to_resample():
    y = np.r_[np.zeros(500, int), np.arange(1, 9)]  # eight classes of one row: all in a resample 2.6% of the time
    with pytest.raises(ValueError, match="a class is too rare in these 508 rows to bootstrap"):
        metrics.intervals("multiclass", y, np.eye(9)[y], ["roc_auc_ovr"], 200, 1, n_classes=9)


def test_top_label_calibration_and_per_class_table():
    confident = np.eye(3)[Y_CLASS] * 0.97 + 0.01  # right every time, and 98% sure
    assert metrics.top_label_calibration_error(Y_CLASS, confident) == pytest.approx(0.02)
    table = metrics.per_class(Y_CLASS, PROBA, ["a", "b", "c"])
    recall = skm.recall_score(Y_CLASS, PROBA.argmax(axis=1), average=None)
    assert list(table.index) == ["a", "b", "c"] and np.allclose(table["recall"], recall)
    assert table["support"].sum() == N


def test_overfitting_gap_by_task():
    gap = metrics.overfitting("regression", Y_REG, Y_REG, 0.6, 0)
    assert gap == {"train_r2": 1.0, "train_test_r2_gap": pytest.approx(0.4)}
    assert set(metrics.overfitting("multiclass", Y_CLASS, PROBA, 0.5, 3)) == {"train_roc_auc_ovr",
                                                                              "train_test_auc_gap"}


def test_multiclass_fairness_figures_match_hand_counts():
    groups = pd.Series(np.where(np.arange(N) % 3 == 0, "F", "M"))
    figures = fairness.disparities(Y_CLASS, PROBA, None, groups, 30, task="multiclass", classes=["a", "b", "c"])
    top = PROBA.argmax(axis=1)
    accuracy = pd.Series(top == Y_CLASS).groupby(groups).mean()
    assert figures["accuracy_difference"] == pytest.approx(accuracy.max() - accuracy.min())
    assert figures["worst_group_accuracy"] == pytest.approx(accuracy.min())
    for code, label in enumerate("abc"):
        shares = pd.Series(top == code).groupby(groups).mean()
        assert figures["disparate_impact_ratio_by_class"][label] == pytest.approx(shares.min() / shares.max())
    assert figures["disparate_impact_ratio"] == min(figures["disparate_impact_ratio_by_class"].values())
    table = fairness.group_table(Y_CLASS, PROBA, None, groups, "multiclass", ["a", "b", "c"])
    assert list(table.columns) == ["count", "accuracy", "selection_rate_a", "selection_rate_b", "selection_rate_c"]


def test_regression_fairness_is_bounded_group_loss_and_mean_prediction_parity():
    groups = pd.Series(np.where(np.arange(N) < 200, "young", "old"))
    pred = PRED_REG + np.where(groups == "young", 300.0, 0.0)  # worse and higher for the young
    figures = fairness.disparities(Y_REG, pred, None, groups, 30, n_boot=30, seed=2, task="regression")
    mae = pd.Series(np.abs(Y_REG - pred)).groupby(groups).mean()
    mean = pd.Series(pred).groupby(groups).mean()
    assert figures["mae_ratio"] == pytest.approx(mae.max() / mae.min()) and figures["mae_ratio"] > 1
    assert figures["mae_difference"] == pytest.approx(mae.max() - mae.min())
    assert figures["mean_prediction_ratio"] == pytest.approx(mean.min() / mean.max())
    assert figures["mean_prediction_difference"] == pytest.approx(mean.max() - mean.min())
    assert figures["mae_difference_ci_low"] < figures["mae_difference"] < figures["mae_difference_ci_high"]
    table = fairness.group_table(Y_REG, pred, None, groups, "regression")
    assert fairness.plotted(table) == ["mae", "mean_prediction", "mean_actual"]


def test_champion_comparison_by_task():
    same = comparison.versus("regression", Y_REG, PRED_REG, PRED_REG, None, 0, 30, 1)
    assert same["champion_mean_abs_pred_diff"] == 0 and same["champion_rank_correlation"] == pytest.approx(1)
    assert same["mae_delta_vs_champion"] == 0 and same["r2_delta_vs_champion"] == 0
    better = comparison.versus("multiclass", Y_CLASS, PROBA, PRIOR, None, 3, 30, 1)
    assert better["champion_disagreement"] == pytest.approx(np.mean(PROBA.argmax(axis=1) != PRIOR.argmax(axis=1)))
    assert better["champion_mean_abs_prob_diff"] == pytest.approx(np.mean(np.abs(PROBA - PRIOR).sum(axis=1) / 2))
    assert 0 < better["roc_auc_ovr_delta_vs_champion_ci_low"] < better["roc_auc_ovr_delta_vs_champion"]


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_models_of_every_type_learn_the_task_and_survive_broken_inputs(task):
    from runner.analysis import datasets

    frame, _ = datasets.synthetic_credit(1500, seed=4, task=task, target="y")
    y, classes = tasks.encode(frame["y"], task, {}, "synthetic", "y")
    X = frame.drop(columns=["y", "sex", "age_band"])
    assignment = modeling.split(y, 0.2, 0.2, 1, task)
    train, test = (assignment == "train").to_numpy(), (assignment == "test").to_numpy()
    for model_type in ("hist_gradient_boosting", "linear", "random_forest", "xgboost", "lightgbm"):
        model = modeling.build(model_type, X, 1, 60, 0.1, task=task).fit(X[train], y[train])
        pred = tasks.predictions(model, X[test], task)
        if task == "regression":
            assert pred.shape == (test.sum(),) and skm.r2_score(y[test], pred) > 0.3, model_type
        else:
            assert pred.shape == (test.sum(), 4) and skm.roc_auc_score(y[test], pred, multi_class="ovr") > 0.7
        checks = robustness.check(model, robustness.scenarios(X[train], X[test].head(10)), task)
        assert checks["ok"].all(), (model_type, checks["problem"].tolist())
    assert modeling.baseline(task).fit(X, y).predict(X.head(1)).shape == (1,)
    fig = (plots.regression_evaluation(y[test].to_numpy(), pred) if task == "regression" else
           plots.multiclass_evaluation(y[test].to_numpy(), pred, classes, metrics.per_class(y[test], pred, classes)))
    assert len(fig.axes) >= 3


def test_a_regression_split_is_random_and_a_classification_split_stratified():
    y = pd.Series(np.r_[np.zeros(900), np.ones(100)])
    stratified = modeling.split(y, 0.2, 0.2, 1, "binary")
    assert y[(stratified == "test").to_numpy()].mean() == pytest.approx(0.1)
    assert set(modeling.split(pd.Series(Y_REG), 0.2, 0.2, 1, "regression")) == {"train", "valid", "test"}


def test_eda_summary_by_task():
    frame = pd.DataFrame({"x": range(8), "y": [0, 1, 2, 2, 1, 0, 0, 0]})
    multiclass = profiling.summary(frame, "y", "multiclass")
    assert (multiclass["n_classes"], multiclass["min_class_rate"]) == (3, 0.25)
    regression = profiling.summary(frame.assign(y=[0.0, 1, 2, 3, 4, 5, 6, 7]), "y", "regression")
    assert regression["target_mean"] == 3.5 and regression["target_zero_rate"] == 0.125
    assert "positive_rate" not in regression
    balance = profiling.class_balance(frame, "y", ["low", "mid", "high"])
    assert balance["count"].to_dict() == {"low": 4, "mid": 2, "high": 2}
