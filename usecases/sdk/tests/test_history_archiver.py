"""The history archiver on the real Kafka and registry (docs/RUNS.md, "History"): a unique
topic's Confluent-framed records become Parquet under day=…, and a restart from the
checkpoint copies only what is new (exactly once)."""
import argparse
import datetime as dt
import socket
import uuid

import pytest

from diamond_sdk._runtime import contracts, wire
from diamond_sdk._runtime.history import table_dir, table_schema
from diamond_sdk._runtime.history_archiver import Table, start_query, wait_for_batches
from diamond_sdk._runtime.registry import SchemaRegistry
from diamond_sdk._runtime.runner import WriterSchemas
from diamond_sdk.testing import local_spark

BROKERS = "127.0.0.1:19092"
REGISTRY = "http://127.0.0.1:18081/apis/ccompat/v7"


def reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not (reachable("127.0.0.1", 19092) and reachable("127.0.0.1", 18081)), reason="Kafka or the registry is not up")


def produce(topic, values):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": BROKERS})
    for value in values:
        producer.produce(topic, value=value, key=b"acme")
    assert producer.flush(30) == 0


def create_topic(topic):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BROKERS})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)


def record(record_id, at):
    return {"record_id": record_id, "customer_id": "acme", "source": "t", "event_time": at, "type": "purchase",
            "amount": 2.5, "currency": "EUR", "attributes": {"k": "v"}, "ingested_at": at + 1000}


def test_records_land_in_day_partitions_exactly_once(tmp_path):
    name = f"history-test-{uuid.uuid4().hex[:8]}"
    topic, subject = f"{name}-records", f"{name}-records-value"
    create_topic(topic)
    writers = WriterSchemas(SchemaRegistry(REGISTRY), subject, contracts.schema_json("CustomerRecord"))
    [schema_id] = writers.by_id
    parsed = contracts.parsed_schema("CustomerRecord")
    nov1 = int(dt.datetime(2026, 11, 1, 23, 59, tzinfo=dt.timezone.utc).timestamp() * 1000)
    nov2 = int(dt.datetime(2026, 11, 2, 0, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    produce(topic, [wire.encode(schema_id, parsed, record("a", nov1)), wire.encode(schema_id, parsed, record("b", nov2)), b"not avro"])
    args = argparse.Namespace(brokers=BROKERS, history_dir=str(tmp_path / "history"), checkpoint_dir=str(tmp_path / "checkpoints"),
                              starting_offsets="earliest", trigger="500 milliseconds", max_offsets_per_trigger=1000, retention_days=60)
    table = Table("records", topic, subject, "CustomerRecord")
    spark = local_spark()

    query = start_query(spark, args, table, writers)
    try:
        wait_for_batches(query, 1, 180)
    finally:
        query.stop()
    folder = table_dir(args.history_dir, "records")
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("day=")) == ["day=2026-11-01", "day=2026-11-02"]

    produce(topic, [wire.encode(schema_id, parsed, record("c", nov2))])
    query = start_query(spark, args, table, writers)  # the same checkpoint: only the new offset
    try:
        wait_for_batches(query, 1, 180)
    finally:
        query.stop()
    rows = spark.read.schema(table_schema("records")).parquet(str(folder)).orderBy("record_id").collect()
    assert [(r.record_id, str(r.day)) for r in rows] == [("a", "2026-11-01"), ("b", "2026-11-02"), ("c", "2026-11-02")]
    assert int(rows[0].event_time.timestamp() * 1000) == nov1  # naive local time, as PySpark returns timestamps
    assert rows[0].attributes == {"k": "v"} and rows[0].amount == 2.5
