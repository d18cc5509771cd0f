"""The pure helpers behind the stages: schema checks, robustness, leakage, drift, plots."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, norm
from sklearn.compose import make_column_transformer

from runner.analysis import datasets, drift, explain, metrics, modeling, plots, profiling, resampling, robustness, tasks


@pytest.fixture(scope="module")
def credit():
    reference, current = datasets.synthetic_credit(3000, seed=5)
    X = reference[datasets.features(reference, {"target": "default", "sensitive_features": ["sex", "age_band"]})]
    return reference, current, X, reference["default"].to_numpy()


def test_schema_violations_name_every_kind_of_change(credit):
    reference, current, _, _ = credit
    changed = current.drop(columns=["housing"]).assign(
        purpose=current["purpose"].replace("car", "crypto"), extra=1.0,
        income=current["income"].mask(np.arange(len(current)) % 5 == 0), age=current["age"].astype(str),
    )
    found = profiling.violations(profiling.schema_record(reference), profiling.schema_record(changed), "current data")
    kinds = {(v["column"], v["violation"]) for v in found}
    assert kinds == {
        ("housing", "column removed"), ("extra", "column added"), ("purpose", "new categories"),
        ("purpose", "vanished categories"), ("income", "missing-rate jump"), ("age", "dtype changed"),
    }
    assert profiling.violations(profiling.schema_record(reference), profiling.schema_record(current), "x") == []


@pytest.mark.parametrize("model_type", modeling.MODEL_TYPES)
def test_models_survive_every_robustness_scenario(credit, model_type):
    _, _, X, y = credit
    model = modeling.build(model_type, X, 0, 50, 0.1).fit(X, y)
    checks = robustness.check(model, robustness.scenarios(X, X.head(20)))
    assert len(checks) == 5 and checks["ok"].all(), checks


def test_robustness_reports_a_model_that_crashes(credit):
    _, _, X, _ = credit

    class Fragile:
        def predict_proba(self, frame):
            if frame.isna().any().any():
                raise ValueError("NaN in input")
            return np.column_stack([np.zeros(len(frame)), np.full(len(frame), np.inf)])

    checks = robustness.check(Fragile(), robustness.scenarios(X, X.head(5)))
    assert not checks["ok"].any()
    assert "ValueError: NaN in input" in " ".join(checks["problem"]) and "non-finite" in " ".join(checks["problem"])


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_leakage_scan_and_shap_find_a_copied_target(task):
    reference, _ = datasets.synthetic_credit(3000, seed=5, leak=True, task=task)
    X = reference[datasets.features(reference, {"target": "default", "sensitive_features": ["sex", "age_band"]})]
    y, classes = tasks.encode(reference["default"], task, {}, "synthetic", "default")
    y = y.to_numpy()
    single = explain.single_feature_scores(X.iloc[:2000], y[:2000], X.iloc[2000:], y[2000:], task, len(classes))
    assert single.index[0] == "collections_flag" and single.iloc[0] > 0.9
    assert single.drop("collections_flag").max() < (0.5 if task == "regression" else 0.8)
    for model_type in modeling.MODEL_TYPES:
        if task == "regression" and model_type == "logistic_regression":
            continue
        model = modeling.build(model_type, X, 0, 50, 0.1, task=task).fit(X.iloc[:2000], y[:2000])
        values = explain.shap_explanation(model, X.iloc[:100], X.iloc[2000:2300], task)
        per_class = (len(classes),) if task == "multiclass" else ()
        assert values.values.shape == (300, X.shape[1], *per_class)  # a column per raw feature, one-hot levels summed
        assert explain.global_importance(values).index[0] == "collections_flag"


def test_a_multiclass_explanation_is_drawn_for_each_row_s_own_class():
    reference, _ = datasets.synthetic_credit(1500, seed=5, task="multiclass")
    X = reference[["debt_ratio", "late_payments", "income"]]
    y, classes = tasks.encode(reference["default"], "multiclass", {}, "synthetic", "default")
    model = modeling.build("hist_gradient_boosting", X, 0, 50, 0.1, task="multiclass").fit(X, y)
    values = explain.shap_explanation(model, X.head(50), X.head(20), "multiclass")
    predicted = model.predict_proba(X.head(20)).argmax(axis=1)
    shown = explain.of_class(values, predicted)
    assert shown.values.shape == (20, 3)
    assert np.allclose(shown.values[4], values.values[4, :, predicted[4]])
    importance = explain.class_importance(values, classes)
    assert list(importance.columns) == classes and np.allclose(importance.sum(axis=1),
                                                               explain.global_importance(values)[importance.index])


def test_drift_detects_a_shifted_sample():
    reference, still = datasets.synthetic_credit(3000, seed=6, drift=0.0)
    _, moved = datasets.synthetic_credit(3000, seed=6, drift=1.5)
    calm, shifted = drift.column_drift(reference, still), drift.column_drift(reference, moved)
    assert drift.summary(calm)["share_drifted_columns"] <= 0.1
    assert (
        drift.summary(shifted)["share_drifted_columns"] >= 0.5
        and "debt_ratio" in drift.summary(shifted)["drifted_columns"]
    )
    features = [c for c in reference.columns if c != "default"]
    same = drift.domain_classifier(reference[features], still[features], 0, 1500)
    assert same["domain_classifier_auc"] < 0.6 and same["domain_classifier_auc_ci_low"] < 0.55
    shifted = drift.domain_classifier(reference[features], moved[features], 0, 1500, level=0.9)
    assert 0.75 < shifted["domain_classifier_auc_ci_low"] < shifted["domain_classifier_auc"] < \
        shifted["domain_classifier_auc_ci_high"]
    assert drift.prediction_ks(np.linspace(0, 1, 100), np.linspace(0, 1, 100)) == 0


def test_the_prediction_shift_interval_holds_its_level_with_no_shift_and_with_one():
    """Scores N(0, 1) in training and now: with no shift, the interval starts at 0 in 93-97% of 400 sample
    pairs (the K-S test's level).  N(0.3, 1) now: the population K-S distance 2 Phi(0.15) - 1 = 0.119 lies in
    the interval in 93-97.5% of 400 pairs (the interval before this one, the K-S test's critical value below the
    observed distance and a standard error above it, held it in 99.25% of these pairs; a percentile bootstrap
    in about 80%), and the upper end misses at most 2.5% (it cannot miss more)."""
    sampler = np.random.default_rng(4)
    alike = [drift.prediction_shift(sampler.normal(0, 1, 800), sampler.normal(0, 1, 400)) for _ in range(400)]
    assert 0.93 <= np.mean([f["prediction_ks_ci_low"] == 0 for f in alike]) <= 0.97
    truth = 2 * norm.cdf(0.15) - 1
    sampler = np.random.default_rng(4)
    found = [drift.prediction_shift(sampler.normal(0, 1, 800), sampler.normal(0.3, 1, 400), n_boot=250, seed=seed)
             for seed in range(400)]
    assert 0.93 <= np.mean([f["prediction_ks_ci_low"] <= truth <= f["prediction_ks_ci_high"] for f in found]) <= 0.975
    assert np.mean([f["prediction_ks_ci_high"] < truth for f in found]) <= 0.025
    one = found[0]
    assert 0 <= one["prediction_ks_ci_low"] < one["prediction_ks"] < one["prediction_ks_ci_high"] <= 1


def test_the_prediction_shift_of_a_multiclass_model_is_its_largest_over_the_classes_and_reproducible():
    sampler = np.random.default_rng(8)
    scores = sampler.dirichlet([1, 1, 1], (2, 500))
    moved = sampler.dirichlet([2, 1, 1], 500)
    three = drift.prediction_shift(scores[0], moved, seed=3)
    assert three["prediction_ks"] == max(drift.prediction_ks(scores[0][:, k], moved[:, k]) for k in range(3))
    assert 0 < three["prediction_ks_ci_low"] < three["prediction_ks"] < three["prediction_ks_ci_high"]
    assert drift.prediction_shift(scores[0], moved, seed=3) == three  # a rerun gives the same interval
    assert drift.prediction_shift(scores[0], scores[1])["prediction_ks_ci_low"] == 0


def test_resampled_ks_distances_are_those_of_the_resampled_rows():
    """Computed from cumulative weights over sorted scores (ties included), against scipy's K-S distance of the
    rows each resample drew (the same weights, repeated as rows): the slow way."""
    sampler = np.random.default_rng(2)
    reference, current = sampler.normal(0, 1, 300).round(1), sampler.normal(0.3, 1, 200).round(1)
    fast = drift.resampled_ks(reference, current, 30, seed=5, noise=(1.0, 0.0))
    drawn = [np.concatenate(list(resampling.bootstrap_weights(len(rows), 30, seed))).astype(int)
             for rows, seed in ((reference, 5), (current, 6))]
    slow = [ks_2samp(np.repeat(reference, drawn[0][i]), np.repeat(current, drawn[1][i])).statistic for i in range(30)]
    np.testing.assert_allclose(fast[:, 0], slow, atol=1e-6)
    np.testing.assert_allclose(fast[:, 1], drift.prediction_ks(reference, current), atol=1e-6)  # no noise added


def test_calibration_error_and_bootstrap_interval():
    y = np.array([0, 0, 1, 1] * 50)
    assert metrics.expected_calibration_error(y, np.full(200, 0.5)) == pytest.approx(0.0)
    assert metrics.expected_calibration_error(y, np.where(y == 1, 0.95, 0.05)) == pytest.approx(0.05)
    rng = np.random.default_rng(0)
    proba = np.clip(y * 0.4 + rng.random(200) * 0.6, 0, 1)
    low, high = metrics.intervals("binary", y, proba, ["roc_auc"], 100, seed=1)["roc_auc"]
    assert low < metrics.roc_auc(y, proba) < high
    assert (low, high) == metrics.intervals("binary", y, proba, ["roc_auc"], 100, seed=1)["roc_auc"]


def test_proxy_and_leak_columns_of_the_generator():
    reference, _ = datasets.synthetic_credit(20000, seed=2)
    part_time = reference.groupby("sex")["employment_type"].apply(lambda s: (s == "part-time").mean())
    assert part_time["F"] > 0.4 > 0.1 > part_time["M"]
    assert "collections_flag" not in reference
    leaky, _ = datasets.synthetic_credit(2000, seed=2, leak=True)
    assert (leaky["collections_flag"] == leaky["default"]).mean() > 0.95


def test_a_category_column_with_thousands_of_values_is_drawn_as_its_most_frequent_ones():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"zip": [f"Z{i}" for i in rng.integers(0, 3000, 5000)], "y": rng.integers(0, 2, 5000)})
    fig = plots.distributions(frame, "y", ["zip"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == plots.MAX_BARS + 1 and plots.OTHER in labels


def test_a_model_without_a_fast_explainer_gets_additive_model_agnostic_shap_values():
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame, _ = datasets.synthetic_credit(400, seed=2, task="regression")
    X = frame[["debt_ratio", "late_payments", "purpose"]]
    encode = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["purpose"]), remainder="passthrough")
    model = make_pipeline(encode, KNeighborsRegressor(15)).fit(X, frame["default"])
    values = explain.shap_explanation(model, X.head(60), X.iloc[100:130], "regression")
    assert values.values.shape == (30, 3)
    assert np.allclose(values.values.sum(axis=1) + values.base_values, model.predict(X.iloc[100:130]))
