"""committed_files: which Parquet files a backfill reads, from the file sink's log as Spark
writes it (a version line, then one JSON entry per file; every tenth batch a compact file
holding everything up to it; deletes from the sink's retention)."""
import json

from diamond_sdk._runtime.history import committed_files


def _log(folder, name, entries):
    log = folder / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    (log / name).write_text("v1\n" + "\n".join(json.dumps(e) for e in entries))


def _file(folder, name):
    path = folder / "day=2026-12-01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1")
    return {"path": path.as_uri(), "size": 4, "isDir": False, "modificationTime": 0, "blockReplication": 1, "blockSize": 4, "action": "add"}


def test_reads_the_batches_up_to_the_boundary_and_no_later(tmp_path):
    a, b, c = (_file(tmp_path, f"part-{n}.parquet") for n in "abc")
    _log(tmp_path, "0", [a])
    _log(tmp_path, "1", [b])
    _log(tmp_path, "2", [c])  # written after the boundary batch 1
    _log(tmp_path, "3.tmp", [c])  # a log write in progress
    assert committed_files(tmp_path, 1) == [a["path"], b["path"]]
    assert committed_files(tmp_path, 2) == [a["path"], b["path"], c["path"]]


def test_starts_from_the_latest_compact_file_and_applies_deletes(tmp_path):
    a, b, c = (_file(tmp_path, f"part-{n}.parquet") for n in "abc")
    _log(tmp_path, "9.compact", [a, b])  # the deltas before it are gone after compaction
    _log(tmp_path, "10", [c, {**a, "action": "delete"}])
    assert committed_files(tmp_path, 9) == [a["path"], b["path"]]
    assert committed_files(tmp_path, 10) == [b["path"], c["path"]]


def test_leaves_out_files_retention_deleted_and_a_missing_log(tmp_path):
    a, b = (_file(tmp_path, f"part-{n}.parquet") for n in "ab")
    _log(tmp_path, "0", [a, b])
    (tmp_path / "day=2026-12-01" / "part-a.parquet").unlink()
    assert committed_files(tmp_path, 0) == [b["path"]]
    assert committed_files(tmp_path / "nothing", 5) == []
