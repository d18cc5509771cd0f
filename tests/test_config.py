import importlib.util
from pathlib import Path

import pytest

from runner.config import load_params
from runner.errors import SignoffError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_file_gets_every_default(tmp_path):
    params = load_params(write(tmp_path / "p.yaml", "model: m1\ndata: {target: y, path: d.csv}\ngates: []\n"))
    assert params["seed"] == 42
    assert params["execution"] == {"cell_timeout": 600, "stage_timeout": 1800}
    assert params["data"]["synthetic"]["n_rows"] == 10000
    assert params["data"]["path"] == str((tmp_path / "d.csv").resolve())


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    write(tmp_path / "base" / "base.yaml", """
model: base
data: {current_path: cur.csv, synthetic: {n_rows: 900, drift: 0.5}}
stages: {train: {max_iter: 10, learning_rate: 0.2}}
gates: [{id: a, metric: validate.roc_auc, min: 0.5}, {id: b, metric: eda.n_rows, min: 1}]
""")
    child = write(tmp_path / "child.yaml", """
extends: base/base.yaml
model: child
data: {synthetic: {n_rows: 1200}}
stages: {train: {max_iter: 20}}
gates: [{id: c, metric: validate.brier, max: 0.3}]
""")
    params = load_params(child)
    assert params["model"] == "child"
    assert params["data"]["synthetic"] == {"n_rows": 1200, "drift": 0.5, "bias": 0.0, "leak": False, "task": "binary"}
    assert params["stages"]["train"] == {"max_iter": 20, "learning_rate": 0.2}
    assert [g["id"] for g in params["gates"]] == ["c"]
    # relative to the file that named it, not to the child or the working directory
    assert params["data"]["current_path"] == str((tmp_path / "base" / "cur.csv").resolve())


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "extends: b.yaml\nmodel: a\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\nmodel: b\n")
    with pytest.raises(SignoffError, match="cycle"):
        load_params(tmp_path / "a.yaml")


