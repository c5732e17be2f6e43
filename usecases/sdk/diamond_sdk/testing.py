"""Test a use case on plain dicts or its sample.jsonl, on a local SparkSession, without Kafka.

    from diamond_sdk.testing import StreamingHarness, run_usecase

    def test_flags_a_missing_amount():
        result = run_usecase("usecases/data_quality", [{"record_id": "r1", "customer_id": "c1", ...}])
        assert [row["kind"] for row in result.feedback] == ["missing_amount"]

    def test_a_window_closes_once_the_watermark_passes_it():
        with StreamingHarness("usecases/spending_spike") as job:
            assert job.feed([purchase_at_10_00]).feedback == []       # the window is still open
            assert len(job.feed([purchase_at_12_00]).feedback) == 2   # the watermark passed it

The records go through the streaming query the job runs (the same runtime code): each step
is one micro-batch read from a file stream, and the harness waits until Spark has processed
it (and the no-data batch that follows when the watermark moved). So a stateful use case
drops records older than the watermark and emits a window once, after the watermark passed
its end, exactly as the job does; a window still open after the last step is not emitted.
The rows are exactly what the job would write to feedback.raw (feedback_id, version, … filled
in), so a test sees the real contract.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from pyspark.sql import types as T

from ._runtime.conform import conform, invalid_row_reason
from ._runtime.local_spark import local_spark_session
from ._runtime.manifest import load_manifest
from ._runtime.stateful import stateful_feedback
from ._runtime.records import RECORD_SCHEMA, TIMESTAMP_FIELDS, apply_feedback_function, feedback_items, read_jsonl, rejected_records, to_millis
from ._runtime.user_transform import transform_feedback
from ._runtime.usercode import load_user_job
from ._runtime.version import code_version
from .context import Context

__all__ = ["DryRun", "StreamingHarness", "local_spark", "read_jsonl", "run_usecase"]

_session: Any = None


def local_spark() -> Any:
    """One small local SparkSession per test process (starting one takes seconds)."""
    global _session
    if _session is None:
        # The Avro and Kafka connector jars; `diamond usecase test` and npm test set this.
        _session = local_spark_session("diamond-usecase-test", 2, {"spark.jars": os.environ.get("DIAMOND_SPARK_JARS", "")})
    return _session


@dataclass
class DryRun:
    feedback: list[dict[str, Any]]
    """Rows the job would write to feedback.raw, sorted by (customer_id, kind, feedback_id)."""
    rejected: list[dict[str, Any]]
    """Envelopes the job would write to feedback.rejected (records whose feedback() raised,
    rows that break the contract)."""


def _sorted(feedback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(feedback, key=lambda r: (r["customer_id"], r["kind"], r["feedback_id"]))


# The file source reads times as epoch millis (any form records_dataframe takes is turned into them).
_FILE_SCHEMA = T.StructType([T.StructField(f.name, T.LongType(), f.nullable) if f.name in TIMESTAMP_FIELDS else f for f in RECORD_SCHEMA.fields])
_query_ids = itertools.count()  # each harness's query needs its own name


def _file_line(record: dict[str, Any]) -> str:
    row = dict(record)
    for name in TIMESTAMP_FIELDS:
        row[name] = to_millis(row.get(name, 0))
    row.setdefault("attributes", {})
    return json.dumps({field.name: row.get(field.name) for field in RECORD_SCHEMA.fields})


class StreamingHarness:
    """One variant's streaming query on the local SparkSession, fed step by step.

    `feed(records)` writes the records as one file of a file stream source (one file, one
    micro-batch) and blocks until the query has processed it; it returns what that step
    made the job write. `rows()` is everything written since the start (sorted as
    DryRun.feedback is), repeated rows included: a window emitted twice would show twice. Close it (or use `with`) to
    stop the query and remove its files.
    """

    def __init__(self, folder: str | Path, variant: str = "A"):
        self.manifest = manifest = load_manifest(folder)
        self.variant = variant
        self.job = load_user_job(manifest.name, variant, manifest.variant_file(variant))
        self.ctx = Context(manifest.name, variant, code_version(manifest.folder), manifest.params)
        self._dir = Path(tempfile.mkdtemp(prefix=f"diamond-harness-{manifest.name}-"))
        self._input = self._dir / "input"
        self._staging = self._dir / "staging"
        self._input.mkdir()
        self._staging.mkdir()
        self._lock = threading.Lock()
        self._feedback: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        self._error: BaseException | None = None
        self._steps = 0
        try:
            self._query = self._start(local_spark())
        except BaseException:  # e.g. the transform raised while the query was defined: leave no files behind
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def _start(self, spark: Any) -> Any:
        from pyspark.sql import functions as F

        manifest = self.manifest
        raw = (
            spark.readStream.schema(_FILE_SCHEMA)
            .option("maxFilesPerTrigger", 1)  # one step, one micro-batch, as the job's batches
            .json(str(self._input))
        )
        records = raw.select(*[
            F.timestamp_millis(field.name).alias(field.name) if field.name in TIMESTAMP_FIELDS else F.col(field.name)
            for field in RECORD_SCHEMA.fields
        ])
        # Stateful: the job's own query (stateful_feedback). Stateless: the job runs the use
        # case on each micro-batch in foreachBatch, and so does the harness.
        stream = stateful_feedback(records, manifest, self.job, self.ctx) if manifest.stateful else records
        return (
            stream.writeStream.foreachBatch(self._collect)
            .option("checkpointLocation", str(self._dir / "checkpoint"))
            .outputMode("append")
            .trigger(processingTime="100 milliseconds")
            .queryName(f"harness_{manifest.name}_{self.variant}_{next(_query_ids)}")
            .start()
        )

    def _collect(self, batch: Any, _batch_id: int) -> None:
        try:
            feedback, rejected = self._batch_output(batch)
        except BaseException as error:  # re-raised by feed() as it is (UserCodeError, OutputContractError…)
            self._error = error
            raise
        with self._lock:
            self._feedback.extend(feedback)
            self._rejected.extend(rejected)

    def _batch_output(self, batch: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rejected: list[dict[str, Any]] = []
        if self.manifest.stateful:
            conformed = batch
        elif self.job.kind == "transform":
            conformed = transform_feedback(self.job, batch, self.ctx, self.manifest.folder)
        else:
            results = apply_feedback_function(batch, self.job.function, self.ctx, self.job.takes_context).cache()
            conformed = conform(feedback_items(results), self.ctx)
            rejected = [json.loads(row.payload) for row in rejected_records(results).collect()]
        feedback = []
        for row in conformed.withColumn("_invalid", invalid_row_reason()).collect():
            values = row.asDict(recursive=True)
            reason = values.pop("_invalid")
            if reason is None:
                feedback.append(values)
            else:
                rejected.append({"usecase": self.manifest.name, "variant": self.variant, "reason": f"output row breaks the Feedback contract: {reason}", "row": values})
        return feedback, rejected

    def feed(self, records: Iterable[dict[str, Any]]) -> DryRun:
        """Sends `records` as the next micro-batch and returns the rows it made the job write
        (for a stateful use case: the windows the watermark closed after it)."""
        lines = [_file_line(record) for record in records]
        with self._lock:
            before_feedback, before_rejected = len(self._feedback), len(self._rejected)
        if lines:
            self._steps += 1
            name = f"step-{self._steps:05d}.json"
            # Written aside, then moved in: the source must never see half a file.
            (self._staging / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
            os.replace(self._staging / name, self._input / name)
        try:
            self._query.processAllAvailable()
        except Exception as error:
            self.close()
            if self._error is not None:
                raise self._error from error
            raise
        with self._lock:
            return DryRun(feedback=_sorted(self._feedback[before_feedback:]), rejected=self._rejected[before_rejected:])

    def rows(self) -> DryRun:
        """Everything the job wrote since it started, each emitted row as often as it was emitted."""
        with self._lock:
            return DryRun(feedback=_sorted(self._feedback), rejected=list(self._rejected))

    def close(self) -> None:
        if self._query.isActive:
            self._query.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "StreamingHarness":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def run_usecase(folder: str | Path, records: Iterable[dict[str, Any]] | None = None, variant: str = "A",
                steps: Sequence[Iterable[dict[str, Any]]] | None = None) -> DryRun:
    """Runs one variant's streaming query over `records` as one micro-batch (default: the
    folder's sample.jsonl), or over `steps`, one micro-batch each, in order, and returns
    everything it wrote."""
    if records is not None and steps is not None:
        raise ValueError("pass records (one micro-batch) or steps (one micro-batch each), not both")
    if steps is None:
        steps = [list(records) if records is not None else read_jsonl(load_manifest(folder).folder / "sample.jsonl")]
    with StreamingHarness(folder, variant) as harness:
        for step in steps:
            harness.feed(step)
        return harness.rows()


def main(argv: list[str] | None = None) -> int:
    """`python -m diamond_sdk.testing <folder> [--variant B] [--json]`: the dry run of `diamond usecase test`."""
    import argparse

    parser = argparse.ArgumentParser(prog="diamond usecase test")
    parser.add_argument("folder")
    parser.add_argument("--variant", default=None, help="default: every variant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.folder)
    variants = [args.variant] if args.variant else sorted(manifest.variants)
    summary = {}
    for variant in variants:
        result = run_usecase(args.folder, variant=variant)
        summary[variant] = {"feedback": len(result.feedback), "rejected": len(result.rejected)}
        if args.json:
            for row in result.feedback:
                print(json.dumps({"variant": variant, **row}, default=str))
            continue
        print(f"── {manifest.name} variant {variant}: {len(result.feedback)} feedback rows, {len(result.rejected)} rejected, from {manifest.folder / 'sample.jsonl'}")
        for row in result.feedback:
            score = "" if row["score"] is None else f" score={row['score']:.2f}"
            print(f"  {row['customer_id']:<12} {row['severity']:<8} {row['kind']:<22} {row['message']}{score}")
        for envelope in result.rejected:
            print(f"  REJECTED {envelope.get('record_id', '')} {envelope['reason']}")
    if not args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
