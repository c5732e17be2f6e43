"""Conforming a use case's output to the shared `Feedback` contract.

A use case returns rows with the columns it knows (customer_id, kind, severity, message,
event_time, and optionally score, details, record_ids, key). The SDK fills the rest:
usecase, variant, version, a deterministic feedback_id, produced_at. A missing or mistyped
column is an error naming the use case and the column.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..context import Context
from .clock import wall_clock

SEVERITIES = ("info", "warning", "critical")

# column → (accepted Spark types, what to write in the error)
REQUIRED = {
    "customer_id": ((T.StringType,), "string"),
    "kind": ((T.StringType,), "string"),
    "severity": ((T.StringType,), "string: info, warning or critical"),
    "message": ((T.StringType,), "string"),
    "event_time": ((T.TimestampType, T.TimestampNTZType, T.LongType), "timestamp (or epoch millis as long)"),
}
OPTIONAL = {
    "score": ((T.DoubleType, T.FloatType, T.IntegerType, T.LongType, T.DecimalType, T.ShortType), "number"),
    "details": ((T.MapType,), "map<string,string>"),
    "record_ids": ((T.ArrayType,), "array<string>"),
    "key": ((T.StringType,), "string"),
}

# The contract's field order (shared/schemas/feedback.avsc).
FEEDBACK_COLUMNS = (
    "feedback_id", "customer_id", "usecase", "variant", "version", "kind", "severity", "score",
    "message", "details", "record_ids", "event_time", "produced_at",
)


class OutputContractError(ValueError):
    """The use case's output does not fit the Feedback contract."""

    def __init__(self, usecase: str, column: str, problem: str):
        self.usecase = usecase
        self.column = column
        self.problem = problem
        super().__init__(f"use case {usecase!r} output column {column!r} {problem}")


def check_output_schema(df: DataFrame, usecase: str) -> None:
    fields = {field.name: field.dataType for field in df.schema.fields}
    for column, (types, expected) in REQUIRED.items():
        if column not in fields:
            raise OutputContractError(usecase, column, f"is missing; return it as {expected}")
        if not isinstance(fields[column], types):
            raise OutputContractError(usecase, column, f"is {fields[column].simpleString()}; expected {expected}")
    for column, (types, expected) in OPTIONAL.items():
        if column in fields and not isinstance(fields[column], types):
            raise OutputContractError(usecase, column, f"is {fields[column].simpleString()}; expected {expected}")
    if "details" in fields:
        details = fields["details"]
        if not (isinstance(details.keyType, T.StringType) and isinstance(details.valueType, T.StringType)):
            raise OutputContractError(usecase, "details", f"is {details.simpleString()}; expected map<string,string> (cast values to string)")
    if "record_ids" in fields and not isinstance(fields["record_ids"].elementType, T.StringType):
        raise OutputContractError(usecase, "record_ids", f"is {fields['record_ids'].simpleString()}; expected array<string>")


def feedback_id(usecase: Column, variant: Column, key: Column, kind: Column) -> Column:
    """sha256(usecase | variant | key | kind): the same finding always gets the same id,
    so a replay or an upgrade overlap rewrites the row instead of adding one."""
    return F.sha2(F.concat_ws("|", usecase, variant, key, kind), 256)


def conform(df: DataFrame, ctx: Context) -> DataFrame:
    """Returns `df` as Feedback rows in contract order. Raises OutputContractError."""
    check_output_schema(df, ctx.usecase)
    columns = set(df.columns)
    event_time = F.col("event_time")
    if isinstance(df.schema["event_time"].dataType, T.LongType):
        event_time = F.timestamp_millis(event_time)
    record_ids = F.col("record_ids") if "record_ids" in columns else F.array().cast("array<string>")
    # Without an explicit key, the sorted record ids identify what the feedback is about.
    key = F.col("key") if "key" in columns else F.array_join(F.array_sort(record_ids), ",")
    usecase, variant = F.lit(ctx.usecase), F.lit(ctx.variant)
    return df.select(
        feedback_id(usecase, variant, F.coalesce(key, F.lit("")), F.col("kind")).alias("feedback_id"),
        F.col("customer_id"),
        usecase.alias("usecase"),
        variant.alias("variant"),
        F.lit(ctx.version).alias("version"),
        F.col("kind"),
        F.lower(F.col("severity")).alias("severity"),
        (F.col("score").cast("double") if "score" in columns else F.lit(None).cast("double")).alias("score"),
        F.col("message"),
        (F.col("details") if "details" in columns else F.create_map().cast("map<string,string>")).alias("details"),
        record_ids.alias("record_ids"),
        event_time.cast("timestamp").alias("event_time"),
        wall_clock().alias("produced_at"),  # not current_timestamp(): a compile per batch (clock.py)
    )


def invalid_row_reason() -> Column:
    """Why a conformed row cannot be written (null when it can): a required value is null
    or the severity is not one of the contract's."""
    checks = [F.when(F.col(c).isNull(), F.lit(f"{c} is null")) for c in ("customer_id", "kind", "severity", "message", "event_time")]
    checks.append(F.when(~F.col("severity").isin(*SEVERITIES), F.concat(F.lit("severity is "), F.col("severity"), F.lit(f"; expected one of {', '.join(SEVERITIES)}"))))
    return F.coalesce(*checks)
