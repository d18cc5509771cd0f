import numpy as np
import pandas as pd
import pytest

from runner.analysis import datasets
from runner.config import DEFAULTS
from runner.errors import SignoffError


def test_same_seed_same_data_other_seed_other_data():
    first, first_current = datasets.synthetic_credit(1000, seed=7)
    again, again_current = datasets.synthetic_credit(1000, seed=7)
    other, _ = datasets.synthetic_credit(1000, seed=8)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first_current, again_current)
    assert not first.equals(other)
    assert datasets.fingerprint(first) == datasets.fingerprint(again) != datasets.fingerprint(other)


def test_columns_kinds_and_binary_target():
    frame, current = datasets.synthetic_credit(2000, seed=1)
    assert set(datasets.NUMERIC + datasets.CATEGORICAL + ["default"]) == set(frame.columns)
    assert set(frame["default"].unique()) == {0, 1}
    assert set(frame["sex"]) == {"F", "M"} and set(frame["age_band"]) <= set(datasets.AGE_BANDS)
    assert 0.1 < frame["default"].mean() < 0.4
    assert frame["income"].isna().any()  # imputation has something to do
    assert len(current) == 1000


def test_bias_shifts_one_sex_outcomes():
    fair, _ = datasets.synthetic_credit(20000, seed=3, bias=0.0)
    biased, _ = datasets.synthetic_credit(20000, seed=3, bias=1.0)

    def gap(frame):
        rates = frame.groupby("sex")["default"].mean()
        return rates["F"] - rates["M"]

    assert abs(gap(fair)) < 0.03
    assert gap(biased) > 0.1


def test_drift_moves_the_current_sample_only():
    reference, still = datasets.synthetic_credit(5000, seed=4, drift=0.0)
    drifted_reference, drifted = datasets.synthetic_credit(5000, seed=4, drift=1.0)
    pd.testing.assert_frame_equal(reference, drifted_reference)
    assert abs(still["debt_ratio"].mean() - reference["debt_ratio"].mean()) < 0.02
    assert drifted["debt_ratio"].mean() - reference["debt_ratio"].mean() > 0.1
    assert drifted["late_payments"].mean() > reference["late_payments"].mean() + 0.5


def test_load_caches_parquet_keyed_by_parameters(tmp_path):
    params = {**DEFAULTS["data"], "synthetic": {"n_rows": 300, "drift": 0.0, "bias": 0.0}}
    reference, current = datasets.load(params, 5, tmp_path)
    assert len(list(tmp_path.glob("data-*/reference.parquet"))) == 1
    again, _ = datasets.load(params, 5, tmp_path)
    pd.testing.assert_frame_equal(reference, again)
    datasets.load(params, 6, tmp_path)
    assert len(list(tmp_path.glob("data-*/reference.parquet"))) == 2


def real(tmp_path, frame, name="d.csv", **overrides):
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path, {**DEFAULTS["data"], "path": str(path), "target": "y", "sensitive_features": ["group"], **overrides}


def test_real_data_csv_and_parquet_with_string_labels(tmp_path):
    frame = pd.DataFrame({"x": np.arange(40.0), "group": list("ab") * 20, "y": ["bad", "good"] * 20})
    path, params = real(tmp_path, frame, "d.parquet", positive_label="bad")
    loaded = datasets.prepared(params, 1, tmp_path / "cache")
    assert loaded.reference["y"].tolist() == [1, 0] * 20 and loaded.task == "binary"
    assert loaded.classes == ["good", "bad"]  # code order: 0, then the positive label
    path, params = real(tmp_path, frame.assign(y=[True, False] * 20))
    assert datasets.load(params, 1, tmp_path / "cache")[0]["y"].tolist() == [1, 0] * 20


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"x": [1], "y": [0]}), r"column 'group' .* is missing"),
        (pd.DataFrame({"x": [1], "group": ["a"]}), r"column 'y' .* is missing"),
        (pd.DataFrame({"group": ["a"] * 2, "y": [1, None]}), r"target column 'y' has 1 missing values in 2 rows"),
    ],
)
def test_bad_real_data_names_file_and_column(tmp_path, frame, message):
    path, params = real(tmp_path, frame)
    with pytest.raises(SignoffError, match=message) as caught:
        datasets.read_table(path, params)
    assert str(path) in str(caught.value)


