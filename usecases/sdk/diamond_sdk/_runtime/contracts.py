"""The data contracts, read from the same files TypeScript reads (shared/schemas): the Avro
records (.avsc) and the JSON messages of the control topics (.schema.json)."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
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


# The JSON message contracts of the control topics (diamond.progress, diamond.events) and of
# a per-record failure (record_failure.py), read from the same shared/schemas/*.schema.json
# files TypeScript reads (shared/messages.ts).
_MESSAGE_FILES = {"progress": "progress.schema.json", "lifecycle": "lifecycle-event.schema.json", "record_failure": "record-failure.schema.json", "run": "run-event.schema.json"}


class MessageContractError(ValueError):
    """A message breaks its schema; `field` names the offending field (`end_offsets.0`)."""

    def __init__(self, contract: str, field: str, problem: str):
        super().__init__(f"{_MESSAGE_FILES.get(contract, contract)}: {field} {problem}")
        self.contract = contract
        self.field = field
        self.problem = problem


@lru_cache(maxsize=None)
def message_schema(name: str) -> dict[str, Any]:
    if name not in _MESSAGE_FILES:
        raise KeyError(f"unknown message contract {name!r}; known: {', '.join(_MESSAGE_FILES)}")
    return json.loads((schema_dir() / _MESSAGE_FILES[name]).read_text(encoding="utf-8"))


def event_names(name: str) -> tuple[str, ...]:
    """The `event` enum of a message contract, in the schema's order."""
    return tuple(message_schema(name)["properties"]["event"]["enum"])


def check_message(name: str, value: Any) -> tuple[str, str] | None:
    """(field, problem) of the first violation of the contract, or None. Same subset and
    same order of checks as shared/json-schema-subset.ts, so both name the same field."""
    return _check(message_schema(name), value, "")


def validate_message(name: str, value: Any) -> None:
    violation = check_message(name, value)
    if violation is not None:
        raise MessageContractError(name, *violation)


def progress_message(event: str, **fields: Any) -> dict[str, Any]:
    """A diamond.progress message stamped now, checked against progress.schema.json: raises
    MessageContractError for a missing or mistyped field and for a field the schema does
    not declare (so everything a job reports is documented there)."""
    schema = message_schema("progress")
    message = {"event": event, **fields, "at": dt.datetime.now(dt.timezone.utc).isoformat()}
    for key in message:
        if key not in schema["properties"]:
            raise MessageContractError("progress", key, "is not declared in the schema")
    validate_message("progress", message)
    return message


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _has_type(value: Any, wanted: str) -> bool:
    actual = _type_of(value)
    return actual == wanted or (wanted == "number" and actual == "integer")


def _describe(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(schema: dict[str, Any], value: Any, path: str) -> tuple[str, str] | None:
    field = path or "(message)"
    if isinstance(value, float) and not math.isfinite(value):
        return field, "must be a finite number (JSON has no NaN or Infinity)"
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        if not any(_has_type(value, t) for t in types):
            return field, f"must be {' or '.join(types)}, got {_type_of(value)} {_describe(value)}"
    if "enum" in schema and not any(value == option and type(value) is type(option) for option in schema["enum"]):
        return field, f"must be one of {', '.join(map(str, schema['enum']))}, got {_describe(value)}"
    if "const" in schema and value != schema["const"]:
        return field, f"must be {_describe(schema['const'])}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return field, f"must have at least {schema['minLength']} characters"
        if "pattern" in schema and re.search(schema["pattern"], value, re.ASCII) is None:
            return field, f"must match {schema['pattern']}, got {_describe(value)}"
    if _type_of(value) in ("integer", "number") and "minimum" in schema and value < schema["minimum"]:
        return field, f"must be at least {schema['minimum']}, got {value}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return _join(path, name), "is required"
        for name, item in value.items():
            sub = schema.get("properties", {}).get(name, schema.get("additionalProperties", True))
            if sub is False:
                return _join(path, str(name)), "is not allowed"
            if sub is True:
                continue
            violation = _check(sub, item, _join(path, str(name)))
            if violation is not None:
                return violation
    for rule in schema.get("allOf", []):
        if _check(rule["if"], value, path) is None:
            violation = _check(rule["then"], value, path)
            if violation is not None:
                return violation
    return None
