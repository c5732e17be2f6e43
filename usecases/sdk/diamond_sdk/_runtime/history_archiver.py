"""The history archiver (docs/RUNS.md, "History"): platform code, no tenant code.

  spark-submit usecases/sdk/launch_job.py --archive-history --brokers 127.0.0.1:19092 \\
      --registry-url http://127.0.0.1:18081/apis/ccompat/v7 --history-dir H \\
      --checkpoint-dir C [--retention-days 60] [--pid-file P]

One streaming query per topic (records.normalized, feedback.raw) decodes the Confluent-framed
Avro with every registered writer version (codec.py, as the runner does) and appends Parquet
partitioned by `day` to H/<view>. The file sink's checkpoint and its `_spark_metadata` log
make the copy exactly once: a restarted query rewrites nothing that was committed, and
readers see only committed files. Undecodable messages are skipped (the runner already
rejects them on feedback.rejected). Day folders older than the retention are deleted at
start and then every hour. SIGTERM: stop the queries, exit 0.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import connections, contracts
from .history import DAY_COLUMN, delete_old_days, table_dir, with_day

log = logging.getLogger("diamond.history")
RETENTION_SWEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Table:
    view: str
    topic: str
    subject: str
    contract: str


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diamond-runner --archive-history")
    parser.add_argument("--archive-history", action="store_true")
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--registry-url", required=True)
    parser.add_argument("--history-dir", required=True)
    parser.add_argument("--checkpoint-dir", required=True, help="one checkpoint per topic under it")
    parser.add_argument("--retention-days", type=int, default=60)
    parser.add_argument("--records-topic", default="records.normalized")
    parser.add_argument("--feedback-topic", default="feedback.raw")
    parser.add_argument("--records-subject", default=contracts.SUBJECTS["CustomerRecord"])
    parser.add_argument("--feedback-subject", default=contracts.SUBJECTS["Feedback"])
    parser.add_argument("--starting-offsets", default="earliest", help="where a query without a checkpoint starts")
    parser.add_argument("--trigger", default="10 seconds")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=500_000)
    parser.add_argument("--pid-file")
    parser.add_argument("--connections-file", help="Kafka and registry credentials and CAs (connections.py; read, then removed)")
    return parser.parse_args(argv)


def tables(args: argparse.Namespace) -> list[Table]:
    return [Table("records", args.records_topic, args.records_subject, "CustomerRecord"),
            Table("feedback", args.feedback_topic, args.feedback_subject, "Feedback")]


def start_query(spark: Any, args: argparse.Namespace, table: Table, writers: Any) -> Any:
    """The streaming copy of one topic into H/<view>, decoding with what `writers` knows."""
    from pyspark.sql import functions as F

    from .codec import decode_records

    reader = contracts.schema_json(table.contract)
    raw = (
        spark.readStream.format("kafka").option("kafka.bootstrap.servers", args.brokers).options(**connections.current().spark_kafka_options()).option("subscribe", table.topic)
        .option("startingOffsets", args.starting_offsets).option("failOnDataLoss", "false")  # retention may age data out while stopped
        .option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger)).load()
    )
    decoded = decode_records(raw, writers.by_id, reader, writers.unregistered, id_field=reader["fields"][0]["name"])
    rows = with_day(decoded.where(F.col("record").isNotNull()).select("record.*"))
    return (
        rows.writeStream.format("parquet").partitionBy(DAY_COLUMN)
        .option("path", str(table_dir(args.history_dir, table.view)))
        .option("checkpointLocation", os.path.join(args.checkpoint_dir, table.view))
        # Lets the sink's file log forget what retention deleted.
        .option("retention", f"{args.retention_days}d")
        .queryName(f"history.{table.view}").trigger(processingTime=args.trigger).start()
    )


class RetentionSweeper(threading.Thread):
    def __init__(self, history_dir: str, retention_days: int):
        super().__init__(name="history-retention", daemon=True)
        self.history_dir = history_dir
        self.retention_days = retention_days
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            removed = delete_old_days(self.history_dir, self.retention_days)
            if removed:
                log.info("deleted old history days", extra={"fields": {"removed": removed}})
            if self.stopping.wait(RETENTION_SWEEP_SECONDS):
                return


def archive(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    from .codec import unknown_schema_ids
    from .registry import SchemaRegistry
    from .runner import WriterSchemas, error_text

    args = parse_args(argv)
    connections.install(args.connections_file)
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    spark = SparkSession.builder.appName("diamond-history").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # `day` is the UTC date
    registry = SchemaRegistry(args.registry_url)
    writers = {t.view: WriterSchemas(registry, t.subject, contracts.schema_json(t.contract)) for t in tables(args)}
    queries = {t.view: start_query(spark, args, t, writers[t.view]) for t in tables(args)}
    sweeper = RetentionSweeper(args.history_dir, args.retention_days)
    sweeper.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    log.info("archiving history", extra={"fields": {"history_dir": args.history_dir, "topics": [t.topic for t in tables(args)]}})
    try:
        while not stopping.wait(0.5):
            for table in tables(args):
                query = queries[table.view]
                if query.isActive:
                    continue
                failure = error_text(query.exception()) if query.exception() else "stopped"
                unknown = unknown_schema_ids(failure)
                if not unknown or not any(writers[table.view].learn(unknown).values()):
                    raise RuntimeError(f"history query for {table.topic} failed: {failure}")
                # A writer version registered after the decoder was built: rerun from the checkpoint.
                queries[table.view] = start_query(spark, args, table, writers[table.view])
    finally:
        sweeper.stopping.set()
        for query in queries.values():
            query.stop()
    spark.stop()
    return 0


def wait_for_batches(query: Any, batches: int, timeout: float) -> None:
    """Blocks until `query` has finished `batches` batches with data (tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = query.recentProgress
        if sum(1 for p in progress if p.get("numInputRows", 0) > 0) >= batches:
            return
        if query.exception():
            raise RuntimeError(str(query.exception()))
        time.sleep(0.2)
    raise TimeoutError(f"{query.name} did not finish {batches} batches in {timeout}s")
