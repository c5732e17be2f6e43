"""Confluent-framed Avro in Spark: decode `records.normalized`, frame `feedback.raw` values.

Decoding splits each value into its schema id and Avro body with SQL functions, and decodes
every body with its own writer schema resolved against one reader schema (the contract),
so all registered writer versions yield the same columns.
"""
from __future__ import annotations

import json
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

from .wire import header


def framed(value: Column) -> tuple[Column, Column, Column]:
    """(magic byte, schema id, Avro body) of a Confluent-framed binary column."""
    magic = F.conv(F.hex(F.substring(value, 1, 1)), 16, 10).cast("int")
    schema_id = F.conv(F.hex(F.substring(value, 2, 4)), 16, 10).cast("long")
    body = F.substring(value, 6, 2_147_483_647)
    return magic, schema_id, body


def decode_column(value: Column, writer_schemas: dict[int, dict[str, Any]], reader_schema: dict[str, Any]) -> Column:
    """The decoded record struct, or null when the frame, the id or the body is bad."""
    magic, schema_id, body = framed(value)
    reader = json.dumps(reader_schema)
    decoded: Column | None = None
    for writer_id, writer in sorted(writer_schemas.items()):
        # PERMISSIVE: a corrupt body becomes null instead of failing the batch.
        branch = from_avro(body, json.dumps(writer), {"mode": "PERMISSIVE", "avroSchema": reader})
        condition = (magic == 0) & (schema_id == writer_id)
        decoded = F.when(condition, branch) if decoded is None else decoded.when(condition, branch)
    return decoded if decoded is not None else F.lit(None)


def decode_records(raw: DataFrame, writer_schemas: dict[int, dict[str, Any]], reader_schema: dict[str, Any]) -> DataFrame:
    """Kafka rows → rows with `record` (struct or null), plus schema_id and the Kafka coordinates."""
    _, schema_id, _ = framed(F.col("value"))
    return raw.select(
        decode_column(F.col("value"), writer_schemas, reader_schema).alias("record"),
        schema_id.alias("schema_id"),
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
    )


def feedback_value(columns: list[Column], schema_id: int, schema: dict[str, Any]) -> Column:
    """The Confluent-framed Avro value of a Feedback row given its columns in contract order."""
    return F.concat(F.lit(header(schema_id)), to_avro(F.struct(*columns), json.dumps(schema)))