def test_missing_or_unknown_data_file(tmp_path):
    params = {**DEFAULTS["data"], "target": "y", "sensitive_features": []}
    with pytest.raises(SignoffError, match="no such data file"):
        datasets.read_table(tmp_path / "none.csv", params)
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(SignoffError, match="expected a .csv or .parquet"):
        datasets.read_table(tmp_path / "d.xlsx", params)


def labelled(n=200, **columns):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["a", "b"], n), "y": np.arange(n) % 2, **columns})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (labelled().head(0), r"no rows \(only a header: x, group, y\)"),
        (labelled().assign(y=1), r"target column 'y' holds a single class \(1\) in all 200 rows"),
        (labelled().assign(y=[1] * 195 + [0] * 5), r"only 5 rows of class 0"),
        (labelled().assign(group=None), r"sensitive feature 'group' is missing in every row"),
        (labelled()[["group", "y"]].assign(blank=np.nan), "no feature column left"),
        (labelled().assign(y=["p", "q"] * 100), r"target column 'y' must be 0/1 or boolean, or name "
                                                r"data.positive_label; found \['p', 'q'\]"),
        (labelled().assign(y=np.arange(200) % 3 + 1), r"target column 'y' holds 3 distinct whole numbers: classes "
                                                      r"or a count\? Set data.task to multiclass or regression"),
        (labelled().assign(y=[f"c{i % 25}" for i in range(200)]), r"target column 'y' holds 25 distinct labels, more "
                                                                 r"than the 20 classes"),
        (labelled().assign(y=["a", "b", "c", "d"] * 49 + ["e"] * 4), r"only 4 rows of class 'e'"),
    ],
)
def test_data_no_model_can_learn_from_is_refused_naming_file_and_column(tmp_path, frame, message):
    path, params = real(tmp_path, frame)
    with pytest.raises(SignoffError, match=message) as caught:
        datasets.load(params, 1, tmp_path / "cache")
    assert str(path) in str(caught.value) and caught.value.exit_code == 2


def test_all_missing_and_identifier_columns_are_dropped_with_a_warning(tmp_path):
    frame = labelled(customer_id=[f"C{i:05d}" for i in range(200)], empty=np.nan, city=["x", "y"] * 100,
                     serial=np.arange(200))
    path, params = real(tmp_path, frame)
    reference, _, warnings, _, _ = datasets.prepared(params, 1, tmp_path / "cache")
    assert "customer_id" not in reference and "empty" not in reference
    assert {"city", "serial", "x"} <= set(reference.columns)  # a category, a number: kept
    assert any("'customer_id' dropped" in w and "identifier" in w and str(path) in w for w in warnings)
    assert any("'empty' dropped: every value is missing" in w for w in warnings)
    assert datasets.prepared(params, 1, tmp_path / "cache")[2] == warnings  # the cached copy keeps them


def test_current_data_lacking_training_features_is_named_in_a_warning(tmp_path):
    path, params = real(tmp_path, labelled(income=1.0, purpose="car"))
    current = tmp_path / "current.csv"
    labelled().drop(columns=["y"]).assign(extra=3).to_csv(current, index=False)
    _, loaded, warnings, _, _ = datasets.prepared({**params, "current_path": str(current)}, 1, tmp_path / "cache")
    assert warnings == [f"{current}: current data lacks the training data's feature columns 'income', 'purpose': "
                        "drift is measured on the columns it has, and the EDA stage reports these as removed"]
    assert "extra" in loaded  # a new column stays, for the EDA stage to report
    labelled().head(0).to_csv(current, index=False)
    with pytest.raises(SignoffError, match=r"current.csv: no rows \(only a header"):
        datasets.load({**params, "current_path": str(current)}, 1, tmp_path / "cache2")


def test_a_directory_is_named_as_one(tmp_path):
    params = {**DEFAULTS["data"], "target": "y", "sensitive_features": []}
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(SignoffError, match="folder.csv: is a directory; expected a CSV or Parquet file"):
        datasets.read_table(tmp_path / "folder.csv", params)


