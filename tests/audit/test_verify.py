import json

import pytest

from runner import records
from runner.audit import archive, journal
from runner.audit.verify import Kept, verify
from runner.cli import main
from runner.errors import SignoffError


def make_run(root, model="m", text="evidence"):
    folder = archive.start(root, model)
    (folder.temp / "notebooks").mkdir()
    (folder.temp / "notebooks" / "eda.ipynb").write_text(text)
    (folder.temp / "verdict.json").write_text(json.dumps({"verdict": "PASS"}))
    sealed = archive.seal(folder, model, archive.previous_run(root / model))
    (folder.temp / "html").mkdir()
    (folder.temp / "html" / "report.html").write_text(f"<p>manifest {sealed['sha256']}</p>")
    return archive.finalize(folder, sealed)


def anchored(head, ended=(), champion=None):
    """What MLflow would keep: a ledger head, the runs whose MLflow run was ended, where champion points."""
    return Kept(head=lambda model: head, archived_runs=lambda model_dir: set(ended),
                champion=lambda model: (champion, "2026-11-27T02:00:00+00:00"))


def writable(path):
    """A tamperer first makes the read-only file writable."""
    path.chmod(0o640)
    return path


def test_intact_archive_passes_at_every_level(tmp_path, capsys):
    runs = [make_run(tmp_path, text=str(i)) for i in range(3)]
    make_run(tmp_path, model="other")
    assert verify(tmp_path) == ([], 4)
    assert verify(tmp_path / "m") == ([], 3)
    assert verify(runs[1]) == ([], 1)
    assert main(["verify", str(tmp_path)]) == 0
    assert "intact: 4 runs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda run: writable(run / "notebooks" / "eda.ipynb").write_text("1"), "eda.ipynb: modified"),  # one byte
        (lambda run: (run / "html" / "report.html").unlink(), "report.html: missing"),
        (lambda run: (run / "notebooks" / "extra.ipynb").write_text("x"), "extra.ipynb: added after the run"),
    ],
    ids=["modified", "missing", "added"],
)
def test_each_kind_of_tampering_is_named(tmp_path, capsys, tamper, expected):
    runs = [make_run(tmp_path, text=str(i)) for i in range(2)]
    tamper(runs[0])
    problems, _ = verify(tmp_path)
    assert len(problems) == 1 and expected in problems[0] and str(runs[0]) in problems[0]
    assert main(["verify", str(tmp_path)]) == 1
    assert "NOT INTACT" in capsys.readouterr().out


def test_a_removed_or_rewritten_run_breaks_the_chain(tmp_path):
    runs = [make_run(tmp_path, text=str(i)) for i in range(3)]
    for path in sorted(runs[1].rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    runs[1].rmdir()
    problems, _ = verify(tmp_path / "m")
    assert len(problems) == 1 and "broken chain" in problems[0] and str(runs[2]) in problems[0]
    # rewriting a run's manifest to hide an edit breaks the next run's link instead
    other = tmp_path / "again"
    first, second = make_run(other), make_run(other)
    manifest = json.loads((first / "manifest.json").read_text())
    writable(first / "verdict.json").write_text("{}")
    manifest["files"]["verdict.json"] = {"sha256": records.sha256_file(first / "verdict.json"), "size": 2}
    manifest["sha256"] = archive.core_sha256(manifest)
    writable(first / "manifest.json").write_text(json.dumps(manifest))
    problems, _ = verify(other)
    assert len(problems) == 1 and "broken chain" in problems[0] and str(second) in problems[0]


def test_nothing_to_verify_is_an_error(tmp_path):
    with pytest.raises(SignoffError, match="holds no Signoff run"):
        verify(tmp_path)
    assert main(["verify", str(tmp_path / "none")]) == 2


def test_a_truncated_ledger_is_caught_by_its_anchor_or_an_expected_head(tmp_path):
    make_run(tmp_path)
    ledger = tmp_path / "m" / archive.LEDGER
    for event in ("run finished", "registered", "approved"):
        kept = journal.append(ledger, {"event": event})
    assert verify(tmp_path, anchored(kept), expect_head=kept) == ([], 1)
    ledger.write_text("".join(ledger.read_text().splitlines(keepends=True)[:-1]))  # drop the last decision
    assert journal.problems(ledger) == []  # the chain that is left is still a valid chain
    problems, _ = verify(tmp_path, anchored(kept))
    assert len(problems) == 1 and "does not match the anchor kept in MLflow" in problems[0]
    problems, _ = verify(tmp_path, expect_head=kept)
    assert len(problems) == 1 and f"is not the expected {kept}" in problems[0]


def test_an_edited_manifest_no_longer_matches_the_hash_its_reports_show(tmp_path):
    run = make_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "notebooks" / "eda.ipynb").unlink()  # hide the deletion by dropping the file from the list
    del manifest["files"]["notebooks/eda.ipynb"]
    writable(run / "manifest.json").write_text(json.dumps(manifest))
    problems, _ = verify(run)
    assert problems == [f"{run / 'manifest.json'}: its file list does not hash to the sha256 it records "
                        "(and the reports' banners show)"]


