"""The exact-boundary handover (handover.py): a waiting run gets its offsets from a file, and a
stop that caught a planned batch is recognised from the checkpoint's offset and commit logs."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from diamond_sdk._runtime.checkpoint_logs import committed_batch, planned_batch, remove_torn_writes
from diamond_sdk._runtime.handover import await_handover, waiting_file

log = logging.getLogger("test")


def test_a_waiting_run_announces_itself_then_starts_at_the_offsets_it_is_handed(tmp_path: Path) -> None:
    handover = str(tmp_path / "launch.handover.json")
    offsets = '{"records": {"0": 41, "1": 7}}'

    def orchestrator() -> None:
        while not waiting_file(handover).exists():
            time.sleep(0.01)
        assert json.loads(waiting_file(handover).read_text())["pid"] == os.getpid()
        Path(handover).write_text(json.dumps({"starting_offsets": offsets}))

    thread = threading.Thread(target=orchestrator)
    thread.start()
    assert await_handover(handover, log, {}) == offsets
    thread.join()


def test_sigterm_while_waiting_calls_the_start_off(tmp_path: Path) -> None:
    handover = str(tmp_path / "launch.handover.json")
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    assert await_handover(handover, log, {}) is None
    assert not Path(handover).exists()


def test_a_planned_uncommitted_batch_is_found_in_the_checkpoint(tmp_path: Path) -> None:
    assert planned_batch(str(tmp_path)) is None  # no query ran yet
    (tmp_path / "offsets").mkdir()
    (tmp_path / "commits").mkdir()
    for batch in range(3):
        (tmp_path / "offsets" / str(batch)).write_text("v1")
        (tmp_path / "commits" / str(batch)).write_text("v1")
    (tmp_path / "commits" / ".2.crc").write_text("")
    assert planned_batch(str(tmp_path)) is None  # stopped between batches
    assert committed_batch(str(tmp_path)) == 2
    (tmp_path / "offsets" / "3").write_text("v1")
    assert planned_batch(str(tmp_path)) == 3  # stopped after Spark wrote batch 3's offsets


def test_a_kill_mid_write_leaves_a_temporary_file_that_is_removed_and_nothing_else(tmp_path: Path) -> None:
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    (offsets / "0").write_text("v1")
    (offsets / ".0.crc").write_text("")
    (offsets / ".1.92ada84c.tmp").write_text("half")
    (offsets / "..1.92ada84c.tmp.crc").write_text("")
    assert remove_torn_writes(str(tmp_path)) == ["offsets/..1.92ada84c.tmp.crc", "offsets/.1.92ada84c.tmp"]
    assert sorted(p.name for p in offsets.iterdir()) == [".0.crc", "0"]
    assert remove_torn_writes(str(tmp_path / "missing")) == []
