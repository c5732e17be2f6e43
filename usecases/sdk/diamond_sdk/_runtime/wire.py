"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, the Avro body.

Decoding resolves the writer's schema (looked up by the id in the message) against the
reader's schema, so a reader accepts every registered writer version.
"""
from __future__ import annotations

import io
import struct
from typing import Any, Callable

import fastavro

MAGIC = 0
HEADER = struct.Struct(">bI")


class WireFormatError(ValueError):
    """The bytes are not a Confluent-framed Avro message."""


def header(schema_id: int) -> bytes:
    return HEADER.pack(MAGIC, schema_id)


def encode(schema_id: int, schema: Any, record: dict[str, Any]) -> bytes:
    """Frames `record`, written with the parsed `schema` registered under `schema_id`."""
    buffer = io.BytesIO()
    buffer.write(header(schema_id))
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def schema_id_of(data: bytes) -> int:
    if len(data) < HEADER.size:
        raise WireFormatError(f"message of {len(data)} bytes is shorter than the 5-byte header")
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireFormatError(f"magic byte is {magic}, expected {MAGIC}: not Confluent wire format")
    return schema_id


def decode(data: bytes, writer_schema: Callable[[int], Any], reader_schema: Any | None = None) -> tuple[int, dict[str, Any]]:
    """Returns (schema id, record). `writer_schema(id)` returns the parsed writer schema."""
    schema_id = schema_id_of(data)
    writer = writer_schema(schema_id)
    body = io.BytesIO(data[HEADER.size:])
    try:
        record = fastavro.schemaless_reader(body, writer, reader_schema if reader_schema is not None else writer)
    except Exception as error:  # fastavro raises several types for corrupt bodies
        raise WireFormatError(f"Avro body does not match schema id {schema_id}: {error}") from error
    return schema_id, record
