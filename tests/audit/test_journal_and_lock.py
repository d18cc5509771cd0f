"""The ledger's hash chain and the per-model lock, without a run."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from runner.audit import journal, lock
from runner.errors import SignoffError


def test_journal_chain_detects_an_edited_removed_or_truncated_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    heads = [journal.append(path, {"event": f"e{i}", "by": "x"}) for i in range(4)]
    assert journal.problems(path) == [] and [e["event"] for e in journal.read(path)] == ["e0", "e1", "e2", "e3"]
    assert len(set(heads)) == 4
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1].replace('"x"', '"y"'), *lines[2:]]) + "\n")
    assert [p.split(": ")[1] for p in journal.problems(path)] == [
        "line 3 does not follow line 2 (altered, removed or inserted line)"
    ]
    path.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert "line 2 does not follow" in journal.problems(path)[0]
    path.write_text("\n".join(lines[:3]) + "\n")  # truncation keeps a valid chain: the MLflow anchor catches it
    assert journal.problems(path) == []


def _hold(model_dir, ready, release):
    with lock.held(model_dir, "holding for a test", 5, print):
        ready.set()
        release.wait(30)


def test_lock_names_its_holder_times_out_with_exit_3_and_dies_with_its_process(tmp_path):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    assert ready.wait(30)
    said = []
    with pytest.raises(SignoffError) as caught, lock.held(tmp_path, "second", 0.5, said.append):
        pass
    assert caught.value.exit_code == lock.LOCKED
    assert f"pid {holder.pid}" in str(caught.value) and "holding for a test" in said[0]
    holder.kill()  # a crashed holder: the OS releases its lock, and the next command takes it
    holder.join()
    start = time.monotonic()
    with lock.held(tmp_path, "after the crash", 5, said.append):
        assert json.loads((tmp_path / ".lock.holder").read_text())["pid"] == os.getpid()
    assert time.monotonic() - start < 5


