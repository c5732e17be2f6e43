"""Progress reports on `diamond.progress`: after every finished batch, its end offsets per
partition, row counts and durations, keyed by job id. The orchestrator commits those end
offsets to the job's consumer group, so jobs themselves never commit."""
from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from confluent_kafka import Producer


class ProgressPublisher:
    def __init__(self, brokers: str, topic: str, job_id: str, identity: dict[str, Any]):
        self.topic = topic
        self.job_id = job_id
        self.identity = identity
        self._producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        self._lock = threading.Lock()

    def publish(self, message: dict[str, Any]) -> None:
        body = {"job": self.job_id, **self.identity, **message, "at": dt.datetime.now(dt.timezone.utc).isoformat()}
        with self._lock:
            self._producer.produce(self.topic, key=self.job_id.encode(), value=json.dumps(body).encode())
            self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        with self._lock:
            return self._producer.flush(timeout)


def end_offsets(source_offsets: str | None, topic: str) -> dict[str, int]:
    """Spark's per-source offset JSON ({"topic": {"0": 10}}) → {"0": 10} for `topic`."""
    # The first batch has no start offset: Spark reports null (or the text "null").
    if not source_offsets:
        return {}
    try:
        parsed = json.loads(source_offsets) if isinstance(source_offsets, str) else source_offsets
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(partition): int(offset) for partition, offset in (parsed.get(topic) or {}).items()}
