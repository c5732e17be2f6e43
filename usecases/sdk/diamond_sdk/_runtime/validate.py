"""Checks before a use case is deployed; `diamond deploy` runs them in the use case's own
Python environment, so "the code imports" means "imports where the job will run".

1. The manifest is valid and the variant's code imports.
2. The SDK's Feedback output (shared/schemas/feedback.avsc, what the runner writes) fits the
   Feedback schema registered under the feedback subject: every field the SDK writes exists
   there with a type it resolves to, and every registered field the SDK does not write has a
   default. Nothing registered yet is fine: the first job registers the SDK's contract.
3. The variant's actual output on its sample.jsonl has the Feedback columns with the right
   types. A per-record `feedback(record)` runs in plain Python (milliseconds); a PySpark
   `transform()` is analysed on a small local SparkSession: only its output schema is
   computed, no Spark job runs unless the transform starts one itself.

    python -m diamond_sdk._runtime.validate <folder> <variant> [--registry-url URL] [--feedback-subject S] [--no-sample]

prints one JSON line: {"ok": true, ...} or {"ok": false, "problem": manifest | user_code |
output | feedback_schema | registry, "error": "...", "column": "..."}.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from . import connections, contracts
from .conform import OPTIONAL, REQUIRED, SEVERITIES, OutputContractError
from ..context import Context
from .manifest import Manifest, ManifestError, load_manifest
from .usercode import UserCodeError, UserJob, load_user_job
from .version import code_version


class FeedbackSchemaError(ValueError):
    """The SDK's Feedback output does not fit the Feedback schema in the registry."""

    def __init__(self, subject: str, version: int, field: str, problem: str):
        self.subject = subject
        self.version = version
        self.field = field
        self.problem = problem
        super().__init__(f"the SDK's Feedback output does not fit {subject} version {version} in the registry: field {field!r} {problem}")


# ── 2. the SDK's contract against the registry's ────────────────────────────

# Avro schema resolution: what a writer's type may be read as.
_PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"), ("float", "double"), ("string", "bytes"), ("bytes", "string")}


def _node(schema: Any) -> Any:
    """A type as a dict ({"type": ...}) or a list (union), whatever way it was written."""
    if isinstance(schema, str):
        return {"type": schema}
    if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)) and "logicalType" not in schema:
        return _node(schema["type"])
    return schema


def describe(schema: Any) -> str:
    node = _node(schema)
    if isinstance(node, list):
        return "[" + ", ".join(describe(branch) for branch in node) + "]"
    kind = node["type"]
    if kind == "map":
        return f"map<{describe(node['values'])}>"
    if kind == "array":
        return f"array<{describe(node['items'])}>"
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {node.get('name')}"
    return f"{kind} ({node['logicalType']})" if node.get("logicalType") else kind


def resolves(writer: Any, reader: Any) -> bool:
    """Whether data written with `writer` can be read as `reader` (Avro resolution rules,
    plus equal logical types: millis read as micros would be a silent bug)."""
    w, r = _node(writer), _node(reader)
    if isinstance(w, list):
        return all(resolves(branch, reader) for branch in w)
    if isinstance(r, list):
        return any(resolves(writer, branch) for branch in r)
    if w["type"] != r["type"]:
        return (w["type"], r["type"]) in _PROMOTIONS and not w.get("logicalType") and not r.get("logicalType")
    if w.get("logicalType") != r.get("logicalType"):
        return False
    if w["type"] == "map":
        return resolves(w["values"], r["values"])
    if w["type"] == "array":
        return resolves(w["items"], r["items"])
    if w["type"] == "record":
        return w.get("name") == r.get("name") and not contract_problems(w, r)
    if w["type"] in ("enum", "fixed"):
        return w.get("name") == r.get("name")
    return True


def contract_problems(sdk: dict[str, Any], registered: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, problem) for every way the SDK's record schema does not fit the registered one."""
    theirs = {field["name"]: field for field in registered.get("fields", [])}
    ours = {field["name"]: field for field in sdk.get("fields", [])}
    problems = []
    for name, field in ours.items():
        if name not in theirs:
            problems.append((name, "is written by the SDK but the registered schema has no such field"))
        elif not resolves(field["type"], theirs[name]["type"]):
            problems.append((name, f"is {describe(field['type'])} in the SDK but {describe(theirs[name]['type'])} in the registry"))
    for name, field in theirs.items():
        if name not in ours and "default" not in field:
            problems.append((name, f"is required by the registry ({describe(field['type'])}, no default) but the SDK does not write it"))
    return problems


