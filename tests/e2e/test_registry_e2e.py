"""The registry end to end: real runs, a real MLflow store (embedded SQLite, then a real
`mlflow server` on 127.0.0.1), and the real CLI deciding in separate processes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import ROOT, allowed_line, decide, keep_stages, make_key, read_json, run_folders, signoff

from runner import mlflow_store
from runner.analysis import datasets
from runner.audit import archive, journal
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
    # what MLflow's UI shows: the verdict in the run's name, who started it, from which params file, and the
    # experiment opened on its runs table
    assert tracked.info.run_name == f"PASS {run1.name}" and tracked.data.tags["mlflow.user"] == verdict["started_by"]
    assert tracked.data.tags["mlflow.source.name"].endswith("params/credit.yaml")
    assert client.get_experiment(tracked.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
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
    said = " ".join(o.get("data", {}).get("text/markdown", "") for c in nbformat.read(run2 / "report.ipynb", 4).cells
                    if c.cell_type == "code" for o in c.outputs)
    assert "Against champion version 1: " in said and "roc_auc worse" in said  # the report's champion section
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
    assert f"unsigned: credit-default: approved version 2 (run {run2.name}), recorded as by bob" in verified.stdout
    ledger = project / "outputs" / "credit-default" / "ledger.jsonl"
    ledger.write_text("".join(ledger.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")
    truncated = decide("verify", cwd=project)  # the chain left is valid; the anchor in MLflow is not
    assert truncated.returncode == 1 and "does not match the anchor kept in MLflow" in truncated.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def started(command: list[str], log: Path, cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """An MLflow server started with ``command`` (its port given as ``PORT``), once it answers ``/health``.
    Without the GenAI job runner MLflow 3 starts beside it (a process of its own that Signoff never uses):
    up in about half the time, and stopped in seconds."""
    port = free_port()
    process = subprocess.Popen([arg.replace("PORT", str(port)) for arg in command], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
                               env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            return process, uri
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{' '.join(command)} did not start: " + log.read_text())
            time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn worker
    process.wait(timeout=30)


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts, stopped afterwards."""
    store = tmp_path / "server"
    store.mkdir()
    process, uri = started([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", "PORT",
                            "--workers", "1", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
                            "--artifacts-destination", str(store / "artifacts")], store / "server.log")
    yield uri
    stop(process)


def test_the_readmes_mlflow_ui_line_shows_signoffs_runs_with_their_verdict(example, tmp_path):
    line = re.search(r"`(mlflow ui [^`]+)`", (ROOT / "README.md").read_text(encoding="utf-8")).group(1)
    assert "--workers 1" in line and "--host 127.0.0.1" in line
    command = [sys.executable, "-m", "mlflow", *line.split()[1:]]
    command[command.index("--port") + 1] = "PORT"
    process, uri = started(command, tmp_path / "ui.log", cwd=example.project)
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("credit-default")
        (tracked,) = client.search_runs([experiment.experiment_id])
        assert tracked.info.run_name == f"PASS {example.run.name}" and tracked.data.tags["signoff.verdict"] == "PASS"
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the classic runs view
    finally:
        stop(process)


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


