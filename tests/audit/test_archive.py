import datetime as dt
import json

from runner import records
from runner.audit import archive


def test_run_ids_sort_by_time_and_differ_within_one_instant():
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=dt.UTC)
    same = {archive.new_run_id(now) for _ in range(50)}
    assert len(same) == 50
    later = archive.new_run_id(now + dt.timedelta(microseconds=1))
    assert all(later > run_id for run_id in same)


def test_finalize_hashes_every_file_chains_to_the_previous_run_and_leaves_it_read_only(tmp_path):
    first = archive.start(tmp_path, "m")
    (first.temp / "a.txt").write_text("hello")
    (first.temp / "work").mkdir()
    (first.temp / "work" / "big.parquet").write_text("scratch")
    sealed = archive.seal(first, "m", None)
    (first.temp / "html").mkdir()
    (first.temp / "html" / "a.html").write_text(f"<p>manifest {sealed['sha256']}</p>")
    final = archive.finalize(first, sealed)
    manifest = json.loads((final / "manifest.json").read_text())
    assert not first.temp.exists() and not (final / "work").exists()
    assert manifest["files"] == {"a.txt": {"sha256": records.sha256_file(final / "a.txt"), "size": 5}}
    assert manifest["html"] == {"html/a.html": {"sha256": records.sha256_file(final / "html" / "a.html"),
                                                "size": (final / "html" / "a.html").stat().st_size}}
    assert manifest["previous"] is None and manifest["sha256"] == archive.core_sha256(manifest)
    for path in [final, *final.rglob("*")]:
        assert path.stat().st_mode & 0o022 == 0, path  # nothing writable by group or others
        assert path.is_dir() or path.stat().st_mode & 0o200 == 0, path  # files read-only
    second = archive.start(tmp_path, "m")
    assert archive.previous_run(tmp_path / "m") == final
    final2 = archive.finalize(second, archive.seal(second, "m", final))
    assert json.loads((final2 / "manifest.json").read_text())["previous"] == records.sha256_file(
        final / "manifest.json"
    )
    assert archive.finished_runs(tmp_path / "m") == [final, final2]