def check_registry_contract(registry_url: str, subject: str) -> int | None:
    """Raises FeedbackSchemaError for the first problem; returns the checked version (None: nothing registered)."""
    from .registry import SchemaRegistry

    latest = SchemaRegistry(registry_url, timeout=5).latest(subject)
    if latest is None:
        return None
    problems = contract_problems(contracts.schema_json("Feedback"), latest["schema"])
    if problems:
        field, problem = problems[0]
        raise FeedbackSchemaError(subject, latest["version"], field, problem)
    return latest["version"]


# ── 3. the use case's output on its sample ───────────────────────────────────

# What a feedback() item may hold, as Python types (REQUIRED/OPTIONAL in conform say it for Spark).
_ITEM_TYPES: dict[str, tuple[type, ...]] = {
    "customer_id": (str,), "kind": (str,), "severity": (str,), "message": (str,), "key": (str,),
    "score": (int, float), "details": (dict,), "record_ids": (list, tuple),
    "event_time": (dt.datetime, int, float, str),
}
# customer_id and event_time default to the record's.
_ITEM_REQUIRED = ("kind", "severity", "message")


def _expected(column: str) -> str:
    return (REQUIRED.get(column) or OPTIONAL[column])[1]


def check_feedback_items(usecase: str, items: Any) -> int:
    """Checks what one feedback() call returned; raises OutputContractError naming the
    column; returns how many items have a null required value (the job rejects those rows)."""
    if items is None:
        return 0
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise OutputContractError(usecase, "feedback()", f"returned {type(items).__name__}; return a list of dicts")
    nulls = 0
    for item in items:
        if not isinstance(item, dict):
            raise OutputContractError(usecase, "feedback()", f"returned an item of type {type(item).__name__}; return a list of dicts")
        unknown = sorted(set(item) - set(_ITEM_TYPES))
        if unknown:
            raise OutputContractError(usecase, unknown[0], f"is not a Feedback column; use {', '.join(sorted(_ITEM_TYPES))}")
        for column in _ITEM_REQUIRED:
            if column not in item:
                raise OutputContractError(usecase, column, f"is missing; return it as {_expected(column)}")
        for column, value in item.items():
            if value is None:
                nulls += column in _ITEM_REQUIRED
                continue
            if not isinstance(value, _ITEM_TYPES[column]) or isinstance(value, bool):
                raise OutputContractError(usecase, column, f"is {type(value).__name__}; expected {_expected(column)}")
        severity = item.get("severity")
        if isinstance(severity, str) and severity.lower() not in SEVERITIES:
            raise OutputContractError(usecase, "severity", f"is {severity!r}; expected one of {', '.join(SEVERITIES)}")
        if item.get("event_time") is not None:
            from .records import to_millis

            try:
                to_millis(item["event_time"])
            except (TypeError, ValueError) as error:
                raise OutputContractError(usecase, "event_time", f"is {item['event_time']!r}; expected {_expected('event_time')} ({error})") from error
    return nulls


def _sample_record(raw: dict[str, Any]) -> dict[str, Any]:
    """A sample line as feedback() receives it in the job: every field present, times as UTC datetimes."""
    from .records import RECORD_SCHEMA, TIMESTAMP_FIELDS, to_millis

    record = {field.name: raw.get(field.name) for field in RECORD_SCHEMA.fields}
    record["attributes"] = record["attributes"] or {}
    if record["amount"] is not None:
        record["amount"] = float(record["amount"])
    for name in TIMESTAMP_FIELDS:
        record[name] = dt.datetime.fromtimestamp(to_millis(raw.get(name, 0)) / 1000, tz=dt.timezone.utc)
    return record


def _validation_spark() -> Any:
    """The smallest local session that analyses a DataFrame: one core, no console progress,
    a JIT and GC tuned for a short-lived JVM (measured: ~40 % faster start than the defaults)."""
    from .local_spark import local_spark_session

    return local_spark_session("diamond-validate", 1, {
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "512m",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    })


