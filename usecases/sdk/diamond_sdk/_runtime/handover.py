"""An exact boundary between two runs of a job (an upgrade, a stop before a restart).

The new version starts warm and waits (`--handover-file H`): it writes `H.waiting` and reads
its starting offsets from H, which the orchestrator writes once the old version has stopped
and its last batch is committed. The old version stops between batches; when its stop still
caught a batch Spark had already planned (the offset log is one ahead of the commit log),
it runs that batch to its end before exiting, so every record up to the boundary was
processed by the old version completely and none after it (checkpoint_logs.planned_batch).
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.05


def waiting_file(handover_file: str) -> Path:
    return Path(f"{handover_file}.waiting")


def await_handover(handover_file: str, log: Any, fields: dict[str, Any]) -> str | None:
    """Announces the driver is ready and waits for its starting offsets (Spark JSON); None
    when SIGTERM came first (the upgrade was called off): the caller exits without starting."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        tmp = waiting_file(handover_file).with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "at": int(time.time() * 1000)}))
        os.replace(tmp, waiting_file(handover_file))
        log.info("ready; waiting for the previous version to stop at a batch boundary", extra={"fields": fields})
        started = time.monotonic()
        while not stop.is_set():
            try:
                offsets = json.loads(Path(handover_file).read_text())["starting_offsets"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(POLL_SECONDS)
                continue
            log.info("handed over", extra={"fields": {**fields, "starting_offsets": offsets, "waited_ms": int((time.monotonic() - started) * 1000)}})
            return offsets if isinstance(offsets, str) else json.dumps(offsets)
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)
