"""A warm spare driver of the orchestrator's pool (infra/orchestrator/driver-pool.ts).

  spark-submit usecases/sdk/launch_job.py --warm --assignment-file F --pid-file P

spark-submit starts it exactly as it starts a job (same master, memory, connector jars, job
user, environment, process group). It starts the SparkSession, runs one tiny pass of what
every batch does (warm_up: decode, both kinds of use case code, conform, encode, count) so
the JVM has loaded the classes, compiled the hot code and started the Python worker daemon,
then writes `<F minus .assignment.json>.ready.json` and waits for F.
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


def _warm_feedback(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A feedback() function for the warm-up: one finding per record."""
    return [{"kind": "warm-up", "severity": "info", "message": f"warm {record['record_id']}"}]


def warm_up() -> dict[str, int]:
    """Starts the session and runs what a batch runs once: Confluent frame → from_avro decode,
    a transform's projection and a feedback() function's Python workers (Arrow), conform,
    the routing projection with to_avro, cache, union and the per-topic count (the Kafka
    write aside). Returns the times (ms)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from . import contracts
    from .codec import decode_records, feedback_value
    from .conform import conform, invalid_row_reason
    from .records import apply_feedback_function, feedback_items, rejected_records
    from .wire import encode
    from ..context import Context

    started = time.monotonic()
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    session_ms = int((time.monotonic() - started) * 1000)
    reader = contracts.schema_json("CustomerRecord")
    feedback_schema = contracts.schema_json("Feedback")
    ctx = Context("warm-up", "A", "warm", {})
    at = 1_767_225_600_000
    values = [encode(1, contracts.parsed_schema("CustomerRecord"), {
        "record_id": f"warm-{i}", "customer_id": "warm", "source": "warm-up", "event_time": at, "type": "purchase",
        "amount": 1.0, "currency": "EUR", "attributes": {}, "ingested_at": at,
    }) for i in range(2)]
    raw = spark.createDataFrame([(b"warm", value, "warm-up", 0, i) for i, value in enumerate(values)], "key binary, value binary, topic string, partition int, offset long")
    batch = decode_records(raw, {1: reader}, reader).persist()
    records = batch.where(F.col("record").isNotNull()).select("record.*")
    transformed = conform(records.select(
        "customer_id", "event_time", F.lit("warm-up").alias("kind"), F.lit("info").alias("severity"),
        F.concat(F.lit("warm "), "record_id").alias("message"), F.array("record_id").alias("record_ids"),
    ), ctx)
    results = apply_feedback_function(records, _warm_feedback, ctx, False).persist()
    from_function = conform(feedback_items(results), ctx)
    invalid = invalid_row_reason()

    def routed(conformed: Any) -> Any:
        columns = [F.col(c) for c in conformed.columns]
        return conformed.select(
            F.when(invalid.isNull(), F.lit("out")).otherwise(F.lit("rejected")).alias("topic"),
            F.col("customer_id").cast("binary").alias("key"),
            F.when(invalid.isNull(), feedback_value(columns, 1, feedback_schema)).otherwise(F.to_json(F.struct(*columns)).cast("binary")).alias("value"),
        )

    rejected = rejected_records(results).select(F.lit("rejected").alias("topic"), F.lit(b"warm").alias("key"), F.col("payload").cast("binary").alias("value"))
    everything = routed(transformed).unionByName(routed(from_function)).unionByName(rejected).persist()
    counts = {row["topic"]: row["count"] for row in everything.groupBy("topic").count().collect()}
    for frame in (everything, results, batch):
        frame.unpersist()
    if counts != {"out": 4}:
        raise RuntimeError(f"the warm-up pass counted {counts!r}, expected 4 rows out")
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
