"""What a stateful use case's transform receives: its records, each (customer_id, record_id)
once, with the event-time watermark already set.

A client that retries after a 503 can land the same record twice. Stateless feedback absorbs
that (the feedback_id is the same), but a sum over a window would count it twice, so the SDK
drops repeated (customer_id, record_id) pairs before the user's code sees them. Spark keeps
the pairs it has seen only within the watermark (dropDuplicatesWithinWatermark), which
needs the watermark defined before the dedup, and Spark refuses a second watermark after
it: the manifest's `params.watermark` is applied here, and the transform must not call
withWatermark itself. `input_where` picks the records the job needs before the watermark
sees them, so records the use case ignores (e.g. a login dated next month) cannot move it.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..context import Context
from .manifest import Manifest
from .user_transform import transform_feedback
from .usercode import UserJob

DEDUP_KEY = ["customer_id", "record_id"]


def stateful_records(records: DataFrame, manifest: Manifest, streaming: bool) -> DataFrame:
    """`records` filtered by `input_where`, watermarked on event_time and without repeated
    record ids. A batch DataFrame (the test harness, the deploy check) has no watermark:
    there the duplicates are dropped over the whole input."""
    if manifest.input_where:
        records = records.where(F.expr(manifest.input_where))
    if not streaming:
        return records.dropDuplicates(DEDUP_KEY)
    return records.withWatermark("event_time", manifest.watermark).dropDuplicatesWithinWatermark(DEDUP_KEY)


def stateful_feedback(records: DataFrame, manifest: Manifest, job: UserJob, ctx: Context) -> DataFrame:
    """The conformed Feedback stream of a stateful use case over a streaming `records` frame:
    the one query the runner (records from Kafka) and the test harness (records from files,
    one micro-batch per step) both run, so both drop late rows and close windows alike."""
    return transform_feedback(job, stateful_records(records, manifest, streaming=True), ctx, manifest.folder)
