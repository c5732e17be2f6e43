"""The streaming job of one use case variant, launched with spark-submit:

  spark-submit usecases/sdk/launch_job.py --usecase-dir usecases/data_quality --variant A \\
      --brokers 127.0.0.1:19092 --registry-url http://127.0.0.1:18081/apis/ccompat/v7 \\
      --starting-offsets '{"records.normalized": {"0": 42}}'

It reads `records.normalized` from the offsets it is given, decodes every writer schema
version, runs the use case, conforms the output to `Feedback`, writes `feedback.raw` (and
per-record errors to `feedback.rejected`), and after each finished batch publishes its end
offsets on `diamond.progress`. SIGTERM: finish the current batch, report, exit 0.
Exit codes: 0 stopped, 2 the use case's code failed (reported with file and line),
3 invalid manifest or output, 75 infrastructure unreachable (Kafka or the schema registry,
at start or mid-stream: the orchestrator restarts with backoff and does not count it as a
crash), 1 anything else.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import connections, contracts
from .conform import OutputContractError, conform
from .kafka_sink import PRODUCER_OPTIONS
from ..context import Context
from .manifest import ManifestError, load_manifest
from .checkpoint_logs import committed_batch, planned_batch, remove_torn_writes
from .handover import await_handover
from .progress import ProgressPublisher, end_offsets, finite_or_none, read_progress_key
from .registry import RegistryError, SchemaRegistry
from .user_transform import transform_feedback
from .usercode import UserCodeError, UserJob, load_user_job, user_error_from_text
from .version import code_version

EXIT_OK, EXIT_PLATFORM, EXIT_USER_CODE, EXIT_INVALID = 0, 1, 2, 3
# sysexits.h EX_TEMPFAIL ("try again later"); infra/orchestrator/outage.ts has the same number.
EXIT_OUTAGE = 75

# The state StreamExecution.stop() sets before it cancels (Spark 4.2's package): set alone while
# a batch writes, that batch finishes and is the last (end_after_running_batch). How long a
# query may take to end so before it is stopped.
TERMINATED_STATE = "org.apache.spark.sql.execution.streaming.runtime.TERMINATED$"
ENDING_PATIENCE_S = 30.0

# Java exceptions (by class name: Py4J only gives us those) meaning Kafka could not be reached.
KAFKA_OUTAGE_CLASSES = frozenset({
    "org.apache.kafka.common.errors.TimeoutException",
    "org.apache.kafka.common.errors.NetworkException",
    "org.apache.kafka.common.errors.DisconnectException",
    "org.apache.kafka.common.errors.BrokerNotAvailableException",
    "org.apache.kafka.common.errors.LeaderNotAvailableException",
    "org.apache.kafka.common.errors.NotEnoughReplicasException",
    "org.apache.kafka.common.errors.NotEnoughReplicasAfterAppendException",
    "java.net.ConnectException",
    "java.nio.channels.UnresolvedAddressException",
})


class InfrastructureUnavailable(RuntimeError):
    """Kafka or the schema registry could not be reached: the platform's outage, not the use case's fault."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service} unreachable: {message}")
        self.service = service


def java_class_names(error: BaseException | None) -> list[str]:
    """Class names of the Java throwables behind `error` (its Py4J/Spark wrappers and their causes)."""
    names: list[str] = []
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseException):
            # Py4JJavaError carries java_exception; Spark's CapturedException its origin and cause.
            pending.extend([getattr(current, "java_exception", None), getattr(current, "_origin", None), getattr(current, "_cause", None), current.__cause__])
            continue
        try:
            names.append(str(current.getClass().getName()))
            pending.append(current.getCause())
        except Exception:  # not a Java object after all
            continue
    return names


