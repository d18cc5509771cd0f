"""The pure helpers behind the stages: schema checks, robustness, leakage, drift, plots."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.compose import make_column_transformer

from runner.analysis import datasets, drift, explain, metrics, modeling, plots, profiling, robustness, tasks


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


def test_the_prediction_shift_interval_holds_its_level_with_no_shift_and_errs_wide_with_one():
    """Scores N(0, 1) in training and now: with no shift, the interval starts at 0 in 93-97% of 400 sample
    pairs (the K-S test's level; the Dvoretzky-Kiefer-Wolfowitz band used before did in 100%).  N(0.3, 1) now:
    the population K-S distance is 2 Phi(0.15) - 1 = 0.119, held at least 95% of the time; a multiclass
    model's interval (the largest over its classes) is wider than a single score's."""
    sampler = np.random.default_rng(4)
    alike = [drift.prediction_shift(sampler.normal(0, 1, 800), sampler.normal(0, 1, 400)) for _ in range(400)]
    assert 0.93 <= np.mean([f["prediction_ks_ci_low"] == 0 for f in alike]) <= 0.97
    truth = 2 * norm.cdf(0.15) - 1
    found = [drift.prediction_shift(sampler.normal(0, 1, 800), sampler.normal(0.3, 1, 400)) for _ in range(200)]
    assert np.mean([f["prediction_ks_ci_low"] <= truth <= f["prediction_ks_ci_high"] for f in found]) >= 0.95
    one = found[0]
    assert 0 <= one["prediction_ks_ci_low"] < one["prediction_ks"] < one["prediction_ks_ci_high"] <= 1
    scores = sampler.dirichlet([1, 1, 1], (2, 500))
    three = drift.prediction_shift(scores[0], scores[1])
    assert three["prediction_ks"] == max(drift.prediction_ks(scores[0][:, k], scores[1][:, k]) for k in range(3))
    single = drift.prediction_shift(scores[0][:, 0], scores[1][:, 0])
    assert three["prediction_ks_ci_high"] - three["prediction_ks"] > single["prediction_ks_ci_high"] - \
        single["prediction_ks"]


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