def test_overrides_are_yaml_scalars_on_dotted_keys(tmp_path):
    path = write(tmp_path / "p.yaml", "model: m\n")
    params = load_params(path, ["data.synthetic.n_rows=700", "stages.train.max_iter=50",
                                "stages.train.model_type=logistic_regression", "data.synthetic.bias=0.5",
                                "stages.validate.flag=true", "seed=7"])
    assert params["data"]["synthetic"]["n_rows"] == 700
    assert params["stages"]["train"] == {"max_iter": 50, "model_type": "logistic_regression"}
    assert params["stages"]["validate"]["flag"] is True
    assert params["seed"] == 7 and params["data"]["synthetic"]["bias"] == 0.5


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("model: Bad/Name\n", [], "model: expected a name"),
        ("model: ../escape\n", [], "model: expected a name"),
        ("model: m\ncolour: red\n", [], "colour: unknown top-level key"),
        ("model: m\ndata: {targett: y}\n", [], "data.targett: unknown key"),
        ("model: m\nseed: 1.5\n", [], "seed: expected an integer"),
        ("model: m\nstages: {train: {when: 2024-01-01}}\n", [], "stages.train.when: expected plain data"),
        ("model: m\ndata: {path: d.csv}\n", [], "data.target is required"),
        ("model: m\ngates: [{id: g, metric: validate.roc_auc}]\n", [], "expected min or max"),
        ("model: m\ngates: [{id: g, metric: x.y, min: high}]\n", [], r"gates\[0\].min \(g\): expected a number"),
        ("model: m\ngates: [{id: g, metric: x.y, min: 1, severity: fatal}]\n", [], "expected block or warn"),
        ("model: m\ngates: [{id: g, metric: x.y, min: 1}, {id: g, metric: x.z, max: 1}]\n", [], "used by two gates"),
        ("model: m\ngates: [{id: g, metric: x.y, vs_champion: {max_fall: 1}}]\n", [], "expected {max_drop: NUMBER}"),
        ("model: m\ngates: [{id: g, metric: x.y, min: 1, vs_champion: {max_drop: 1}}]\n", [], "vs_champion replaces"),
        ("model: m\ngates: [{id: g, metric: x.y, min: 0.9, max: 0.1}]\n", [],
         r"gates\[0\] \(g\): min 0.9 is greater than max 0.1"),
        ("model: m\nmonitor_gates: [{id: k, metric: x.y, min: 2, max: 1}]\n", [],
         r"monitor_gates\[0\] \(k\): min 2 is greater"),
        ("model: m\ngates: [{id: g, metric: x.y, vs_champion: {}}]\n", [],
         r"vs_champion \(g\): expected {max_drop: NUMBER}"),
        ("model: m\ngates: [{id: g, metric: x.y, vs_champion: {max_drop: lots}}]\n", [], "expected {max_drop: NUMBER}"),
        ("model: m\ngates: [{id: g, metric: x.y, max: .inf}]\n", [], r"max \(g\): expected a number"),
        ("model: m\ngates: [{id: g, metric: x.y, min: 1, waivable: yes please}]\n", [], "waivable .g.: expected true"),
        ("model: m\nmonitor_gates: [{id: g, metric: drift.prediction_ks}]\n", [],
         r"monitor_gates\[0\] \(g\): expected min"),
        ("model: m\nmonitor_gates: {id: g}\n", [], "monitor_gates: expected a list of gates"),
        ("model: m\nregistry: {promotion: sometimes}\n", [], "registry.promotion: expected auto or manual"),
        ("model: m\nregistry: {uri: x}\n", [], "registry.uri: unknown key"),
        ("model: m\n", ["stages.train.model_type=xgboostt"],
         "stages.train.model_type: expected one of hist_gradient_boosting, linear, logistic_regression, random_forest"),
        ("model: m\n", ["stages.train"], "expected KEY=VALUE"),
        ("model: m\n", ["model.name=x"], "holds str, not a mapping"),
        ("model: m\nexecution: {stage_timeout: 0}\n", [], "execution.stage_timeout: expected a number of seconds"),
        ("model: m\ngates_confidence: 95\n", [], "gates_confidence: expected a confidence level such as 0.95"),
        ("model: m\n", ["gates_confidence=1"], "gates_confidence: expected a confidence level"),
        ("model: m\ngates: [{id: g, metric: x.y, max: 1, inconclusive: ignore}]\n", [],
         r"gates\[0\].inconclusive \(g\): expected warn \(a person decides\) or block"),
        ("- a list\n", [], "expected a mapping of parameters"),
        ("model: [unclosed\n", [], "not valid YAML"),
    ],
)
def test_bad_params_name_file_and_key(tmp_path, text, overrides, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(SignoffError, match=message) as caught:
        load_params(path, overrides)
    assert caught.value.exit_code == 2
    if not overrides:
        assert str(path) in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SignoffError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")


def test_a_relative_path_given_with_p_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    params_dir, shell_dir = tmp_path / "params", tmp_path / "shell"
    params_dir.mkdir()
    shell_dir.mkdir()
    path = write(params_dir / "p.yaml", "model: m\ndata: {path: train.csv, target: y}\n")
    monkeypatch.chdir(shell_dir)
    params = load_params(path, ["data.current_path=new.csv"])
    assert params["data"]["current_path"] == str(shell_dir / "new.csv")  # as a shell user expects
    assert params["data"]["path"] == str(params_dir / "train.csv")  # inside a params file: beside that file


def test_a_booster_without_its_extra_is_refused_naming_the_extra(tmp_path, monkeypatch):
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "lightgbm" else found(name))
    path = write(tmp_path / "p.yaml", "model: m\nstages: {train: {model_type: lightgbm}}\n")
    with pytest.raises(SignoffError, match=r"stages.train.model_type: lightgbm needs the boosters extra, which is "
                                           r"not installed: pip install -e '.\[boosters\]'") as caught:
        load_params(path)
    assert caught.value.exit_code == 2