def test_the_newest_run_deleted_is_caught_by_the_ledger_or_mlflow(tmp_path, capsys):
    runs = [make_run(tmp_path, text=str(i)) for i in range(2)]
    ledger = tmp_path / "m" / archive.LEDGER
    for run in runs:
        head = journal.append(ledger, {"event": "run finished", "run_id": run.name})
    assert verify(tmp_path, anchored(head, [r.name for r in runs])) == ([], 2)
    for path in sorted(runs[1].rglob("*"), reverse=True):  # the newest: no later run links to it
        path.unlink() if path.is_file() else path.rmdir()
    runs[1].rmdir()
    problems, _ = verify(tmp_path)
    assert problems == [f"{runs[1]}: missing; the ledger records this run as archived"]
    crashed = make_run(tmp_path, text="crashed")  # a crash-archived run: in MLflow, not in the ledger
    kept = anchored(head, [runs[0].name, crashed.name])
    for path in sorted(crashed.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    crashed.rmdir()
    problems, _ = verify(tmp_path, kept)
    assert f"{crashed}: missing; the MLflow store records this run as archived" in problems


def test_links_in_the_archive_are_reported_and_never_followed(tmp_path):
    runs = [make_run(tmp_path, text=str(i)) for i in range(3)]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    copy = outside / "eda.ipynb"
    copy.write_text("0")  # the same bytes: a hash check through the link would pass
    target = writable(runs[0] / "notebooks" / "eda.ipynb")
    runs[0].joinpath("notebooks").chmod(0o750)
    target.unlink()
    target.symlink_to(copy)
    problems, _ = verify(tmp_path)
    assert any(p.startswith(f"{target}: a symbolic link") for p in problems)
    assert verify(runs[0])[0] == [f"{target}: a symbolic link, not the archived file (not followed)"]
    moved = tmp_path / "moved"
    runs[2].rename(moved)  # the newest run replaced by a link to a copy somewhere else
    runs[2].symlink_to(moved)
    journal.append(tmp_path / "m" / archive.LEDGER, {"event": "run finished", "run_id": runs[2].name})
    problems, _ = verify(tmp_path / "m")
    assert any(p.startswith(f"{runs[2]}: a symbolic link (to {moved})") for p in problems)
    assert f"{runs[2]}: missing; the ledger records this run as archived" in problems


def test_a_lock_holder_left_by_a_dead_command_is_noted_not_failed(tmp_path, capsys):
    make_run(tmp_path)
    (tmp_path / "m" / ".lock.holder").write_text('{"pid": 999999, "host": "h", "purpose": "signoff run", "since": "x"}')
    assert main(["verify", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and ".lock.holder: left by a command that was killed" in out and "intact: 1 runs" in out