def outage_of(error: BaseException | None, java_error: Any = None) -> InfrastructureUnavailable | None:
    """The outage behind a failure, classified by exception type (Java class name through Py4J); None when it is none."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, InfrastructureUnavailable):
            return current
        if isinstance(current, RegistryError) and (current.status is None or current.status >= 500):
            return InfrastructureUnavailable("schema registry", str(current))
        current = current.__cause__
    names = java_class_names(error)
    if java_error is not None:
        names += java_class_names(_JavaThrowable(java_error))
    hit = next((name for name in names if name in KAFKA_OUTAGE_CLASSES), None)
    return InfrastructureUnavailable("Kafka", f"{hit} ({str(error)[:500]})") if hit else None


class _JavaThrowable(Exception):
    """Wraps a bare Java throwable so java_class_names walks it."""

    def __init__(self, throwable: Any) -> None:
        super().__init__("java throwable")
        self.java_exception = throwable

log = logging.getLogger("diamond.runner")


def use_kafka_v2_writes(spark: Any) -> None:
    """Batch writes to Kafka take the DataSource V2 path. Spark keeps `kafka` on the V1 list
    by default, and a V1 save runs the query as a separate plan, so metrics observed on the
    written DataFrame (the batch's counts) never arrive."""
    key = "spark.sql.sources.useV1SourceList"
    sources = [name for name in str(spark.conf.get(key, "")).split(",") if name.strip() and name.strip().lower() != "kafka"]
    spark.conf.set(key, ",".join(sources))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {"level": record.levelname.lower(), "time": int(record.created * 1000), "msg": record.getMessage()}
        body.update(getattr(record, "fields", {}))
        return json.dumps(body, default=str)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diamond-runner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--usecase-dir", required=True)
    parser.add_argument("--variant", default="A")
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--registry-url", required=True)
    parser.add_argument("--starting-offsets", default="latest", help='"earliest", "latest" or Spark JSON {"topic": {"0": 42}}')
    parser.add_argument("--job-id", help="default uc.<usecase>.<variant>")
    parser.add_argument("--checkpoint-root", default=os.path.join(tempfile.gettempdir(), "diamond-checkpoints"), help="stateful use cases keep their checkpoint under it")
    parser.add_argument("--input-topic", default="records.normalized")
    parser.add_argument("--output-topic", default="feedback.raw")
    parser.add_argument("--rejected-topic", default="feedback.rejected")
    parser.add_argument("--progress-topic", default="diamond.progress")
    parser.add_argument("--records-subject", default=contracts.SUBJECTS["CustomerRecord"])
    parser.add_argument("--feedback-subject", default=contracts.SUBJECTS["Feedback"])
    parser.add_argument("--trigger", help="override the manifest's trigger, e.g. 500ms")
    parser.add_argument("--max-records-per-batch", type=int, help="override the manifest's max_records_per_batch")
    parser.add_argument("--foreach-batch", action="store_true", help="run a stateless transform batch by batch (foreachBatch) instead of as one streaming query")
    parser.add_argument("--pid-file", help="write the driver's pid here (the supervisor signals this process)")
    parser.add_argument("--progress-key-file", help="the launch's progress signing key (read, then removed)")
    parser.add_argument("--connections-file", help="Kafka and registry credentials and CAs (connections.py; read, then removed)")
    parser.add_argument("--handover-file", help="start warm, then wait for the starting offsets in this file (an exact-boundary upgrade: handover.py)")
    parser.add_argument("--backfill-since", help="before the stream starts, run the use case over the history's records since this ISO time (backfill.py)")
    parser.add_argument("--backfill-history-batch", type=int, help="backfill: the archive's last committed batch to read (its end offsets are the stream's start)")
    parser.add_argument("--history-dir", help="backfill: the Parquet history the archiver writes")
    return parser.parse_args(argv)


class BatchSink:
    """foreachBatch: runs the use case on a stateless batch (or takes a stateful query's
    conformed rows), and writes feedback and rejected rows to Kafka."""

    def __init__(self, args: argparse.Namespace, job: UserJob, ctx: Context, feedback_schema: dict[str, Any], feedback_schema_id: int, stateful: bool):
        self.args = args
        self.job = job
        self.ctx = ctx
        self.feedback_schema = feedback_schema
        self.feedback_schema_id = feedback_schema_id
        self.stateful = stateful
        self.in_batch = threading.Event()
        self.last_finished = -1
        self.stats: dict[int, dict[str, Any]] = {}
        self.rows_in: dict[int, int] = {}
        self.user_error: UserCodeError | None = None
        self.contract_error: OutputContractError | None = None

    def __call__(self, batch: Any, batch_id: int) -> None:
        self.in_batch.set()
        started = time.monotonic()
        try:
            rows_out, rejected = self._process(batch, batch_id)
            self.stats[batch_id] = {"rows_out": rows_out, "rows_rejected": rejected, "sink_ms": int((time.monotonic() - started) * 1000)}
            if batch_id in self.rows_in:
                self.stats[batch_id]["rows_in"] = self.rows_in.pop(batch_id)
            self.last_finished = batch_id
        finally:
            self.in_batch.clear()

    def _process(self, batch: Any, batch_id: int) -> tuple[int, int]:
        """Everything the batch produces goes out in ONE Kafka write (routing.py), with the
        per-topic counts observed on it: a batch is one Spark job. Counting first (a groupBy
        + collect) and caching between the two cost a second job and a cache per batch
        (measured: p50 at 2,000 records/s 3.2 s → 1.1 s)."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        from .routing import input_count, undecodable_rows

        parts: list[Any] = []
        cached: list[Any] = []
        rows_in = None
        if self.stateful:
            conformed = batch
        else:
            # Not cached: the two branches each read the batch's Kafka range (a second, local
            # read of what the consumer just fetched), cheaper than caching every batch.
            rows_in = Observation(f"input-{batch_id}")
            batch = batch.observe(rows_in, input_count())
            parts.append(undecodable_rows(batch, self.ctx, self.args.rejected_topic))
            records = batch.where(F.col("record").isNotNull()).select("record.*")
            conformed = self._feedback_of(records, parts, cached)
        observed = self._write(conformed, parts, cached, f"batch-{batch_id}")
        if rows_in is not None:
            self.rows_in[batch_id] = int(rows_in.get.get("rows") or 0)
        return observed

    def write_records(self, records: Any, name: str) -> tuple[int, int, int]:
        """Runs the use case on decoded records (a backfill's history) and writes what it
        produces the way a batch does: (rows in, rows out, rows rejected)."""
        from pyspark.sql import Observation

        from .routing import input_count

        rows_in = Observation(f"input-{name}")
        parts: list[Any] = []
        cached: list[Any] = []
        conformed = self._feedback_of(records.observe(rows_in, input_count()), parts, cached)
        rows_out, rejected = self._write(conformed, parts, cached, name)
        return int(rows_in.get.get("rows") or 0), rows_out, rejected

    def _feedback_of(self, records: Any, parts: list[Any], cached: list[Any]) -> Any:
        """The use case's conformed feedback for `records`; rejected rows it makes go to `parts`."""
        from .records import apply_feedback_function, feedback_items, rejected_records
        from .routing import rejected_payloads

        if self.job.kind == "transform":
            try:
                return transform_feedback(self.job, records, self.ctx)
            except UserCodeError as error:
                self.user_error = error
                raise
            except OutputContractError as error:
                self.contract_error = error
                raise
        # Cached because both halves read it: the user's function must run once per record.
        results = apply_feedback_function(records, self.job.function, self.ctx, self.job.takes_context).persist()
        cached.append(results)
        parts.append(rejected_payloads(rejected_records(results), self.ctx, self.args.rejected_topic))
        return conform(feedback_items(results), self.ctx)

    def _write(self, conformed: Any, parts: list[Any], cached: list[Any], name: str) -> tuple[int, int]:
        from pyspark.sql import Observation

        from .routing import output_counts, routed_feedback

        out_topic, rejected_topic = self.args.output_topic, self.args.rejected_topic
        everything = routed_feedback(conformed, self.ctx, out_topic, rejected_topic, self.feedback_schema_id, self.feedback_schema)
        for part in parts:
            everything = everything.unionByName(part)
        counts = Observation(name)
        everything = everything.observe(counts, *output_counts(out_topic, rejected_topic))
        try:
            # mode("append") on the V2 path (see use_kafka_v2_writes): only there does the write
            # report the observed counts.
            (
                everything.write.format("kafka").mode("append").option("kafka.bootstrap.servers", self.args.brokers)
                .options(**PRODUCER_OPTIONS).options(**connections.current().spark_kafka_options())
                .save()
            )
        finally:
            for frame in cached:
                frame.unpersist()
        observed = counts.get
        return int(observed.get("out") or 0), int(observed.get("rejected") or 0)


def direct_stream(decoded: Any, job: UserJob, ctx: Context, args: argparse.Namespace, feedback_schema: dict[str, Any], feedback_schema_id: int) -> Any:
    """A stateless transform as ONE streaming query: decode → the user's transform → conform
    → route → Kafka sink. No Python runs per batch (the plan is built once), and counts and
    input rows are observed on the stream (progress.observedMetrics). Raises UserCodeError /
    OutputContractError while building, before anything runs."""
    from pyspark.sql import functions as F

    from .routing import INPUT_METRICS, OUTPUT_METRICS, input_count, output_counts, routed_feedback, undecodable_rows

    out_topic, rejected_topic = args.output_topic, args.rejected_topic
    decoded = decoded.observe(INPUT_METRICS, input_count())
    records = decoded.where(F.col("record").isNotNull()).select("record.*")
    conformed = transform_feedback(job, records, ctx)
    everything = routed_feedback(conformed, ctx, out_topic, rejected_topic, feedback_schema_id, feedback_schema)
    everything = everything.unionByName(undecodable_rows(decoded, ctx, rejected_topic))
    return everything.observe(OUTPUT_METRICS, *output_counts(out_topic, rejected_topic))


def observed_stats(progress: Any) -> dict[str, Any]:
    """rows_in / rows_out / rows_rejected of a direct query's batch, from its observed metrics."""
    from .routing import INPUT_METRICS, OUTPUT_METRICS

    metrics = dict(progress.observedMetrics or {})
    stats: dict[str, Any] = {}
    if INPUT_METRICS in metrics:
        stats["rows_in"] = int(metrics[INPUT_METRICS]["rows"] or 0)
    if OUTPUT_METRICS in metrics:
        output = metrics[OUTPUT_METRICS]
        stats["rows_out"] = int(output["out"] or 0)
        stats["rows_rejected"] = int(output["rejected"] or 0)
    return stats


def ui_url() -> dict[str, str]:
    """{"ui_url": …} of this driver's Spark UI, or {} when the UI is off."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    url = context.uiWebUrl if context is not None else None
    return {"ui_url": url} if url else {}


def make_listener(publisher: ProgressPublisher, sink: BatchSink, input_topic: str) -> Any:
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressListener(StreamingQueryListener):
        def __init__(self) -> None:
            self.last_published = -1

        def onQueryStarted(self, event: Any) -> None:
            publisher.publish("started", run_id=str(event.runId), **ui_url())

        def onQueryProgress(self, event: Any) -> None:
            progress = event.progress
            source = progress.sources[0] if progress.sources else None
            stats = {**observed_stats(progress), **sink.stats.pop(progress.batchId, {})}
            publisher.publish(
                "progress",
                batch_id=progress.batchId,
                start_offsets=end_offsets(source.startOffset if source else None, input_topic),
                end_offsets=end_offsets(source.endOffset if source else None, input_topic),
                rows_in=stats.get("rows_in", progress.numInputRows),
                rows_out=stats.get("rows_out", 0),
                rows_rejected=stats.get("rows_rejected", 0),
                input_rows_per_second=finite_or_none(progress.inputRowsPerSecond),
                processed_rows_per_second=finite_or_none(progress.processedRowsPerSecond),
                durations_ms=dict(progress.durationMs or {}),
            )
            self.last_published = progress.batchId

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            pass

    return ProgressListener()


class WriterSchemas:
    """The writer schemas the job decodes: every registered version of the records subject
    at start (the contract itself registered first, so a job can start before upstream ever
    wrote), then every id a batch met that the decoder did not know, looked up by id the way
    Confluent deserializers do. Ids the registry does not know (404) are remembered so their
    messages are rejected instead of asked about again."""

    def __init__(self, registry: SchemaRegistry, subject: str, reader: dict[str, Any]):
        self.registry = registry
        self.subject = subject
        registry.register(subject, reader)
        self.by_id: dict[int, dict[str, Any]] = {}
        self.unregistered: set[int] = set()
        self.refresh_subject()

    def refresh_subject(self) -> list[int]:
        """Adds the subject's versions registered since the last look; returns the new ids."""
        added = []
        for version in self.registry.versions(self.subject):
            schema_id = self.registry.schema_id(self.subject, version)
            if schema_id not in self.by_id:
                self.by_id[schema_id] = self.registry.schema_json(schema_id)
                added.append(schema_id)
        return added

    def learn(self, schema_ids: set[int]) -> dict[str, list[int]]:
        """Looks up ids a batch could not decode. A registry outage raises (the job fails and
        is restarted from its last finished batch); nothing is guessed."""
        added, unregistered = self.refresh_subject(), []
        for schema_id in sorted(schema_ids - set(self.by_id) - self.unregistered):
            try:
                self.by_id[schema_id] = self.registry.schema_json(schema_id)
                added.append(schema_id)
            except RegistryError as error:
                if error.status != 404:
                    raise
                self.unregistered.add(schema_id)
                unregistered.append(schema_id)
        return {"added": sorted(added), "unregistered": unregistered}


def error_text(error: BaseException) -> str:
    """The message of a query's failure with the messages of its JVM causes (a failed
    foreachBatch wraps the task's error a few levels deep)."""
    parts = [str(error)]
    cause = getattr(error, "_origin", None)
    for _ in range(20):
        if cause is None:
            break
        try:
            parts.append(str(cause.getMessage()))
            cause = cause.getCause()
        except Exception:  # not a Java exception after all
            break
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from .codec import decode_records, unknown_schema_ids
    from .stateful import stateful_feedback

    manifest = load_manifest(args.usecase_dir)
    version = code_version(manifest.folder)
    job_id = args.job_id or f"uc.{manifest.name}.{args.variant}"
    job = load_user_job(manifest.name, args.variant, manifest.variant_file(args.variant))
    ctx = Context(manifest.name, args.variant, version, manifest.params)
    fields = {"job": job_id, "usecase": manifest.name, "variant": args.variant, "version": version}
    log.info("starting", extra={"fields": {**fields, "kind": job.kind, "stateful": manifest.stateful, "starting_offsets": args.starting_offsets}})

    registry = SchemaRegistry(args.registry_url)
    reader = contracts.schema_json("CustomerRecord")
    writers = WriterSchemas(registry, args.records_subject, reader)
    feedback_schema = contracts.schema_json("Feedback")
    feedback_schema_id = registry.register(args.feedback_subject, feedback_schema)

    spark = SparkSession.builder.appName(job_id).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    use_kafka_v2_writes(spark)
    publisher = ProgressPublisher(args.brokers, args.progress_topic, job_id, {"usecase": manifest.name, "variant": args.variant, "version": version}, key=getattr(args, "progress_key", None))
    sink = BatchSink(args, job, ctx, feedback_schema, feedback_schema_id, manifest.stateful)
    listener = make_listener(publisher, sink, args.input_topic)
    spark.streams.addListener(listener)
    reader_options = {
        "kafka.bootstrap.servers": args.brokers,
        **connections.current().spark_kafka_options(),
        "subscribe": args.input_topic,
        # Loud, never silent: offsets that point at data Kafka no longer has (aged out while the
        # job was stopped) fail the job instead of skipping. Forged or out-of-range offsets
        # cannot get here: the orchestrator commits only signed progress within the partition.
        "failOnDataLoss": "true",
        "maxOffsetsPerTrigger": str(args.max_records_per_batch or manifest.max_records_per_batch),
    }

    def read_input() -> Any:
        return spark.readStream.format("kafka").options(**reader_options, startingOffsets=args.starting_offsets).load()
    trigger_ms = manifest.trigger_ms
    if args.trigger:
        from .manifest import parse_duration_ms

        trigger_ms = parse_duration_ms(args.trigger) or trigger_ms
    if manifest.stateful:
        # Stateful: the use case transforms the stream itself (windows), so its state lives
        # in the checkpoint, which survives restarts.
        checkpoint = os.path.join(args.checkpoint_root, manifest.name, args.variant)
        torn = remove_torn_writes(checkpoint)  # a kill -9 mid-write; this process owns the checkpoint now
        if torn:
            log.info("removed torn checkpoint log writes of a killed run", extra={"fields": {**fields, "removed": torn}})
    else:
        # Stateless: no checkpoint survives the run; the orchestrator hands over offsets.
        # Within the run it does: a restart after a new writer id runs the failed batch again.
        checkpoint = tempfile.mkdtemp(prefix=f"diamond-{job_id}-")

    # A stateless transform runs as one streaming query straight into the Kafka sink; a
    # per-record feedback() (Arrow batches, cached once per batch) and a stateful transform
    # (its conformed stream) go through foreachBatch.
    mode = {"direct": not manifest.stateful and job.kind == "transform" and not args.foreach_batch}

    def start_direct_query(decoded: Any, once: bool) -> Any:
        writer = (
            direct_stream(decoded, job, ctx, args, feedback_schema, feedback_schema_id).writeStream.format("kafka")
            .option("kafka.bootstrap.servers", args.brokers)
            .options(**PRODUCER_OPTIONS).options(**connections.current().spark_kafka_options())
            .option("checkpointLocation", checkpoint)
            .queryName(job_id)
        )
        # Spark 4.2's Real-time Mode (trigger(realTime=…)) refuses this query: it unions two
        # reads of the same Kafka source (IDENTICAL_SOURCES_IN_UNION_NOT_SUPPORTED), and the
        # undecodable branch is what keeps bad input from being lost.
        return writer.outputMode("append").trigger(**trigger_of(once)).start()

    def trigger_of(once: bool) -> dict[str, Any]:
        # once: only to finish a batch a stop interrupted (Spark reruns the planned batch first).
        return {"once": True} if once else {"processingTime": f"{trigger_ms} milliseconds"}

    def start_query(once: bool = False) -> Any:
        from pyspark.errors import AnalysisException

        decoded = decode_records(read_input(), writers.by_id, reader, writers.unregistered)
        if mode["direct"]:
            try:
                try:
                    return start_direct_query(decoded, once)
                except UserCodeError as error:
                    # A transform that runs a batch action (count(), collect()) on its input.
                    if isinstance(error.__cause__, AnalysisException):
                        raise error.__cause__ from error
                    raise
            except AnalysisException as error:
                # The transform uses what a streaming query cannot run (a sort, a limit, an
                # aggregation without a watermark): it still works batch by batch.
                log.info("the transform cannot run as one streaming query; running it batch by batch", extra={"fields": {**fields, "reason": str(error).splitlines()[0]}})
                mode["direct"] = False
        if manifest.stateful:
            stream = stateful_feedback(decoded.where(F.col("record").isNotNull()).select("record.*"), manifest, job, ctx)
        else:
            stream = decoded
        return (
            stream.writeStream.foreachBatch(sink)
            .option("checkpointLocation", checkpoint)
            .outputMode("append")
            .trigger(**trigger_of(once))
            .queryName(job_id)
            .start()
        )

    def between_batches(query: Any) -> bool:
        if not mode["direct"]:
            return not sink.in_batch.is_set()
        return not bool(query.status.get("isTriggerActive", False))

    def last_finished(_query: Any) -> int:
        return committed_batch(checkpoint) if mode["direct"] else sink.last_finished

    stop_requested = threading.Event()
    stop_requested_at = [0.0]
    # The last batch finished when the stop was first requested: the stop waits for the one after it at most.
    finished_at_request: list[int | None] = [None]

    def request_stop(signum: int, _frame: Any) -> None:
        if finished_at_request[0] is None:
            finished_at_request[0] = last_finished(None)
            stop_requested_at[0] = time.monotonic()
        log.info("stop requested; finishing the current batch", extra={"fields": {**fields, "signal": signum, "finished_batch_id": finished_at_request[0]}})
        stop_requested.set()

    def writing(query: Any) -> bool:
        """Whether the query's batch is writing its output (its Spark job runs)."""
        if not mode["direct"]:
            return sink.in_batch.is_set()
        # One query per driver, and its only Spark job per batch is the write.
        return len(spark.sparkContext.statusTracker().getActiveJobsIds()) > 0

    def end_after_running_batch(query: Any) -> bool:
        """Ends the query after the batch that writes, without cancelling it.

        Structured Streaming has no graceful stop: query.stop() cancels the running batch,
        and a Kafka sink task cancelled mid-write has already handed rows to its producer,
        so running that batch again (finish_planned_batch) wrote them twice. Marking the
        engine TERMINATED (StreamExecution.state, what stop() sets before it cancels) is
        what the micro-batch loop checks before each batch: a batch that writes finishes,
        commits, and is the last. Only while a batch writes: one marked while it is being
        planned interrupts itself after its job may have been submitted, which then writes
        unsupervised. False when this Spark lacks that internal (the caller stops)."""
        try:
            jvm = spark.sparkContext._jvm
            terminated = jvm.java.lang.Class.forName(TERMINATED_STATE).getField("MODULE$").get(None)
            query._jsq.streamingQuery().state().set(terminated)
            return True
        except Exception as error:  # py4j: a renamed class or field in another Spark version
            log.warning("cannot end the query after its running batch; stopping it instead", extra={"fields": {**fields, "error": str(error).splitlines()[0]}})
            return False

    def execution_ended(query: Any) -> bool:
        # Not awaitTermination: once marked, it answers "terminated" while the batch still runs.
        return not query._jsq.streamingQuery().queryExecutionThread().isAlive()

    def run_until_stopped_or_failed(query: Any) -> Any | None:
        """None after a requested stop; the failed query otherwise.

        A requested stop lets the batch that writes finish and starts no other
        (end_after_running_batch). A query with nothing to write is stopped between two
        triggers. Where ending after a batch is not possible, it waits for a moment between
        two batches, or at most until the batch that ran when the stop was asked for has
        finished: a query whose batches take longer than its trigger interval starts each
        one the moment the previous one ends, so no moment between them is ever seen.
        Stopped inside the next batch, no record is lost (finish_planned_batch runs that
        batch to its end), but rows its cancelled tasks had sent are written twice, with
        the same feedback ids."""
        ending_since: float | None = None
        graceful = True
        idle_patience_s = trigger_ms / 1000 + 0.2  # a trigger with no write: nothing to write
        while True:
            try:
                if ending_since is not None:
                    if execution_ended(query):
                        break
                    time.sleep(0.02)
                elif query.awaitTermination(0.01 if stop_requested.is_set() else 0.5):
                    break
            except Exception:  # the query failed; its exception is read below
                break
            if not stop_requested.is_set():
                continue
            now = time.monotonic()
            if ending_since is not None and now - ending_since < ENDING_PATIENCE_S:
                continue
            if ending_since is None and graceful and writing(query):
                if end_after_running_batch(query):
                    ending_since = now
                    continue
                graceful = False
            between = between_batches(query)
            requested_after = finished_at_request[0]
            idle = graceful and now - stop_requested_at[0] >= idle_patience_s and between
            late = not graceful and (between or (requested_after is not None and last_finished(query) > requested_after))
            if ending_since is not None or idle or late:
                # Stop first, then let the listener report the last finished batch: waiting
                # in between would let the next trigger start. Read once stopped: a batch may
                # still have finished in the meantime, and its report must precede `stopped`.
                stopping = time.monotonic()
                query.stop()
                stopped_ms = int((time.monotonic() - stopping) * 1000)
                finished = last_finished(query)
                published = await_published(finished)
                log.info("query stopped between batches" if between else "query stopped in the batch after the one running at the request",
                         extra={"fields": {**fields, "after_request_ms": int((stopping - stop_requested_at[0]) * 1000),
                                           "stop_ms": stopped_ms, "last_batch_id": finished, "reported": published}})
                ending_since = None
                break
        if ending_since is not None and stop_requested.is_set():
            finished = last_finished(query)
            published = await_published(finished)
            log.info("query ended after its running batch",
                     extra={"fields": {**fields, "after_request_ms": int((time.monotonic() - stop_requested_at[0]) * 1000),
                                       "last_batch_id": finished, "reported": published}})
        return None if query.exception() is None or stop_requested.is_set() else query

    def await_published(batch_id: int) -> bool:
        deadline = time.monotonic() + 10
        while listener.last_published < batch_id and time.monotonic() < deadline:
            time.sleep(0.02)
        return listener.last_published >= batch_id

    def finish_planned_batch() -> None:
        """A stop that caught a batch Spark had planned may have left part of its output
        written: run that batch to its end, so the stop is at an exact boundary."""
        planned = planned_batch(checkpoint)
        if planned is None:
            return
        log.info("the stop caught a planned batch; running it to its end", extra={"fields": {**fields, "batch_id": planned}})
        query = start_query(once=True)
        query.awaitTermination()
        if query.exception() is not None:
            raise RuntimeError(error_text(query.exception()))
        await_published(planned)

    if args.handover_file:
        if mode["direct"] and not manifest.stateful:
            # The plan built once while the old version still runs: the handover's pause
            # then pays only for starting the query, not for a cold analysis of the plan.
            try:
                direct_stream(decode_records(read_input(), writers.by_id, reader, writers.unregistered), job, ctx, args, feedback_schema, feedback_schema_id)
            except Exception:  # only a warm-up: the real start below reports any error properly
                log.info("the plan could not be built ahead of the handover", extra={"fields": fields})
        handed = await_handover(args.handover_file, log, fields)
        if handed is None:
            log.info("stopped before the handover", extra={"fields": fields})
            spark.stop()
            return EXIT_OK
        args.starting_offsets = handed

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        if args.backfill_since:
            from .backfill import run_backfill

            # Its errors (the user's code, an outage) are reported as a batch's are, below.
            log.info("backfilling from the history", extra={"fields": {**fields, "since": args.backfill_since, "history_batch": args.backfill_history_batch}})
            report = run_backfill(spark, args, sink, publisher)
            log.info("backfilled; the stream starts where the history ends", extra={"fields": {**fields, **report}})
        while True:
            failed = run_until_stopped_or_failed(start_query())
            if failed is None:
                finish_planned_batch()
                break
            failure = error_text(failed.exception())
            unknown = unknown_schema_ids(failure)
            if not unknown:
                error = RuntimeError(failure)
                # Kafka or the registry unreachable is an outage (exit 75), not the use case's crash.
                outage = outage_of(error, failed._jsq.exception().get())
                if outage is not None and sink.user_error is None and sink.contract_error is None:
                    raise outage from error
                raise error
            # A batch met writer ids the decoder lacks (a version registered after it was
            # built). Nothing of that batch was written or committed; learn the ids and run
            # the same batch again from the checkpoint with a decoder that has them.
            learned = writers.learn(unknown)
            if not learned["added"] and not learned["unregistered"]:
                raise RuntimeError(f"schema ids {sorted(unknown)} still undecodable after asking the registry: {failure}")
            log.info("new writer schema ids; restarting the query from its checkpoint with a new decoder",
                     extra={"fields": {**fields, "unknown_ids": sorted(unknown), **learned}})
    except InfrastructureUnavailable:
        raise
    except Exception as error:
        if sink.user_error is not None:
            raise sink.user_error from error
        if sink.contract_error is not None:
            raise sink.contract_error from error
        outage = outage_of(error)
        if outage is not None:
            raise outage from error
        from_text = user_error_from_text(manifest.name, manifest.folder, str(error))
        if from_text is not None:
            raise from_text from error
        raise
    finally:
        if not manifest.stateful:
            shutil.rmtree(checkpoint, ignore_errors=True)
    last_batch = listener.last_published if mode["direct"] else sink.last_finished
    publisher.publish("stopped", last_batch_id=last_batch)
    publisher.flush()
    spark.stop()
    log.info("stopped", extra={"fields": {**fields, "last_batch_id": last_batch, "direct": mode["direct"]}})
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per JVM callback otherwise
    argv = sys.argv[1:] if argv is None else argv
    if "--warm" in argv:  # a spare of the driver pool: warm up, then run the job it is given (warm.py)
        from .warm import assigned_argv

        argv = assigned_argv(argv, log)
    if "--serve-functions" in argv:  # a function session (function_server.py), not a streaming job
        from .function_server import serve

        return serve(argv)
    if "--archive-history" in argv:  # the history archiver (history_archiver.py)
        from .history_archiver import archive

        return archive(argv)
    args = parse_args(argv)
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    args.progress_key = read_progress_key(args.progress_key_file)  # before any use case code runs
    connections.install(args.connections_file)  # likewise
    try:
        return run(args)
    except UserCodeError as error:
        log.error(str(error), extra={"fields": {**error.as_dict(), "traceback": error.user_traceback}})
        _report_failure(args, error.as_dict())
        return EXIT_USER_CODE
    except InfrastructureUnavailable as error:
        log.error(str(error), extra={"fields": {"error": "outage", "service": error.service}})
        _report_failure(args, {"error": "outage", "message": str(error)[:2000]})
        return EXIT_OUTAGE
    except (ManifestError, OutputContractError) as error:
        log.error(str(error), extra={"fields": {"error": type(error).__name__}})
        _report_failure(args, {"error": type(error).__name__, "message": str(error)})
        return EXIT_INVALID
    except Exception as error:  # anything else is the platform's problem; say so and exit non-zero
        outage = outage_of(error)  # e.g. the registry unreachable at start
        if outage is not None:
            log.error(str(outage), extra={"fields": {"error": "outage", "service": outage.service}})
            _report_failure(args, {"error": "outage", "message": str(outage)[:2000]})
            return EXIT_OUTAGE
        log.exception("job failed", extra={"fields": {"error": "platform"}})
        _report_failure(args, {"error": "platform", "message": str(error)[:2000]})
        return EXIT_PLATFORM


def _report_failure(args: argparse.Namespace, details: dict[str, Any]) -> None:
    try:
        name = Path(args.usecase_dir).resolve().name
        publisher = ProgressPublisher(args.brokers, args.progress_topic, args.job_id or f"uc.{name}.{args.variant}", {"usecase": name, "variant": args.variant}, key=getattr(args, "progress_key", None))
        publisher.publish("failed", **details)
        publisher.flush(5)
    except Exception:  # reporting must never hide the original error
        log.warning("could not publish the failure on the progress topic")
