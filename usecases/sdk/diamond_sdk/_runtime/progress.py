"""Progress reports on `diamond.progress`: after every finished batch, its end offsets per
partition, row counts and durations, keyed by job id. The orchestrator commits those end
offsets to the job's consumer group, so jobs themselves never commit. Every message is built
by contracts.progress_message, i.e. checked against shared/schemas/progress.schema.json.

Each message is signed with the launch's progress key (a per-launch secret the orchestrator
generated and keeps in the job's record): `signature`, the hex HMAC-SHA256 of the message
text without it, is appended as the last field, so the orchestrator verifies the exact bytes
(no canonical JSON to agree on) and accepts progress only from the current launch of a job.
The key itself never goes on Kafka."""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import threading
from typing import Any

from confluent_kafka import Producer

from . import connections, contracts


class ProgressPublisher:
    def __init__(self, brokers: str, topic: str, job_id: str, identity: dict[str, Any], key: bytes | None = None):
        self.topic = topic
        self._key = key
        self.job_id = job_id
        self.identity = identity
        self._producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all", "linger.ms": 5, **connections.current().producer_config()})
        self._lock = threading.Lock()

    def publish(self, event: str, **fields: Any) -> None:
        """Raises contracts.MessageContractError (nothing sent) when the message breaks the schema."""
        body = contracts.progress_message(event, **{"job": self.job_id, **self.identity, **fields})
        with self._lock:
            self._producer.produce(self.topic, key=self.job_id.encode(), value=signed(json.dumps(body, allow_nan=False), self._key))
            self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        with self._lock:
            return self._producer.flush(timeout)


def signed(text: str, key: bytes | None) -> bytes:
    """The message text with `"signature": HMAC-SHA256(key, text)` appended as its last field;
    unchanged without a key (a local run: no orchestrator verifies it)."""
    if key is None:
        return text.encode()
    if not text.endswith("}"):
        raise ValueError("a progress message is a JSON object")
    signature = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    return f'{text[:-1]},"signature":"{signature}"}}'.encode()


def read_progress_key(path: str | None) -> bytes | None:
    """The launch's key from the 0600 file the orchestrator wrote; the file is removed once
    read, so no later process can pick it up from the job's folder."""
    if not path:
        return None
    with open(path, "rb") as file:
        key = file.read().strip()
    os.unlink(path)
    return key


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


def finite_or_none(value: Any) -> float | None:
    """Spark's rates are NaN when it could not compute them; JSON has no NaN, the contract has null."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
