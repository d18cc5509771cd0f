"""MLflow without a run: what is logged, trusted model types, waivers, altered runs, the store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import skops.io

from runner import cli, config, mlflow_store, records
from runner.analysis import datasets, modeling, tasks
from runner.audit import archive, redact
from runner.errors import SignoffError
from runner.release import decisions, mlflow_registry


def test_what_goes_to_mlflow_is_flat_bounded_and_free_of_credentials():
    params = {"model": "m", "stages": {"train": {"max_iter": 3}}, "gates": [{"id": "g", "min": 1}],
              "checklist": {"x": "y" * 7000}, "registry": {"tracking_uri": "https://ann:s3cret@mlflow.example:5000/",
                                                          "promotion": "auto"}}
    flat = mlflow_registry.flatten_params(redact.Redactor().value(params))
    assert flat["stages.train.max_iter"] == "3" and json.loads(flat["gates"]) == [{"id": "g", "min": 1}]
    assert len(flat["checklist.x"]) == mlflow_registry.PARAM_VALUE_LIMIT
    assert flat["registry.tracking_uri"] == "https://***@mlflow.example:5000/" and "s3cret" not in json.dumps(flat)
    assert mlflow_registry.numeric({"a": 1, "b": True, "c": float("nan"), "d": "text", "e": 0.5}) == {"a": 1.0,
                                                                                                      "b": 1.0,
                                                                                                      "e": 0.5}
    assert redact.redact_uri("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact.redact_uri("https://tok@h/p") == "https://***@h/p"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_skops_trusts_exactly_what_each_model_type_needs(tmp_path, task):
    frame, _ = datasets.synthetic_credit(500, seed=3, task=task)
    features = datasets.features(frame, {"target": "default", "sensitive_features": ["sex", "age_band"]})
    y, _ = tasks.encode(frame["default"], task, {}, "synthetic", "default")
    for model_type in modeling.MODEL_TYPES:
        if task == "regression" and model_type in config.CLASSIFICATION_ONLY:
            continue
        model = modeling.build(model_type, frame[features], 0, 200, 0.1, task=task).fit(frame[features], y)
        needed = modeling.trusted_types_needed(model)
        assert set(needed) <= set(modeling.TRUSTED_TYPES)
        skops.io.dump(model, tmp_path / "m.skops")
        loaded = modeling.load_skops(tmp_path / "m.skops")
        assert np.allclose(tasks.predictions(loaded, frame[features], task),
                           tasks.predictions(model, frame[features], task))
    model.custom = modeling.split  # a function from outside the allow-list
    with pytest.raises(ValueError, match="runner.analysis.modeling.split"):
        modeling.trusted_types_needed(model)


def test_only_failed_waivable_gates_can_be_waived_with_a_reason_and_a_future_date(tmp_path):
    verdict = records.Verdict(gates=[{"id": "auc", "status": "fail"}, {"id": "ece", "status": "fail"},
                                     {"id": "size", "status": "pass"}])
    declared = {"auc": {"waivable": True}, "ece": {}, "size": {"waivable": True}}

    def check(*waivers):
        decisions._check_waivers(tmp_path, verdict, declared, [decisions.Waiver(*w) for w in waivers])

    check(("auc", "accepted by the committee", "2099-01-01"))
    for waiver, message in [
        (("ece", "r", "2099-01-01"), "ece: the gate is not waivable"),
        (("size", "r", "2099-01-01"), "size: no such failed gate"),
        (("auc", " ", "2099-01-01"), "--reason must say why"),
        (("auc", "r", "next week"), "expects a date YYYY-MM-DD"),
        (("auc", "r", "2020-01-01"), "is not in the future"),
    ]:
        with pytest.raises(SignoffError, match=message) as caught:
            check(waiver)
        assert caught.value.exit_code == 2


def archived_pass(root):
    """A sealed PASS run of model ``m`` started by alice, made without notebooks."""
    run = archive.start(root, "m")
    records.write_json(run.temp / "verdict.json", {"verdict": "PASS", "run_id": run.run_id, "started_by": "alice",
                                                   "gates": []})
    (run.temp / "params.yaml").write_text("gates: []\n", encoding="utf-8")
    return archive.finalize(run, archive.seal(run, "m", None))


def test_a_refused_approval_is_said_at_once_without_opening_the_store(tmp_path, capsys):
    folder = archived_pass(tmp_path)
    # a store that cannot be opened at all: the four-eyes refusal does not depend on it
    code = cli.main(["approve", str(folder), "--by", "alice", "--tracking-uri", "nosuchscheme://nowhere"])
    assert code == 2 and "four-eyes" in capsys.readouterr().err


def test_an_altered_run_cannot_be_approved(tmp_path):
    folder = archived_pass(tmp_path)
    (folder / "params.yaml").chmod(0o640)
    (folder / "params.yaml").write_text("gates: []\n# edited\n", encoding="utf-8")
    with pytest.raises(SignoffError, match="params.yaml: modified") as caught:
        decisions.approve(decisions.RegisteredModel(lambda: None, "m", tmp_path), folder, "bob", None, "", [], 1, print)
    assert caught.value.exit_code == 2


def test_evidence_names_mlflow_refuses_are_mapped_apart_and_reversibly():
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name

    columns = ["annual income €", "ratio (%)", "<b>x</b>", "class", "Größe", "a/b", "debt::ratio", "../up", "x" * 300]
    names = [f"eda.missing_rate.{c}" for c in columns] + ["validate.roc_auc"]
    mapped = [mlflow_registry.mlflow_name(n) for n in names]
    for name in mapped:
        _validate_metric_name(name)
        _validate_param_name(name)
    assert len(set(mapped)) == len(names)
    assert mlflow_registry.mlflow_name("validate.roc_auc") == "validate.roc_auc"  # valid names are left alone
    assert mlflow_registry.mlflow_name("eda.missing_rate.Größe") == "eda.missing_rate.Größe"
    back = mlflow_registry.renamed(names)
    assert {back[m] for m in mapped if m in back} == set(names) - {"validate.roc_auc", "eda.missing_rate.Größe",
                                                                   "eda.missing_rate.class"}


@pytest.fixture
def own_store(tmp_path):
    """An embedded store of the test's own."""
    return tmp_path / "mlflow.db"


