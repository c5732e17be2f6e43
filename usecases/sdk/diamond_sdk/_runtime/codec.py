"""Confluent-framed Avro in Spark: decode `records.normalized`, frame `feedback.raw` values.

Decoding splits each value into its schema id and Avro body with SQL functions, and decodes
every body with its own writer schema resolved against one reader schema (the contract),
so all registered writer versions yield the same columns. A writer id the decoder does not
know yet stops the batch instead of nulling it (decode_column).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

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


UNKNOWN_SCHEMA_ID_MARKER = "DIAMOND_UNKNOWN_SCHEMA_ID"
_UNKNOWN_ID = re.compile(UNKNOWN_SCHEMA_ID_MARKER + r"\[(\d+)\]")


def unknown_schema_ids(error_text: str) -> set[int]:
    """The schema ids a failed batch met but had no decoder for (see decode_column)."""
    return {int(found) for found in _UNKNOWN_ID.findall(error_text)}


def decode_column(value: Column, writer_schemas: dict[int, dict[str, Any]], reader_schema: dict[str, Any], unregistered_ids: Iterable[int] = ()) -> Column:
    """The decoded record struct, or null when the frame is bad, the body is corrupt or the
    id is one of `unregistered_ids` (the registry answered 404 for it).

    A framed message with any other id fails the batch with UNKNOWN_SCHEMA_ID_MARKER[id] in
    the error, before the batch's offsets or any state are committed (rows of the batch's
    other partitions may already be on the output topic; the rerun writes them again with
    the same feedback ids, which the downstream writes once): the id may
    be a writer version registered after the decoder was built, and decoding it as null
    would drop or reject a good record. The runner then asks the registry for the id and
    restarts the query from its checkpoint, which runs the same batch again with a decoder
    that knows it. CaseWhen evaluates only the chosen branch, so known ids cost nothing."""
    magic, schema_id, body = framed(value)
    reader = json.dumps(reader_schema)
    is_framed = (F.length(value) >= 5) & (magic == 0)
    decoded = F.when(~is_framed | value.isNull(), F.lit(None))
    for writer_id, writer in sorted(writer_schemas.items()):
        # PERMISSIVE: a corrupt body (or a writer that does not resolve to the reader) becomes null instead of failing the batch.
        branch = from_avro(body, json.dumps(writer), {"mode": "PERMISSIVE", "avroSchema": reader})
        decoded = decoded.when(schema_id == writer_id, branch)
    unregistered = sorted(set(unregistered_ids))
    if unregistered:
        decoded = decoded.when(schema_id.isin(unregistered), F.lit(None))
    return decoded.otherwise(F.raise_error(F.concat(F.lit(f"{UNKNOWN_SCHEMA_ID_MARKER}["), schema_id.cast("string"), F.lit("]"))))


def undecodable_reason(value: Column, known_ids: Iterable[int]) -> Column:
    """Why a message decoded to null, for its feedback.rejected envelope."""
    magic, schema_id, _ = framed(value)
    known = sorted(set(known_ids))
    id_text = schema_id.cast("string")
    return (
        F.when(value.isNull() | (F.length(value) < 5) | (magic != 0), F.lit("undecodable record: not Confluent wire format (magic byte 0 + 4-byte schema id)"))
        .when(schema_id.isin(known) if known else F.lit(False), F.concat(F.lit("undecodable record: the Avro body does not decode with writer schema id "), id_text))
        .otherwise(F.concat(F.lit("undecodable record: schema id "), id_text, F.lit(" is unknown to the schema registry")))
    )


def decode_records(raw: DataFrame, writer_schemas: dict[int, dict[str, Any]], reader_schema: dict[str, Any], unregistered_ids: Iterable[int] = (), id_field: str = "record_id") -> DataFrame:
    """Kafka rows → rows with `record` (struct or null), `reason` (why it is null), schema_id
    and the Kafka coordinates. `id_field` is a field every writer version requires (Feedback: feedback_id)."""
    _, schema_id, _ = framed(F.col("value"))
    decoded = raw.select(
        decode_column(F.col("value"), writer_schemas, reader_schema, unregistered_ids).alias("decoded"),
        schema_id.alias("schema_id"),
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
    )
    # PERMISSIVE from_avro turns a corrupt body into a struct of nulls, not a null: record_id
    # is required by every writer version, so a null one means the body did not decode.
    # This second projection refers to `decoded` instead of repeating the decoder (Spark
    # does not collapse projections that would evaluate an expensive expression twice).
    ok = F.col(f"decoded.{id_field}").isNotNull()
    return decoded.select(
        F.when(ok, F.col("decoded")).alias("record"),
        F.when(~ok, undecodable_reason(F.col("value"), writer_schemas)).alias("reason"),
        "schema_id", "value", "topic", "partition", "offset",
    )


def feedback_value(columns: list[Column], schema_id: int, schema: dict[str, Any]) -> Column:
    """The Confluent-framed Avro value of a Feedback row given its columns in contract order."""
    return F.concat(F.lit(header(schema_id)), to_avro(F.struct(*columns), json.dumps(schema)))

