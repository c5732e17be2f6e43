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

from . import contracts
from .conform import OutputContractError, conform, invalid_row_reason
from .kafka_sink import PRODUCER_OPTIONS
from ..context import Context
from .manifest import ManifestError, load_manifest
from .progress import ProgressPublisher, end_offsets, finite_or_none, read_progress_key
from .registry import RegistryError, SchemaRegistry
from .user_transform import transform_feedback
from .usercode import UserCodeError, UserJob, load_user_job, user_error_from_text
from .version import code_version

EXIT_OK, EXIT_PLATFORM, EXIT_USER_CODE, EXIT_INVALID = 0, 1, 2, 3
# sysexits.h EX_TEMPFAIL ("try again later"); infra/orchestrator/outage.ts has the same number.
EXIT_OUTAGE = 75

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
    parser.add_argument("--pid-file", help="write the driver's pid here (the supervisor signals this process)")
    parser.add_argument("--progress-key-file", help="the launch's progress signing key (read, then removed)")
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
        self.user_error: UserCodeError | None = None
        self.contract_error: OutputContractError | None = None

    def __call__(self, batch: Any, batch_id: int) -> None:
        self.in_batch.set()
        started = time.monotonic()
        try:
            rows_out, rejected = self._process(batch, batch_id)
            self.stats[batch_id] = {"rows_out": rows_out, "rows_rejected": rejected, "sink_ms": int((time.monotonic() - started) * 1000)}
            self.last_finished = batch_id
        finally:
            self.in_batch.clear()

    def _process(self, batch: Any, batch_id: int) -> tuple[int, int]:
        """Everything the batch produces goes out in ONE Kafka write (a `topic` column routes
        feedback and rejected rows): a batch costs two Spark jobs (count, write) instead of
        one per output and count."""
        from pyspark.sql import functions as F

        from .codec import feedback_value
        from .records import apply_feedback_function, feedback_items, rejected_records

        out_topic, rejected_topic = self.args.output_topic, self.args.rejected_topic
        envelope_key = F.lit(self.ctx.usecase).cast("binary")
        parts = []
        cached = []
        if self.stateful:
            conformed = batch
        else:
            batch = batch.persist()
            cached.append(batch)
            undecodable = batch.where(F.col("record").isNull()).select(F.to_json(F.struct(
                F.lit(self.ctx.usecase).alias("usecase"), F.lit(self.ctx.variant).alias("variant"),
                "reason",
                "topic", "partition", "offset", F.base64("value").alias("value_base64"),
            )).alias("payload"))
            parts.append(undecodable.select(F.lit(rejected_topic).alias("topic"), envelope_key.alias("key"), F.col("payload").cast("binary").alias("value")))
            records = batch.where(F.col("record").isNotNull()).select("record.*")
            if self.job.kind == "transform":
                try:
                    conformed = transform_feedback(self.job, records, self.ctx)
                except UserCodeError as error:
                    self.user_error = error
                    raise
                except OutputContractError as error:
                    self.contract_error = error
                    raise
            else:
                results = apply_feedback_function(records, self.job.function, self.ctx, self.job.takes_context).persist()
                cached.append(results)
                conformed = conform(feedback_items(results), self.ctx)
                parts.append(rejected_records(results).select(F.lit(rejected_topic).alias("topic"), envelope_key.alias("key"), F.col("payload").cast("binary").alias("value")))

        # One projection routes each conformed row: valid → feedback.raw (Avro), invalid →
        # feedback.rejected (JSON). CaseWhen evaluates only the chosen branch, so rows with
        # null required values never reach the Avro encoder.
        invalid = invalid_row_reason()
        columns = [F.col(c) for c in conformed.columns]
        envelope = F.to_json(F.struct(
            F.lit(self.ctx.usecase).alias("usecase"), F.lit(self.ctx.variant).alias("variant"),
            F.concat(F.lit("output row breaks the Feedback contract: "), invalid).alias("reason"),
            F.to_json(F.struct(*columns)).alias("row"),
        )).cast("binary")
        routed = conformed.select(
            F.when(invalid.isNull(), F.lit(out_topic)).otherwise(F.lit(rejected_topic)).alias("topic"),
            F.when(invalid.isNull(), F.col("customer_id").cast("binary")).otherwise(envelope_key).alias("key"),
            F.when(invalid.isNull(), feedback_value(columns, self.feedback_schema_id, self.feedback_schema)).otherwise(envelope).alias("value"),
        )
        everything = routed
        for part in parts:
            everything = everything.unionByName(part)
        # Counting first (on the cached rows) lets an empty batch skip the write entirely.
        everything = everything.persist()
        cached.append(everything)
        counts = {row["topic"]: row["count"] for row in everything.groupBy("topic").count().collect()}
        if counts:
            (
                everything.write.format("kafka").option("kafka.bootstrap.servers", self.args.brokers)
                .options(**PRODUCER_OPTIONS)
                .save()
            )
        for frame in cached:
            frame.unpersist()
        return int(counts.get(out_topic, 0)), int(counts.get(rejected_topic, 0))