def rechain(path: Path, change) -> None:
    """What a tamperer with write access does: edit lines of a decisions file, then recompute its hash chain."""
    path.chmod(0o640)
    lines, before = [], None
    for entry in journal.read(path):
        entry = {**change(entry), "previous": before}
        text = json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str)
        lines.append(text)
        before = hashlib.sha256(text.encode("utf-8")).hexdigest()
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def test_signed_sign_off_proves_who_decided_and_catches_what_a_hash_chain_cannot(example, tmp_path):
    """Alice (a data scientist) and Bob (the approver) sign with their keys, the scheduler with a service key;
    Mallory's key is not in the file.  With signatures required: unsigned commands are refused, four-eyes holds
    on proven principals, and verify catches an edited line, a moved signature, a re-sealed manifest and a
    champion moved in MLflow behind Signoff's back."""
    project = example.project  # version 1, the example's, is the (unsigned) champion
    shutil.copytree(project / "notebooks", project / "monitoring")  # what a monitor runs, kept aside
    shutil.copy(project / "params" / "credit.yaml", project / "params" / "monitor.yaml")
    keep_stages(project, "train", "infra", rows=3000)
    people = ("alice@bank.example", "bob@bank.example", "svc-scheduler@bank.example")
    keys = {name: make_key(tmp_path, name) for name in (*people, "mallory@elsewhere.example")}
    (project / "params" / "allowed_signers").write_text("".join(allowed_line(p, keys[p]) for p in people))
    (project / "params" / "signed.yaml").write_text(yaml.safe_dump({"extends": "credit.yaml", "registry": {
        "promotion": "manual", "allowed_signers": "allowed_signers", "approvers": [people[1]],
        "require_signatures": True}}))

    unsigned = decide("run", "params/signed.yaml", cwd=project)
    assert unsigned.returncode == 2 and "registry.require_signatures is true" in unsigned.stderr
    assert len(run_folders(project)) == 1  # refused before anything ran
    for key in (keys[people[2]], keys[people[0]]):  # the scheduler's run, then Alice's
        ran = signoff("run", "params/signed.yaml", "--key", str(key), cwd=project)
        assert ran.returncode == 0 and "awaiting sign-off" in ran.stdout, ran.stdout + ran.stderr
    run2, run3 = run_folders(project)[1:]
    assert read_json(run3 / "verdict.json")["started_by"] == people[0]  # the key's principal started it
    changes = {c["id"]: c for c in read_json(run2 / "verdict.json")["gate_policy_changes"]}
    assert changes["registry.approvers"]["before"] == {"approvers": []}  # shown in the report beside gate changes
    assert changes["registry.approvers"]["after"] == {"approvers": [people[1]]}

    refusals = {
        "four-eyes rule (proven by their keys)": ("approve", str(run3), "--key", str(keys[people[0]])),
        "its public key is not in": ("approve", str(run2), "--key", str(keys["mallory@elsewhere.example"])),
        f"is {people[1]}'s in": ("approve", str(run2), "--key", str(keys[people[1]]), "--by", people[0]),
        "registry.require_signatures is true": ("approve", str(run2), "--by", people[1]),
        "is not an approver of credit-default": ("approve", str(run2), "--key", str(keys[people[0]])),
    }
    for said, args in refusals.items():
        refused = decide(*args, cwd=project)
        assert refused.returncode == 2 and said in refused.stderr, (said, refused.stderr)
    approved = decide("approve", str(run2), "--key", str(keys[people[1]]), "--note", "reviewed", cwd=project)
    assert approved.returncode == 0, approved.stderr
    client = client_for(mlflow_store.embedded_uri(project / "outputs"))
    assert champion(client) == "2"
    verified = decide("verify", cwd=project)
    assert verified.returncode == 0, verified.stdout
    assert f"signed: credit-default: approved version 2 (run {run2.name}) by {people[1]}" in verified.stdout
    assert f"signed: credit-default: run finished (run {run3.name}) by {people[0]}" in verified.stdout

    shipping = decide("check-model", "models:/credit-default@champion", cwd=project)
    assert shipping.returncode == 0 and f"approved of version 2 by {people[1]}" in shipping.stdout, shipping.stdout
    import mlflow

    served = Path(mlflow.artifacts.download_artifacts(artifact_uri="models:/credit-default/2",
                                                      dst_path=str(tmp_path / "deploy")))
    assert decide("check-model", str(served), "--model", "credit-default", cwd=project).returncode == 0
    weights = next(p for p in served.rglob("*.skops"))
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))  # one byte
    changed = decide("check-model", str(served), "--model", "credit-default", cwd=project)
    assert changed.returncode == 1 and "do not ship it" in changed.stdout
    assert decide("check-model", "models:/credit-default/1", cwd=project).returncode == 1  # not signed off

    exported = decide("export", str(run2), "--to", str(tmp_path / "audit.zip"), cwd=project)
    assert exported.returncode == 0, exported.stderr
    checked = checked_bundle(tmp_path / "audit.zip", tmp_path / "audit")
    assert checked.returncode == 0 and f"by {people[1]}" in checked.stdout, checked.stdout
    assert "not checked: the link to the model's previous run" in checked.stdout
    report = (tmp_path / "audit" / "EVIDENCE_MAP.md").read_text(encoding="utf-8")
    assert "Annex IV 2(g)" in report and "validate.roc_auc_ci_low" in report
    card = next((tmp_path / "audit" / "run" / run2.name / "decisions").glob("*-model_card.md"))
    card.write_bytes(card.read_bytes() + b" ")  # one byte
    broken = checked_bundle(None, tmp_path / "audit")
    assert broken.returncode == 1 and "missing or modified (written with a decision)" in broken.stdout

    decisions_file, evidence_file = run2 / "decisions.jsonl", run3 / "evidence.json"
    kept = {path: path.read_bytes() for path in (decisions_file, run3 / "decisions.jsonl", evidence_file,
                                                 run3 / "manifest.json")}
    rechain(decisions_file, lambda e: {**e, "note": "rubber stamp"} if e["event"] == "approved" else e)
    edited = decide("verify", cwd=project)
    assert edited.returncode == 1 and f"edited after {people[1]} signed it (note differ" in edited.stdout
    decisions_file.write_bytes(kept[decisions_file])
    moved = next(e["signature"] for e in journal.read(decisions_file) if e["event"] == "run finished")
    rechain(run3 / "decisions.jsonl", lambda e: {**e, "signature": moved} if e["event"] == "run finished" else e)
    assert "a signature moved here from another decision" in decide("verify", cwd=project).stdout
    (run3 / "decisions.jsonl").write_bytes(kept[run3 / "decisions.jsonl"])
    resealed(run3, "evidence.json", b'{"validate.roc_auc": 0.99}')
    assert f"re-sealed after {people[0]} signed it" in decide("verify", cwd=project).stdout
    for path, data in kept.items():
        path.chmod(0o640)
        path.write_bytes(data)
    assert decide("verify", cwd=project).returncode == 0

    client.set_registered_model_alias("credit-default", "champion", "1")  # in MLflow's UI, say
    listed = decide("list", "credit-default", cwd=project)
    assert listed.returncode == 1 and "champion moved outside Signoff: MLflow's alias points to version 1" in \
        listed.stdout and f"(approved by {people[1]}) made version 2 the champion" in listed.stdout
    assert "champion moved outside Signoff" in decide("verify", cwd=project).stdout
    newest = project / "newest.parquet"
    datasets.synthetic_credit(3000, 11)[1].to_parquet(newest)
    watching = ("monitor", "params/monitor.yaml", "--notebooks", "monitoring", "--current", str(newest))
    untrusted = decide(*watching, cwd=project)
    assert untrusted.returncode == 2 and "champion moved outside Signoff" in untrusted.stderr
    assert "--trust-champion" in untrusted.stderr and not run_folders(project, "credit-default.monitor")
    trusted = signoff(*watching, "--trust-champion", cwd=project)
    assert trusted.returncode in (0, 1) and "monitor folder:" in trusted.stdout, trusted.stdout + trusted.stderr


def resealed(run: Path, name: str, data: bytes) -> None:
    """A file of an archived run replaced, and its manifest written again to match (the hash chain recomputed)."""
    manifest_path = run / "manifest.json"
    for path in (run / name, manifest_path):
        path.chmod(0o640)
    (run / name).write_bytes(data)
    manifest = read_json(manifest_path)
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest["sha256"] = archive.core_sha256(manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def checked_bundle(bundle: Path | None, folder: Path) -> subprocess.CompletedProcess:
    """The bundle unpacked (when given) and checked by its own script in a fresh virtual environment without
    Signoff or any other package: the standard library and ssh-keygen only."""
    if bundle is not None:
        with zipfile.ZipFile(bundle) as opened:
            opened.extractall(folder)
    venv = folder.parent / "bare-venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return subprocess.run([str(venv / "bin" / "python"), "-I", "verify_bundle.py"], cwd=folder, capture_output=True,
                          text=True, timeout=120)
