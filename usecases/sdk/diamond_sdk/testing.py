"""Test a use case on plain dicts or its sample.jsonl, on a local SparkSession, without Kafka.

    from diamond_sdk.testing import run_usecase

    def test_flags_a_missing_amount():
        result = run_usecase("usecases/data_quality", [{"record_id": "r1", "customer_id": "c1", ...}])
        assert [row["kind"] for row in result.feedback] == ["missing_amount"]

The rows are exactly what the job would write to feedback.raw (feedback_id, version, … filled
in), so a test sees the real contract.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ._runtime.conform import conform, invalid_row_reason
from ._runtime.local_spark import local_spark_session
from ._runtime.manifest import load_manifest
from ._runtime.stateful import stateful_records
from ._runtime.records import apply_feedback_function, feedback_items, read_jsonl, records_dataframe, rejected_records
from ._runtime.user_transform import transform_feedback
from ._runtime.usercode import load_user_job
from ._runtime.version import code_version
from .context import Context

__all__ = ["DryRun", "local_spark", "read_jsonl", "run_usecase"]

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


def run_usecase(folder: str | Path, records: Iterable[dict[str, Any]] | None = None, variant: str = "A") -> DryRun:
    """Runs one variant over `records` (default: the folder's sample.jsonl) and returns its output."""
    manifest = load_manifest(folder)
    job = load_user_job(manifest.name, variant, manifest.variant_file(variant))
    ctx = Context(manifest.name, variant, code_version(manifest.folder), manifest.params)
    spark = local_spark()
    data = list(records) if records is not None else read_jsonl(manifest.folder / "sample.jsonl")
    frame = records_dataframe(spark, data)
    if manifest.stateful:
        # What the job's transform gets: the manifest's records, each record id once.
        frame = stateful_records(frame, manifest, streaming=False)
    rejected: list[dict[str, Any]] = []
    if job.kind == "transform":
        conformed = transform_feedback(job, frame, ctx, manifest.folder)
    else:
        results = apply_feedback_function(frame, job.function, ctx, job.takes_context).cache()
        conformed = conform(feedback_items(results), ctx)
        rejected = [json.loads(row.payload) for row in rejected_records(results).collect()]
    checked = conformed.withColumn("_invalid", invalid_row_reason())
    rows = [row.asDict(recursive=True) for row in checked.collect()]
    feedback = []
    for row in rows:
        reason = row.pop("_invalid")
        if reason is None:
            feedback.append(row)
        else:
            rejected.append({"usecase": manifest.name, "variant": variant, "reason": f"output row breaks the Feedback contract: {reason}", "row": row})
    feedback.sort(key=lambda r: (r["customer_id"], r["kind"], r["feedback_id"]))
    return DryRun(feedback=feedback, rejected=rejected)


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
