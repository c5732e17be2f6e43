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

Loud by default: when a per-record `feedback()` raises on a record, `feed()` and
`run_usecase()` raise a `RecordError` naming the user's file, line, exception and the record
(the job would quietly send that record to feedback.rejected). A test about rejections asks
for them: `run_usecase(folder, records, expect_rejections=True).rejected`.
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
from ._runtime.function_runs import Runs
from ._runtime.history import register_views, write_history
from ._runtime.local_spark import local_spark_session
from ._runtime.manifest import load_manifest
from ._runtime.record_failure import RecordError, describe, report_failures
from ._runtime.stateful import stateful_feedback
from ._runtime.records import RECORD_SCHEMA, TIMESTAMP_FIELDS, apply_feedback_function, feedback_items, read_jsonl, rejected_records, to_millis
from ._runtime.user_transform import transform_feedback
from ._runtime.usercode import UserCodeError, load_user_job
from ._runtime.version import code_version
from .context import Context

__all__ = ["DryRun", "FunctionFailed", "RecordError", "StreamingHarness", "local_spark", "read_jsonl", "run_function", "run_usecase", "write_history"]

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
    """Envelopes the job would write to feedback.rejected: rows that break the contract and,
    with expect_rejections=True, the records whose feedback() raised (their `reason` is
    "feedback() raised"; `exception`, `message`, `file`, `line`, `record` say what and where)."""


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

    A record the per-record `feedback()` raised on makes `feed()` raise RecordError (after
    closing the harness), unless `expect_rejections=True`: then it is in `rejected`.
    """

    def __init__(self, folder: str | Path, variant: str = "A", expect_rejections: bool = False):
        self.manifest = manifest = load_manifest(folder)
        self.variant = variant
        self.expect_rejections = expect_rejections
        self._failures_expected = expect_rejections  # how they are reported; the dry run's are not a test's choice
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
        self._failures: list[dict[str, Any]] = []  # records feedback() raised on (RecordFailure envelopes)
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
            feedback, failures, rejected = self._batch_output(batch)
        except BaseException as error:  # re-raised by feed() as it is (UserCodeError, OutputContractError…)
            self._error = error
            raise
        with self._lock:
            self._feedback.extend(feedback)
            self._failures.extend(failures)
            self._rejected.extend(failures + rejected)

    def _batch_output(self, batch: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """(feedback rows, records feedback() raised on, rows that break the contract)."""
        failures: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        if self.manifest.stateful:
            conformed = batch
        elif self.job.kind == "transform":
            conformed = transform_feedback(self.job, batch, self.ctx, self.manifest.folder)
        else:
            results = apply_feedback_function(batch, self.job.function, self.ctx, self.job.takes_context).cache()
            conformed = conform(feedback_items(results), self.ctx)
            failures = [json.loads(row.payload) for row in rejected_records(results).collect()]
        feedback = []
        for row in conformed.withColumn("_invalid", invalid_row_reason()).collect():
            values = row.asDict(recursive=True)
            reason = values.pop("_invalid")
            if reason is None:
                feedback.append(values)
            else:
                rejected.append({"usecase": self.manifest.name, "variant": self.variant, "reason": f"output row breaks the Feedback contract: {reason}", "row": values})
        return feedback, failures, rejected

    def feed(self, records: Iterable[dict[str, Any]]) -> DryRun:
        """Sends `records` as the next micro-batch and returns the rows it made the job write
        (for a stateful use case: the windows the watermark closed after it)."""
        __tracebackhide__ = True  # pytest shows the user's error, not the harness's frames
        lines = [_file_line(record) for record in records]
        with self._lock:
            before_feedback, before_rejected, before_failures = len(self._feedback), len(self._rejected), len(self._failures)
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
            failures = self._failures[before_failures:]
            step = DryRun(feedback=_sorted(self._feedback[before_feedback:]), rejected=self._rejected[before_rejected:])
        # Without the reason (the envelope's, not the contract's): the RecordFailure itself.
        failures = [{key: value for key, value in envelope.items() if key != "reason"} for envelope in failures]
        report_failures(failures, expected=self._failures_expected)
        if failures and not self.expect_rejections:
            self.close()
            raise RecordError(failures)
        return step

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
                steps: Sequence[Iterable[dict[str, Any]]] | None = None, expect_rejections: bool = False) -> DryRun:
    """Runs one variant's streaming query over `records` as one micro-batch (default: the
    folder's sample.jsonl), or over `steps`, one micro-batch each, in order, and returns
    everything it wrote.

    A record the per-record `feedback()` raises on raises RecordError (the user's file, line,
    exception and the record); with `expect_rejections=True` such records are returned in
    `rejected` instead, as the running job would write them to feedback.rejected."""
    __tracebackhide__ = True
    if records is not None and steps is not None:
        raise ValueError("pass records (one micro-batch) or steps (one micro-batch each), not both")
    if steps is None:
        steps = [list(records) if records is not None else read_jsonl(load_manifest(folder).folder / "sample.jsonl")]
    with StreamingHarness(folder, variant, expect_rejections=expect_rejections) as harness:
        for step in steps:
            harness.feed(step)
        return harness.rows()


class FunctionFailed(AssertionError):
    """A function run did not finish: `error` is the run's error (code bad_result or platform)."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


