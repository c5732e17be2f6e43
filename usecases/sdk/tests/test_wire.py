"""Unit tests of the Confluent wire format (no services needed)."""
import copy

import fastavro
import pytest

from diamond_sdk._runtime import contracts, wire

RECORD = {
    "record_id": "r-1", "customer_id": "acme", "source": "http", "event_time": 1_793_534_400_123,
    "type": "purchase", "amount": 12.5, "currency": "EUR", "attributes": {"k": "v"}, "ingested_at": 1_793_534_401_000,
}


def test_header_is_magic_byte_and_big_endian_id():
    data = wire.encode(258, contracts.parsed_schema("CustomerRecord"), RECORD)
    assert data[:5] == bytes([0, 0, 0, 1, 2])
    assert wire.schema_id_of(data) == 258


def test_round_trip_keeps_every_field():
    schema = contracts.parsed_schema("CustomerRecord")
    schema_id, record = wire.decode(wire.encode(7, schema, RECORD), lambda _id: schema)
    assert schema_id == 7
    assert record["event_time"].timestamp() * 1000 == RECORD["event_time"]
    assert {k: v for k, v in record.items() if k not in ("event_time", "ingested_at")} == {
        k: v for k, v in RECORD.items() if k not in ("event_time", "ingested_at")
    }


def test_an_older_writer_version_decodes_with_the_current_reader():
    current = contracts.schema_json("CustomerRecord")
    older = copy.deepcopy(current)
    older["fields"] = [f for f in older["fields"] if f["name"] not in ("currency", "attributes")]
    old_record = {k: v for k, v in RECORD.items() if k not in ("currency", "attributes")}
    writers = {1: fastavro.parse_schema(older), 2: fastavro.parse_schema(current)}
    data = wire.encode(1, writers[1], old_record)
    _, record = wire.decode(data, writers.__getitem__, contracts.parsed_schema("CustomerRecord"))
    assert record["currency"] is None and record["attributes"] == {}
    assert record["amount"] == 12.5


@pytest.mark.parametrize("data, problem", [(b"", "shorter"), (b"\x01\x00\x00\x00\x01x", "magic byte is 1")])
def test_bad_frames_are_named(data, problem):
    with pytest.raises(wire.WireFormatError, match=problem):
        wire.schema_id_of(data)


def test_a_body_that_does_not_match_its_schema_is_a_wire_format_error():
    schema = contracts.parsed_schema("CustomerRecord")
    with pytest.raises(wire.WireFormatError, match="schema id 3"):
        wire.decode(wire.header(3) + b"\x02", lambda _id: schema)
