"""The Avro data contracts, read from the same .avsc files TypeScript reads (shared/schemas)."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

_FILES = {"CustomerRecord": "customer_record.avsc", "Feedback": "feedback.avsc"}

# Subjects in the registry (TopicNameStrategy), as in shared/schemas.ts.
SUBJECTS = {"CustomerRecord": "records.normalized-value", "Feedback": "feedback.raw-value"}


def schema_dir() -> Path:
    """shared/schemas of the checkout; DIAMOND_SCHEMA_DIR overrides it on a cluster."""
    override = os.environ.get("DIAMOND_SCHEMA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[4] / "shared" / "schemas"


@lru_cache(maxsize=None)
def schema_json(name: str) -> dict[str, Any]:
    if name not in _FILES:
        raise KeyError(f"unknown contract {name!r}; known: {', '.join(_FILES)}")
    return json.loads((schema_dir() / _FILES[name]).read_text(encoding="utf-8"))


def parsed_schema(name: str) -> Any:
    return fastavro.parse_schema(schema_json(name))