def _half_migrated(path):
    """What a process killed while MLflow migrated the store leaves: an older schema version, a table gone."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '0584bdc529eb'")
        db.execute("DROP TABLE IF EXISTS webhooks")


def _connect_in_a_new_process(uri):
    """As the next `signoff` command would: MLflow caches an opened store for the life of a process."""
    code = "import sys; from runner import mlflow_store; mlflow_store.connect(sys.argv[1]).create_experiment('next')"
    return subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # a fresh process opens the store, as the next command would
def test_a_half_migrated_store_without_data_is_set_aside_and_rebuilt(own_store):
    uri = f"sqlite:///{own_store}"
    mlflow_store.connect(uri)
    _half_migrated(own_store)
    done = _connect_in_a_new_process(uri)
    assert done.returncode == 0, done.stderr
    assert "was left half made" in done.stderr and "held no run or model" in done.stderr
    assert len(list(own_store.parent.glob("mlflow.db.broken-*Z"))) == 1  # with its -wal and -shm


@pytest.mark.slow  # a fresh process opens the store, as the next command would
def test_a_half_migrated_store_with_runs_is_reported_with_what_to_do(own_store):
    uri = f"sqlite:///{own_store}"
    mlflow_store.connect(uri).create_experiment("history")
    _half_migrated(own_store)
    done = _connect_in_a_new_process(uri)
    assert done.returncode != 0
    assert "holds runs or models, so Signoff leaves it alone: back it up" in done.stderr
    assert f"then run `mlflow db upgrade {uri}`" in done.stderr
    assert own_store.exists() and not list(own_store.parent.glob("mlflow.db.broken-*"))


def test_a_store_that_cannot_be_opened_is_found_in_seconds(tmp_path):
    garbage = tmp_path / "mlflow.db"
    garbage.write_bytes(b"this is no database " * 100)
    with pytest.raises(SignoffError, match=r"mlflow.db: cannot be opened \(file is not a database\)"):
        mlflow_registry.check_store(f"sqlite:///{garbage}")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(SignoffError, match=rf"MLflow tracking server http://127.0.0.1:{port} did not answer "
                                               r"within 10 s"):
            mlflow_registry.check_store(f"http://127.0.0.1:{port}")


def test_a_new_store_is_copied_from_one_made_once_per_mlflow_version(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    first = mlflow_store.connect(mlflow_store.embedded_uri(tmp_path / "first"))
    template = tmp_path / "cache" / "signoff" / f"mlflow-{mlflow.__version__}-empty.db"
    made = template.stat().st_mtime_ns
    second = mlflow_store.connect(mlflow_store.embedded_uri(tmp_path / "second"))
    assert template.stat().st_mtime_ns == made  # copied, not made again
    for client, model in ((first, "a"), (second, "b")):  # each a whole store of its own
        client.create_registered_model(model)
        assert [m.name for m in client.search_registered_models()] == [model]
        assert client.get_experiment("0").artifact_location == str(tmp_path / "mlruns" / "0")  # as MLflow puts it

    monkeypatch.setenv("XDG_CACHE_HOME", str(template))  # a file, not a folder: the temporary folder serves
    mlflow_store.connect(mlflow_store.embedded_uri(tmp_path / "third")).create_experiment("c")


def test_a_store_put_back_from_a_copy_is_read_afresh_once_forgotten(tmp_path):
    """A long-lived process (a notebook session, a test session) whose store file is replaced: MLflow's
    cached stores and engines would go on reading the old file."""
    import shutil

    uri = mlflow_store.embedded_uri(tmp_path / "outputs")
    mlflow_store.connect(uri).create_registered_model("kept")
    mlflow_store.forget_engines()
    shutil.copytree(tmp_path / "outputs", tmp_path / "copy")
    mlflow_store.connect(uri).create_registered_model("undone")
    shutil.rmtree(tmp_path / "outputs")
    shutil.copytree(tmp_path / "copy", tmp_path / "outputs")
    mlflow_store.forget_engines()
    assert [m.name for m in mlflow_store.connect(uri).search_registered_models()] == ["kept"]


def test_list_of_a_model_never_registered_says_where_it_looked(project):
    from conftest import decide

    listed = decide("list", "nosuch-model", cwd=project)
    assert listed.returncode == 0 and "model nosuch-model: no registered versions in sqlite:///" in listed.stdout
    assert f"runs archived under {project / 'outputs'}" in listed.stdout
