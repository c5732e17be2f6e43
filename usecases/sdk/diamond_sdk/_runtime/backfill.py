"""Backfill (docs/RUNS.md, "Backfill"): `diamond backfill <usecase> --since T` runs the job's
transform over the archived history as one batch, then its stream goes on from where that
history ends.

The orchestrator stops the job, moves its consumer group to the end offsets of the archive's
last committed batch N of records.normalized (the boundary), and starts it with
`--backfill-since T --backfill-history-batch N --history-dir H`. Before its stream starts, the
runner reads exactly the Parquet files the archive committed up to batch N, keeps the records
whose event_time is T or later, runs the use case on them and writes what it produces to
feedback.raw as a batch does: the same feedback ids the stream would give, so a row written
again later overwrites, never duplicates. The stream then starts at the group's offsets, the
boundary: no record is in both, none in neither. A crash before `backfilled` is reported runs
the backfill again (idempotent: the same ids).
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from .history import committed_files, contract_schema, table_dir

HEARTBEAT_SECONDS = 5.0


def parse_since(text: str) -> dt.datetime:
    since = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)


def run_backfill(spark: Any, args: Any, sink: Any, publisher: Any) -> dict[str, Any]:
    """Runs the backfill; reports `backfilling` (a heartbeat while it runs) and `backfilled`."""
    from pyspark.sql import functions as F

    since = parse_since(args.backfill_since)
    since_iso = since.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    files = committed_files(table_dir(args.history_dir, "records"), args.backfill_history_batch)
    done = threading.Event()

    def heartbeat() -> None:
        # The orchestrator's stall check would otherwise see a job whose group does not move.
        while True:
            publisher.publish("backfilling", since=since_iso, history_batch=args.backfill_history_batch)
            if done.wait(HEARTBEAT_SECONDS):
                return

    beats = threading.Thread(target=heartbeat, name="backfill-heartbeat", daemon=True)
    beats.start()
    started = time.monotonic()
    try:
        schema = contract_schema("CustomerRecord")
        history = spark.read.schema(schema).parquet(*files) if files else spark.createDataFrame([], schema)
        records = history.where(F.col("event_time") >= F.timestamp_millis(F.lit(int(since.timestamp() * 1000))))
        rows_in, rows_out, rows_rejected = sink.write_records(records, "backfill")
    finally:
        done.set()
        beats.join()
    report = {
        "since": since_iso, "history_batch": args.backfill_history_batch, "files": len(files),
        "rows_in": rows_in, "rows_out": rows_out, "rows_rejected": rows_rejected,
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
    publisher.publish("backfilled", **report)
    publisher.flush()
    return report
