"""A warm spare driver of the orchestrator's pool (infra/orchestrator/driver-pool.ts).

  spark-submit usecases/sdk/launch_job.py --warm --assignment-file F --pid-file P

spark-submit starts it exactly as it starts a job (same master, memory, connector jars, job
user, environment, process group). It starts the SparkSession, runs one tiny pass of what
every batch does (Confluent frame → from_avro decode → a Python UDF → conform → to_avro
encode, one collect) so the JVM has loaded the classes, generated the code and started the
Python worker daemon, then writes `<F minus .assignment.json>.ready.json` and waits for F.
F holds `{"job_id": ..., "argv": [...]}`: exactly the arguments a cold launch gets; the
runner parses them with the same parse_args and runs the same run(), whose getOrCreate()
returns this session. A driver runs at most one job: when it ends, the process exits.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ASSIGNMENT_SUFFIX = ".assignment.json"
READY_SUFFIX = ".ready.json"
POLL_SECONDS = 0.05


def ready_file(assignment_file: str) -> Path:
    name = Path(assignment_file).name
    stem = name[: -len(ASSIGNMENT_SUFFIX)] if name.endswith(ASSIGNMENT_SUFFIX) else name
    return Path(assignment_file).with_name(stem + READY_SUFFIX)


def warm_up() -> dict[str, int]:
    """Starts the session and runs decode → conform → encode once; returns the times (ms)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from . import contracts
    from .codec import decode_records, feedback_value
    from .conform import conform, invalid_row_reason
    from .wire import encode
    from ..context import Context

    started = time.monotonic()
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    session_ms = int((time.monotonic() - started) * 1000)
    reader = contracts.schema_json("CustomerRecord")
    feedback_schema = contracts.schema_json("Feedback")
    at = 1_767_225_600_000
    record = {"record_id": "warm-1", "customer_id": "warm", "source": "warm-up", "event_time": at, "type": "purchase",
              "amount": 1.0, "currency": "EUR", "attributes": {}, "ingested_at": at}
    value = encode(1, contracts.parsed_schema("CustomerRecord"), record)
    raw = spark.createDataFrame([(b"warm", value, "warm-up", 0, 0)], "key binary, value binary, topic string, partition int, offset long")
    decoded = decode_records(raw, {1: reader}, reader)
    shout = F.udf(lambda text: (text or "").upper(), "string")  # starts the Python worker daemon
    feedback = decoded.where(F.col("record").isNotNull()).select(
        "record.customer_id", "record.event_time", F.lit("warm-up").alias("kind"), F.lit("info").alias("severity"),
        shout(F.col("record.record_id")).alias("message"), F.array("record.record_id").alias("record_ids"),
    )
    conformed = conform(feedback, Context("warm-up", "A", "warm", {}))
    columns = [F.col(c) for c in conformed.columns]
    rows = conformed.select(invalid_row_reason().alias("invalid"), feedback_value(columns, 1, feedback_schema).alias("value")).collect()
    if len(rows) != 1 or rows[0]["invalid"] is not None:
        raise RuntimeError(f"the warm-up pass produced {rows!r}")
    return {"session_ms": session_ms, "warm_up_ms": int((time.monotonic() - started) * 1000) - session_ms}


def wait_for_assignment(assignment_file: str, timings: dict[str, int]) -> list[str]:
    """Announces readiness, then waits for the orchestrator's assignment; returns its argv."""
    path = Path(assignment_file)
    ready = ready_file(assignment_file)
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "readyAt": int(time.time() * 1000), **timings}))
    tmp.replace(ready)
    while True:
        if path.exists():  # written by rename: complete when it exists
            assignment: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            argv = assignment.get("argv")
            if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv):
                raise ValueError(f"{assignment_file} has no argv list")
            return argv
        time.sleep(POLL_SECONDS)


def assigned_argv(argv: list[str], log: Any) -> list[str]:
    """The warm driver's life before its job: pid file, warm-up, ready marker, then the job's argv."""
    import argparse

    parser = argparse.ArgumentParser(prog="diamond-runner --warm")
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--assignment-file", required=True)
    parser.add_argument("--pid-file", required=True)
    warm = parser.parse_args(argv)
    Path(warm.pid_file).write_text(str(os.getpid()))
    timings = warm_up()
    log.info("warm; waiting for a job", extra={"fields": {"assignment_file": warm.assignment_file, **timings}})
    job_argv = wait_for_assignment(warm.assignment_file, timings)
    log.info("assigned a job", extra={"fields": {"argv": [word for word in job_argv if not word.startswith("{")][:12]}})
    return job_argv
