"""The registry end to end: real runs, a real MLflow store (embedded SQLite, then a real
`mlflow server` on 127.0.0.1), and the real CLI deciding in separate processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import decide, keep_stages, read_json, run_folders, signoff

from runner import mlflow_store
from runner.audit import journal
from runner.release import mlflow_registry

pytestmark = pytest.mark.slow

VERSUS = {"id": "no-worse-than-champion", "metric": "validate.roc_auc", "vs_champion": {"max_drop": 0.01},
          "why": "a new model must not rank applications worse than the one in production"}


def registry_project(project: Path) -> None:
    """Stages train, validate and infra on 3,000 rows; the vs-champion gate; auto promotion."""
    keep_stages(project, "train", "validate", "infra", rows=3000)
    path = project / "params" / "credit.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["gates"].append(VERSUS)
    params["registry"] = {"promotion": "auto"}
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def client_for(uri: str):
    return mlflow_store.connect(uri)


def champion(client) -> str | None:
    return mlflow_registry.alias(client, "credit-default", mlflow_registry.CHAMPION)


def test_the_example_is_the_champion_and_a_worse_model_needs_a_waiver(example):
    project, run1 = example.project, example.run  # the example's run made version 1 the champion
    uri = mlflow_store.embedded_uri(project / "outputs")
    assert "registered as version 1 and promoted to champion" in example.result.stdout
    verdict = read_json(run1 / "verdict.json")
    client = client_for(uri)
    assert champion(client) == "1"
    tracked = client.get_run(verdict["mlflow_run_id"])
    assert tracked.data.tags["signoff.run_id"] == run1.name and tracked.data.tags["signoff.verdict"] == "PASS"
    assert tracked.data.metrics["validate.roc_auc"] == pytest.approx(
        read_json(run1 / "evidence.json")["validate.roc_auc"]
    )
    assert tracked.data.params["stages.train.max_iter"] == "200" and tracked.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(tracked.info.run_id)}
    assert {"report.ipynb", "verdict.json", "evidence.json", "notebooks", "html", "manifest.json"} <= artifacts
    version = client.get_model_version("credit-default", "1")
    assert version.tags["signoff.run_folder"] == str(run1) and len(version.tags["signoff.model_sha256"]) == 64
    assert mlflow_registry.aliases(client, "credit-default") == {"champion": "1", "challenger": "1"}
    registry_project(project)  # from here on: three stages on 3,000 rows, and a gate against the champion

    # a worse model, gated only on the champion comparison, which may be waived
    (project / "params" / "waive.yaml").write_text(yaml.safe_dump(
        {"extends": "credit.yaml", "gates": [{**VERSUS, "waivable": True}]}), encoding="utf-8")
    worse = signoff("run", "params/waive.yaml", "-p", "stages.train.max_iter=2", "-p", "stages.train.max_depth=1",
                    "--by", "alice", cwd=project)
    assert worse.returncode == 1, worse.stdout + worse.stderr
    run2 = run_folders(project)[1]
    gates = {g["id"]: g for g in read_json(run2 / "verdict.json")["gates"]}
    assert (
        gates["no-worse-than-champion"]["status"] == "fail"
        and "vs champion" in gates["no-worse-than-champion"]["message"]
    )
    assert gates["infra.loadable"]["status"] == "pass"
    evidence = read_json(run2 / "evidence.json")
    assert evidence["champion.version"] == "1" and 0 < evidence["validate.champion_disagreement"] < 1
    # the champion comparisons are declared evidence too
    assert not [w for w in read_json(run2 / "verdict.json")["warnings"] if "not declared" in w]
    assert evidence["validate.roc_auc_delta_vs_champion_ci_low"] < evidence["validate.roc_auc_delta_vs_champion"] < 0
    assert "not registered: the verdict is BLOCKED" in worse.stdout
    assert champion(client) == "1" and len(mlflow_registry.versions(client, "credit-default")) == 1

    blocked = decide("approve", str(run2), "--by", "bob", cwd=project)
    assert blocked.returncode == 2 and "BLOCKED by no-worse-than-champion" in blocked.stderr
    wrong = decide("approve", str(run2), "--by", "bob", "--waive", "infra.loadable", "--reason", "r",
                    "--expires", "2099-12-31", cwd=project)
    assert wrong.returncode == 2 and "no such failed gate" in wrong.stderr
    waived = decide("approve", str(run2), "--by", "bob", "--waive", "no-worse-than-champion",
                     "--reason", "pilot accepted by the risk committee", "--expires", "2099-12-31", cwd=project)
    assert waived.returncode == 0, waived.stderr
    assert champion(client) == "2"  # registered at approval, then promoted
    (card,) = (run2 / "decisions").glob("*-model_card.md")
    text = card.read_text(encoding="utf-8")
    assert "no-worse-than-champion** waived by bob until 2099-12-31: pilot accepted" in text
    assert "| FAIL (WAIVED) |" in text
    assert "no-worse-than-champion until 2099-12-31" in decide("list", "credit-default", cwd=project).stdout


def test_sign_off_four_eyes_concurrent_approvals_rollback_and_a_tampered_model(example, monkeypatch):
    project = example.project  # the example's run made version 1 the champion
    keep_stages(project, "train", "infra", rows=3000)  # candidates: a model that loads, not gated on the champion
    client = client_for(mlflow_store.embedded_uri(project / "outputs"))
    manual = ("-p", "registry.promotion=manual", "--by", "alice")
    for _ in range(2):  # two candidates awaiting sign-off: versions 2 and 3
        result = signoff("run", "params/credit.yaml", *manual, cwd=project)
        assert result.returncode == 0 and "awaiting sign-off" in result.stdout, result.stdout + result.stderr
    run2, run3 = run_folders(project)[1:]
    assert champion(client) == "1" and mlflow_registry.alias(client, "credit-default", "challenger") == "3"
    assert read_json(run2 / "evidence.json")["champion.version"] == "1"

    own = decide("approve", str(run2), "--by", "alice", cwd=project)
    assert own.returncode == 2 and "four-eyes" in own.stderr
    refused = decide("reject", str(run3), "--by", "carol", "--note", "not this week", cwd=project)
    assert refused.returncode == 0 and champion(client) == "1"

    # two sign-offs at once: serialized, neither decision lost, each saw the champion the other left
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda args: signoff("approve", *args, cwd=project),
                                [(str(run2), "--by", "bob"), (str(run3), "--by", "dave", "--note", "on reflection")]))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    ledger = journal.read(project / "outputs" / "credit-default" / "ledger.jsonl")
    approvals = [e for e in ledger if e["event"] == "approved"]
    assert sorted(a["version"] for a in approvals) == ["2", "3"]
    assert approvals[0]["previous_champion"] == "1" and approvals[1]["previous_champion"] == approvals[0]["version"]
    assert champion(client) == approvals[1]["version"]
    events = [e["event"] for e in journal.read(run3 / "decisions.jsonl")]
    assert events == ["run finished", "registered", "rejected", "approved"]

    back = decide("rollback", "credit-default", "--by", "erin", "--note", "complaints", cwd=project)
    assert back.returncode == 0 and champion(client) == approvals[0]["version"], back.stderr
    back = decide("rollback", "credit-default", "--to", "1", "--by", "erin", "--note", "to the first", cwd=project)
    assert back.returncode == 0 and champion(client) == "1", back.stderr
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # this test trusts the store it just wrote
    import mlflow

    served = mlflow.pyfunc.load_model("models:/credit-default@champion", suppress_warnings=True)
    assert served.metadata.run_id == client.get_model_version("credit-default", "1").run_id

    listed = decide("list", "credit-default", cwd=project)
    assert listed.returncode == 0 and "champion" in listed.stdout.splitlines()[1], listed.stdout

    # a former champion whose files were altered in the artifact store does not go back into production
    model_id = client.get_model_version("credit-default", "2").source.removeprefix("models:/")
    stored = project / "outputs" / "mlartifacts" / "credit-default" / "models" / model_id / "artifacts" / "model.skops"
    stored.write_bytes(stored.read_bytes() + b"\0")
    tampered = decide("promote", "credit-default", "2", "--by", "erin", cwd=project)
    assert tampered.returncode == 2 and "changed after registration" in tampered.stderr and champion(client) == "1"
    verified = decide("verify", cwd=project)
    assert verified.returncode == 0 and "intact: 3 runs" in verified.stdout, verified.stdout
    ledger = project / "outputs" / "credit-default" / "ledger.jsonl"
    ledger.write_text("".join(ledger.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")
    truncated = decide("verify", cwd=project)  # the chain left is valid; the anchor in MLflow is not
    assert truncated.returncode == 1 and "does not match the anchor kept in MLflow" in truncated.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts, stopped afterwards.
    Without the GenAI job runner MLflow 3 starts beside it (a process of its own that Signoff never uses):
    up in about half the time, and stopped in seconds."""
    port = free_port()
    store = tmp_path / "server"
    store.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination",
         str(store / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=(store / "server.log").open("w"),
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("mlflow server did not start: " + (store / "server.log").read_text())
            time.sleep(0.5)
    yield uri
    os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn worker
    process.wait(timeout=30)


def test_the_same_flow_against_a_real_mlflow_server(project, mlflow_server, monkeypatch):
    registry_project(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    first = signoff("run", "params/credit.yaml", cwd=project)
    assert first.returncode == 0 and "promoted to champion" in first.stdout, first.stdout + first.stderr
    assert not (project / "outputs" / "mlflow.db").exists()  # everything went to the server
    gates = {g["id"]: g for g in read_json(run_folders(project)[0] / "verdict.json")["gates"]}
    assert gates["no-worse-than-champion"]["status"] == "pass"
    assert gates["no-worse-than-champion"]["message"].startswith("no champion")
    second = signoff("run", "params/credit.yaml", "-p", "registry.promotion=manual", "--by", "alice", cwd=project)
    assert second.returncode == 0 and "awaiting sign-off" in second.stdout, second.stdout + second.stderr
    run2 = run_folders(project)[1]
    assert read_json(run2 / "evidence.json")["champion.version"] == "1"
    assert decide("approve", str(run2), "--by", "bob", cwd=project).returncode == 0
    client = client_for(mlflow_server)
    assert champion(client) == "2"
    back = decide("rollback", "credit-default", "--by", "carol", "--note", "incident 42", cwd=project)
    assert back.returncode == 0 and champion(client) == "1", back.stderr
    tags = client.get_model_version("credit-default", "1").tags
    assert tags["signoff.decision"] == "rolled back" and tags["signoff.decided_by"] == "carol"
    listed = decide("list", "credit-default", cwd=project)
    assert "carol" in listed.stdout and "bob" in listed.stdout
