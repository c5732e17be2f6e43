"""What a job writes, as one DataFrame of Kafka rows (topic, key, value): valid feedback to
`feedback.raw` as Confluent-framed Avro, and everything that cannot be feedback to
`feedback.rejected` as a JSON envelope with its reason. One frame means one Kafka write,
and its per-topic counts ride on that write as observed metrics (no count job).

Used by both ways a job runs: the direct streaming query (the frame is the query) and the
foreachBatch sink (the frame is built per batch).
"""
from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ..context import Context
from .codec import feedback_value
from .conform import invalid_row_reason

# Names of the observed metrics (DataFrame.observe) the runner reads back.
INPUT_METRICS = "diamond_input"
OUTPUT_METRICS = "diamond_output"


def _envelope_key(ctx: Context) -> Column:
    return F.lit(ctx.usecase).cast("binary")


def rejected_payloads(payloads: DataFrame, ctx: Context, rejected_topic: str) -> DataFrame:
    """Kafka rows for a frame of ready JSON envelopes (a `payload` string column)."""
    return payloads.select(F.lit(rejected_topic).alias("topic"), _envelope_key(ctx).alias("key"), F.col("payload").cast("binary").alias("value"))


def undecodable_rows(decoded: DataFrame, ctx: Context, rejected_topic: str) -> DataFrame:
    """Kafka rows for the messages that did not decode (see codec.decode_records): their
    reason, coordinates and the raw bytes, so nothing is lost."""
    payloads = decoded.where(F.col("record").isNull()).select(F.to_json(F.struct(
        F.lit(ctx.usecase).alias("usecase"), F.lit(ctx.variant).alias("variant"),
        "reason",
        "topic", "partition", "offset", F.base64("value").alias("value_base64"),
    )).alias("payload"))
    return rejected_payloads(payloads, ctx, rejected_topic)


def routed_feedback(conformed: DataFrame, ctx: Context, out_topic: str, rejected_topic: str, schema_id: int, schema: dict[str, Any]) -> DataFrame:
    """Kafka rows for conformed Feedback rows. One projection routes each row: valid →
    feedback.raw (Avro), invalid → feedback.rejected (JSON). CaseWhen evaluates only the
    chosen branch, so rows with null required values never reach the Avro encoder."""
    invalid = invalid_row_reason()
    columns = [F.col(c) for c in conformed.columns]
    envelope = F.to_json(F.struct(
        F.lit(ctx.usecase).alias("usecase"), F.lit(ctx.variant).alias("variant"),
        F.concat(F.lit("output row breaks the Feedback contract: "), invalid).alias("reason"),
        F.to_json(F.struct(*columns)).alias("row"),
    )).cast("binary")
    return conformed.select(
        F.when(invalid.isNull(), F.lit(out_topic)).otherwise(F.lit(rejected_topic)).alias("topic"),
        F.when(invalid.isNull(), F.col("customer_id").cast("binary")).otherwise(_envelope_key(ctx)).alias("key"),
        F.when(invalid.isNull(), feedback_value(columns, schema_id, schema)).otherwise(envelope).alias("value"),
    )


def output_counts(out_topic: str, rejected_topic: str) -> list[Column]:
    """Observed on the written frame: rows to each topic."""
    return [
        F.sum(F.when(F.col("topic") == out_topic, 1).otherwise(0)).alias("out"),
        F.sum(F.when(F.col("topic") == rejected_topic, 1).otherwise(0)).alias("rejected"),
    ]


def input_count() -> Column:
    """Observed on the branch that reads every input row before a filter. Spark's own
    numInputRows counts each read of the source, and the written frame reads it twice
    (decoded and undecodable branches)."""
    return F.count(F.lit(1)).alias("rows")