def run_function(folder: str | Path, function: str, params: dict[str, Any] | None = None, *,
                 records: Iterable[dict[str, Any]] = (), feedback: Iterable[dict[str, Any]] = (), max_rows: int | None = None) -> Any:
    """Runs `function` of the use case in `folder` the way a function session runs it, over a
    fresh history holding `records` and `feedback` (plain dicts, as write_history takes them).
    `params` are given as the API takes them (timestamps ISO strings or spans such as "7d",
    durations in ms); defaults are filled in.

    Returns what the function returned as JSON values (a dict or list), or, for a DataFrame,
    its rows as dicts. A raise in the function raises UserCodeError with its file and line;
    any other failure raises FunctionFailed."""
    __tracebackhide__ = True
    manifest = load_manifest(folder)
    spark = local_spark()
    history = tempfile.mkdtemp(prefix=f"diamond-history-{manifest.name}-")
    try:
        write_history(spark, history, records=records, feedback=feedback)
        register_views(spark, history)
        answer = Runs(spark, [manifest.folder.parent]).execute({
            "run_id": f"test-{next(_query_ids)}", "usecase": manifest.name, "folder": str(manifest.folder), "function": function,
            "params": params or {}, "max_rows": max_rows,
        })
    finally:
        shutil.rmtree(history, ignore_errors=True)
    if answer["state"] == "finished":
        result = answer["result"]
        if result["kind"] == "value":
            return result["value"]
        names = [column["name"] for column in result["columns"]]
        return [dict(zip(names, row)) for row in result["rows"]]
    error = answer.get("error", {"code": answer["state"], "message": answer["state"]})
    if error["code"] == "user_code":
        raise UserCodeError(manifest.name, error.get("file"), error.get("line"), error.get("function"), error["message"])
    raise FunctionFailed(error)


def _dry_run(folder: Path, variant: str) -> DryRun:
    # What the job would do with sample.jsonl: records feedback() raised on are listed, not
    # raised, and reported to $DIAMOND_RECORD_FAILURES as failures (no test expected them).
    with StreamingHarness(folder, variant, expect_rejections=True) as harness:
        harness._failures_expected = False
        harness.feed(read_jsonl(folder / "sample.jsonl"))
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
        result = _dry_run(manifest.folder, variant)
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
            where = f" at {describe(envelope)}" if "exception" in envelope else ""
            print(f"  REJECTED {envelope.get('record_id', '')} {envelope['reason']}{where}")
    if not args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