def check_sample_output(manifest: Manifest, job: UserJob, ctx: Context, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs the variant on `records`; raises OutputContractError (or UserCodeError when a
    transform raises). Returns what it saw."""
    if job.kind == "feedback":
        rows = nulls = rejected = 0
        first_error = None
        for raw in records:
            record = _sample_record(raw)
            try:
                items = job.function(record, ctx) if job.takes_context else job.function(record)
            except Exception as error:  # the job rejects such a record and goes on; so does the check
                rejected += 1
                first_error = first_error or f"{type(error).__name__}: {error}"
                continue
            nulls += check_feedback_items(manifest.name, items)
            rows += 0 if items is None else 1 if isinstance(items, dict) else len(items)
        return {"records": len(records), "rows": rows, "rows_with_nulls": nulls, "rejected_records": rejected, "first_error": first_error}

    from .conform import check_output_schema
    from .records import records_dataframe
    from .user_transform import call_transform

    frame = records_dataframe(_validation_spark(), records)
    if manifest.stateful:
        from .stateful import stateful_records

        frame = stateful_records(frame, manifest, streaming=False)  # what the job's transform gets
    output = call_transform(job, frame, ctx, manifest.folder)
    # The schema check alone (conform's first step): a deploy check needs no Feedback projection.
    check_output_schema(output, manifest.name)
    return {"records": len(records), "columns": output.columns}


# ── all of it ────────────────────────────────────────────────────────────────

def validate(folder: str, variant: str, registry_url: str | None, feedback_subject: str, sample: bool = True) -> dict[str, Any]:
    timings: dict[str, int] = {}
    started = time.monotonic()

    def lap(name: str) -> None:
        nonlocal started
        now = time.monotonic()
        timings[name] = int((now - started) * 1000)
        started = now

    try:
        manifest = load_manifest(folder)
        job = load_user_job(manifest.name, variant, manifest.variant_file(variant))
    except ManifestError as error:
        return {"ok": False, "problem": "manifest", "error": str(error)}
    except UserCodeError as error:
        return {"ok": False, "problem": "user_code", "error": str(error)}
    lap("import_ms")
    result: dict[str, Any] = {
        "ok": True, "name": manifest.name, "variants": sorted(manifest.variants), "kind": job.kind, "stateful": manifest.stateful,
        "cores": manifest.resources.cores, "memory": manifest.resources.memory,
        "registry": None, "sample": None, "timings": timings,
    }
    if registry_url:
        from .registry import RegistryError

        try:
            result["registry"] = {"subject": feedback_subject, "version": check_registry_contract(registry_url, feedback_subject)}
        except FeedbackSchemaError as error:
            return {"ok": False, "problem": "feedback_schema", "error": str(error), "column": error.field}
        except RegistryError as error:
            return {"ok": False, "problem": "registry", "error": str(error)}
        lap("registry_ms")
    sample_file = Path(manifest.folder) / "sample.jsonl"
    if sample and sample_file.is_file():
        from .records import read_jsonl

        ctx = Context(manifest.name, variant, code_version(manifest.folder), manifest.params)
        try:
            result["sample"] = check_sample_output(manifest, job, ctx, read_jsonl(sample_file))
        except OutputContractError as error:
            return {"ok": False, "problem": "output", "error": f"{error} (checked on {sample_file})", "column": error.column}
        except UserCodeError as error:
            return {"ok": False, "problem": "user_code", "error": f"{error} (on {sample_file})"}
        lap("sample_ms")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diamond_sdk._runtime.validate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("variant")
    parser.add_argument("--registry-url", help="check the SDK's Feedback contract against the registry's (skipped without)")
    parser.add_argument("--feedback-subject", default=contracts.SUBJECTS["Feedback"])
    parser.add_argument("--no-sample", action="store_true", help="do not run the use case on its sample.jsonl")
    parser.add_argument("--connections-file", help="the registry's credentials and CA (connections.py; read, then removed)")
    args = parser.parse_args(argv)
    connections.install(args.connections_file)  # before the use case is imported
    print(json.dumps(validate(args.folder, args.variant, args.registry_url, args.feedback_subject, not args.no_sample)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
