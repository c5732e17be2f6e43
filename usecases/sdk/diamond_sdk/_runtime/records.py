"""CustomerRecord rows as Spark sees them, and the per-record `feedback(record)` wrapper.

The wrapper runs the user's plain Python function over Arrow batches (mapInPandas). One
record's exception does not stop the job: that record goes to `feedback.rejected` with the
traceback, and every other record goes on.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..context import Context

RECORD_SCHEMA = T.StructType([
    T.StructField("record_id", T.StringType(), False),
    T.StructField("customer_id", T.StringType(), False),
    T.StructField("source", T.StringType(), False),
    T.StructField("event_time", T.TimestampType(), False),
    T.StructField("type", T.StringType(), False),
    T.StructField("amount", T.DoubleType(), True),
    T.StructField("currency", T.StringType(), True),
    T.StructField("attributes", T.MapType(T.StringType(), T.StringType()), False),
    T.StructField("ingested_at", T.TimestampType(), False),
])
TIMESTAMP_FIELDS = ("event_time", "ingested_at")

# What the wrapper emits for each feedback item before conform().
_ITEM_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType()),
    T.StructField("kind", T.StringType()),
    T.StructField("severity", T.StringType()),
    T.StructField("message", T.StringType()),
    T.StructField("score", T.DoubleType()),
    T.StructField("details", T.MapType(T.StringType(), T.StringType())),
    T.StructField("record_ids", T.ArrayType(T.StringType())),
    T.StructField("key", T.StringType()),
    T.StructField("event_time", T.LongType()),
])
_ITEM_KEYS = {field.name for field in _ITEM_SCHEMA.fields}


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a sample.jsonl (blank lines skipped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def to_millis(value: Any) -> int:
    """Epoch millis of a datetime (naive means UTC), a number, or an ISO-8601 string."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return to_millis(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise TypeError(f"cannot read {value!r} as a time")


def records_dataframe(spark: SparkSession, records: Iterable[dict[str, Any]]) -> DataFrame:
    """A CustomerRecord DataFrame from plain dicts (times as ISO strings, epoch millis or datetimes)."""
    rows = []
    for record in records:
        row = dict(record)
        for name in TIMESTAMP_FIELDS:
            row[name] = dt.datetime.fromtimestamp(to_millis(row.get(name, 0)) / 1000, tz=dt.timezone.utc)
        row.setdefault("attributes", {})
        row.setdefault("amount", None)
        row.setdefault("currency", None)
        if row["amount"] is not None:
            row["amount"] = float(row["amount"])
        rows.append(tuple(row.get(field.name) for field in RECORD_SCHEMA.fields))
    return spark.createDataFrame(rows, RECORD_SCHEMA)


def _normalise_item(record: dict[str, Any], item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TypeError(f"feedback() must return a list of dicts; got an item of type {type(item).__name__}")
    unknown = set(item) - _ITEM_KEYS
    if unknown:
        raise KeyError(f"unknown feedback field(s) {sorted(unknown)}; allowed: {sorted(_ITEM_KEYS)}")
    details = item.get("details") or {}
    return {
        "customer_id": item.get("customer_id", record["customer_id"]),
        "kind": item.get("kind"),
        "severity": item.get("severity"),
        "message": item.get("message"),
        "score": None if item.get("score") is None else float(item["score"]),
        "details": {str(k): str(v) for k, v in details.items()},
        "record_ids": [str(r) for r in item.get("record_ids", [record["record_id"]])],
        "key": item.get("key", record["record_id"]),
        "event_time": to_millis(item.get("event_time", record["event_time"])),
    }


def run_feedback_function(fn: Callable[..., Any], ctx: Context | None, record: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Runs the user's function on one record: (feedback items, None) or ([], traceback)."""
    try:
        result = fn(record, ctx) if ctx is not None else fn(record)
        if result is None:
            return [], None
        if isinstance(result, dict):
            result = [result]
        return [_normalise_item(record, item) for item in result], None
    except Exception:  # the user's code may raise anything; the record is rejected, the job goes on
        return [], traceback.format_exc()


_TRACEBACK_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def user_location(fn: Callable[..., Any], traceback_text: str) -> dict[str, Any]:
    """{file, line, function} of the deepest frame of `traceback_text` in the folder of the
    user's `fn` (an operator reading feedback.rejected sees where without parsing the
    traceback); nulls when the error arose outside the use case's files."""
    code = getattr(fn, "__code__", None)
    folder = str(Path(code.co_filename).resolve().parent) if code is not None else None
    inside = [] if folder is None else [m for m in _TRACEBACK_FRAME.finditer(traceback_text) if str(Path(m.group(1)).resolve()).startswith(folder + "/")]
    if not inside:
        return {"file": None, "line": None, "function": None}
    last = inside[-1]
    return {"file": last.group(1), "line": int(last.group(2)), "function": last.group(3)}


def apply_feedback_function(records: DataFrame, fn: Callable[..., Any], ctx: Context, takes_context: bool) -> DataFrame:
    """Rows of (ok, payload): ok → a feedback item (see feedback_items), not ok → a rejected
    record's JSON envelope. Cache the result before splitting it, or the function runs twice."""
    as_json = records.select(F.to_json(F.struct(
        *[(F.unix_millis(F.col(f.name)) if f.name in TIMESTAMP_FIELDS else F.col(f.name)).alias(f.name) for f in RECORD_SCHEMA.fields]
    ), {"ignoreNullFields": "false"}).alias("record"))
    call_ctx = ctx if takes_context else None
    usecase, variant = ctx.usecase, ctx.variant

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for batch in batches:
            ok: list[bool] = []
            payload: list[str] = []
            for text in batch["record"]:
                raw = json.loads(text)
                record = dict(raw)
                for name in TIMESTAMP_FIELDS:
                    record[name] = dt.datetime.fromtimestamp(raw[name] / 1000, tz=dt.timezone.utc)
                items, error = run_feedback_function(fn, call_ctx, record)
                if error is not None:
                    ok.append(False)
                    payload.append(json.dumps({
                        "usecase": usecase, "variant": variant, "reason": "feedback() raised", "traceback": error,
                        **user_location(fn, error),
                        "record_id": raw.get("record_id"), "customer_id": raw.get("customer_id"), "record": raw,
                    }))
                for item in items:
                    ok.append(True)
                    payload.append(json.dumps(item))
            # An empty frame would reach Arrow as a chunked array it cannot convert: skip it.
            if ok:
                yield pd.DataFrame({"ok": pd.Series(ok, dtype=bool), "payload": pd.Series(payload, dtype=object)})

    return as_json.mapInPandas(run, "ok boolean, payload string")


def feedback_items(results: DataFrame) -> DataFrame:
    """The feedback half of apply_feedback_function's output, ready for conform()."""
    return results.where("ok").select(F.from_json("payload", _ITEM_SCHEMA).alias("f")).select("f.*")


def rejected_records(results: DataFrame) -> DataFrame:
    """The rejected half: one JSON envelope per record whose feedback() raised."""
    return results.where("not ok").select("payload")