def make_listener(publisher: ProgressPublisher, sink: BatchSink, input_topic: str) -> Any:
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressListener(StreamingQueryListener):
        def __init__(self) -> None:
            self.last_published = -1

        def onQueryStarted(self, event: Any) -> None:
            publisher.publish("started", run_id=str(event.runId))

        def onQueryProgress(self, event: Any) -> None:
            progress = event.progress
            source = progress.sources[0] if progress.sources else None
            stats = sink.stats.pop(progress.batchId, {})
            publisher.publish(
                "progress",
                batch_id=progress.batchId,
                start_offsets=end_offsets(source.startOffset if source else None, input_topic),
                end_offsets=end_offsets(source.endOffset if source else None, input_topic),
                rows_in=progress.numInputRows,
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
    publisher = ProgressPublisher(args.brokers, args.progress_topic, job_id, {"usecase": manifest.name, "variant": args.variant, "version": version}, key=getattr(args, "progress_key", None))
    sink = BatchSink(args, job, ctx, feedback_schema, feedback_schema_id, manifest.stateful)
    listener = make_listener(publisher, sink, args.input_topic)
    spark.streams.addListener(listener)

    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.brokers)
        .option("subscribe", args.input_topic)
        .option("startingOffsets", args.starting_offsets)
        .option("maxOffsetsPerTrigger", args.max_records_per_batch or manifest.max_records_per_batch)
        # Loud, never silent: offsets that point at data Kafka no longer has (aged out while the
        # job was stopped) fail the job instead of skipping. Forged or out-of-range offsets
        # cannot get here: the orchestrator commits only signed progress within the partition.
        .option("failOnDataLoss", "true")
        .load()
    )
    trigger_ms = manifest.trigger_ms
    if args.trigger:
        from .manifest import parse_duration_ms

        trigger_ms = parse_duration_ms(args.trigger) or trigger_ms
    if manifest.stateful:
        # Stateful: the use case transforms the stream itself (windows), so its state lives
        # in the checkpoint, which survives restarts.
        checkpoint = os.path.join(args.checkpoint_root, manifest.name, args.variant)
    else:
        # Stateless: no checkpoint survives the run; the orchestrator hands over offsets.
        # Within the run it does: a restart after a new writer id runs the failed batch again.
        checkpoint = tempfile.mkdtemp(prefix=f"diamond-{job_id}-")

    def start_query() -> Any:
        decoded = decode_records(raw, writers.by_id, reader, writers.unregistered)
        if manifest.stateful:
            stream = stateful_feedback(decoded.where(F.col("record").isNotNull()).select("record.*"), manifest, job, ctx)
        else:
            stream = decoded
        return (
            stream.writeStream.foreachBatch(sink)
            .option("checkpointLocation", checkpoint)
            .outputMode("append")
            .trigger(processingTime=f"{trigger_ms} milliseconds")
            .queryName(job_id)
            .start()
        )

    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("stop requested; finishing the current batch", extra={"fields": {**fields, "signal": signum}})
        stop_requested.set()

    def run_until_stopped_or_failed(query: Any) -> Any | None:
        """None after a requested stop; the failed query otherwise."""
        while query.isActive:
            try:
                query.awaitTermination(0.5)
            except Exception:  # the query failed; its exception is read below
                break
            if stop_requested.is_set() and not sink.in_batch.is_set():
                # Let the listener report the last finished batch before stopping.
                deadline = time.monotonic() + 10
                while listener.last_published < sink.last_finished and time.monotonic() < deadline:
                    time.sleep(0.05)
                query.stop()
        return None if query.exception() is None or stop_requested.is_set() else query

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while True:
            failed = run_until_stopped_or_failed(start_query())
            if failed is None:
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
    publisher.publish("stopped", last_batch_id=sink.last_finished)
    publisher.flush()
    spark.stop()
    log.info("stopped", extra={"fields": {**fields, "last_batch_id": sink.last_finished}})
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
    args = parse_args(argv)
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    args.progress_key = read_progress_key(args.progress_key_file)  # before any use case code runs
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