@pytest.mark.parametrize(
    ("target", "declared", "task"),
    [
        (np.arange(200) % 2, "auto", "binary"),
        (np.linspace(0, 1, 200), "auto", "regression"),  # fractional values
        (np.arange(200) % 40, "auto", "regression"),  # more whole numbers than the class limit
        (np.array(["low", "mid", "high", "top"] * 50), "auto", "multiclass"),
        (np.arange(200) % 3, "multiclass", "multiclass"),  # the user settles what a few integers are
        (np.arange(200) % 3, "regression", "regression"),
    ],
)
def test_the_task_is_inferred_from_the_target_or_declared(tmp_path, target, declared, task):
    path, params = real(tmp_path, labelled(y=target), task=declared)
    prepared = datasets.prepared(params, 1, tmp_path / "cache")
    assert prepared.task == task
    if task == "multiclass":  # classes as codes 0..K-1 in label order, the names kept
        assert sorted(prepared.reference["y"].unique()) == list(range(len(prepared.classes)))
        assert [prepared.classes[c] for c in prepared.reference["y"].head(4)] == [str(v) for v in target[:4]]


@pytest.mark.parametrize(
    ("target", "declared", "message"),
    [
        (np.arange(200) % 3, "binary", r"data.task is binary but target column 'y' holds 3 distinct values "
                                       r"\(0, 1, 2\)"),
        (np.arange(200) % 2, "multiclass", "holds 2 distinct values .*; set data.task: binary"),
        (np.array(["a", "b", "c"] * 66 + ["a", "b"]), "regression", "data.task is regression but target column 'y' "
                                                                    "is not numeric"),
    ],
)
def test_a_declared_task_the_target_contradicts_is_refused(tmp_path, target, declared, message):
    path, params = real(tmp_path, labelled(y=target), task=declared)
    with pytest.raises(SignoffError, match=message) as caught:
        datasets.load(params, 1, tmp_path / "cache")
    assert str(path) in str(caught.value) and caught.value.exit_code == 2


def test_current_labels_are_coded_like_the_training_labels_and_unknown_ones_refused(tmp_path):
    grades = np.array(["A", "B", "C"] * 66 + ["A", "B"])
    path, params = real(tmp_path, labelled(y=grades))
    current = tmp_path / "current.csv"
    labelled(y=grades[::-1]).to_csv(current, index=False)
    loaded = datasets.load({**params, "current_path": str(current)}, 1, tmp_path / "cache")[1]
    assert loaded["y"].head(3).tolist() == [1, 0, 2]  # B, A, C
    labelled(y=["A", "Z"] * 100).to_csv(current, index=False)
    with pytest.raises(SignoffError, match="current.csv: target column 'y' holds labels the training data does not: Z"):
        datasets.load({**params, "current_path": str(current)}, 1, tmp_path / "cache2")


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_synthetic_tasks_keep_the_bias_and_drift_knobs(task):
    fair, _ = datasets.synthetic_credit(20000, seed=3, task=task, target="y")
    biased, drifted = datasets.synthetic_credit(20000, seed=3, bias=1.5, drift=1.0, task=task, target="y")

    def risk(frame):  # share of the two worst grades, or the mean loss
        return frame["y"].isin(["C", "D"]) if task == "multiclass" else frame["y"]

    def gap(frame):
        by_sex = risk(frame).groupby(frame["sex"]).mean()
        return (by_sex["F"] - by_sex["M"]) / risk(frame).mean()

    assert abs(gap(fair)) < 0.05 < gap(biased)
    assert risk(drifted).mean() > 1.1 * risk(biased).mean()  # the current sample is riskier
    if task == "multiclass":
        assert sorted(fair["y"].unique()) == datasets.GRADES and fair["y"].value_counts(normalize=True).min() > 0.05
    else:
        assert fair["y"].dtype == "float64" and (fair["y"] > 0).all()


def test_a_cache_folder_of_an_older_signoff_without_the_target_facts_is_rebuilt(tmp_path):
    params = {**DEFAULTS["data"], "synthetic": {**DEFAULTS["data"]["synthetic"], "n_rows": 300}}
    datasets.prepared(params, 5, tmp_path)
    (facts,) = tmp_path.glob("data-*/facts.json")
    facts.unlink()  # as an earlier version left it: the frames, no task
    again = datasets.prepared(params, 5, tmp_path)
    assert again.task == "binary" and facts.is_file()
