"""History as Parquet (docs/RUNS.md, "History"): its layout, its Spark schemas, the views
`records` and `feedback` over it, day retention, and a batch writer for tests.

    <history dir>/records/day=YYYY-MM-DD/part-….parquet     (CustomerRecord columns)
    <history dir>/feedback/day=YYYY-MM-DD/part-….parquet    (Feedback columns)

The schemas come from the Avro contracts, so an empty or missing history still gives views
with the right columns, and `day` is the UTC date of `event_time`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

from . import contracts

# view name → (folder under the history dir, Avro contract)
TABLES = {"records": "CustomerRecord", "feedback": "Feedback"}
DAY_COLUMN = "day"
_DAY_FOLDER = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


def _spark_type(avro: Any) -> tuple[Any, bool]:
    """(Spark type, nullable) of an Avro field type; timestamp-millis longs are timestamps."""
    from pyspark.sql import types as T

    if isinstance(avro, list):
        others = [branch for branch in avro if branch != "null"]
        if len(others) != 1:
            raise ValueError(f"unsupported Avro union {avro!r}")
        return _spark_type(others[0])[0], True
    if isinstance(avro, dict):
        if avro.get("logicalType") == "timestamp-millis":
            return T.TimestampType(), False
        if avro["type"] == "map":
            return T.MapType(T.StringType(), _spark_type(avro["values"])[0]), False
        if avro["type"] == "array":
            return T.ArrayType(_spark_type(avro["items"])[0]), False
        return _spark_type(avro["type"])
    primitives = {"string": T.StringType(), "double": T.DoubleType(), "float": T.FloatType(), "long": T.LongType(),
                  "int": T.IntegerType(), "boolean": T.BooleanType(), "bytes": T.BinaryType()}
    return primitives[avro], False


def contract_schema(contract: str) -> Any:
    """The Spark StructType of an Avro contract's record, field by field."""
    from pyspark.sql import types as T

    fields = []
    for field in contracts.schema_json(contract)["fields"]:
        kind, nullable = _spark_type(field["type"])
        fields.append(T.StructField(field["name"], kind, nullable))
    return T.StructType(fields)


def table_schema(view: str) -> Any:
    """The columns of a history table as read back: the contract's plus `day` (a date)."""
    from pyspark.sql import types as T

    return T.StructType([*contract_schema(TABLES[view]).fields, T.StructField(DAY_COLUMN, T.DateType(), True)])


def table_dir(history_dir: str | Path, view: str) -> Path:
    return Path(history_dir) / view


def register_views(spark: Any, history_dir: str | Path) -> None:
    """(Re)defines the temp views `records` and `feedback` over the history. A view lists its
    files when it is defined, so the server defines them again to see newer days. A folder
    the archiver wrote has a `_spark_metadata` log: Spark then reads only committed files."""
    for view in TABLES:
        folder = table_dir(history_dir, view)
        folder.mkdir(parents=True, exist_ok=True)
        spark.read.schema(table_schema(view)).parquet(str(folder)).createOrReplaceTempView(view)


def with_day(frame: Any) -> Any:
    """`frame` with the `day` partition column (UTC date of event_time)."""
    from pyspark.sql import functions as F

    return frame.withColumn(DAY_COLUMN, F.to_date(F.col("event_time")))


def _to_timestamp(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def write_history(spark: Any, history_dir: str | Path, records: Iterable[dict[str, Any]] = (), feedback: Iterable[dict[str, Any]] = ()) -> None:
    """Appends plain dicts to the history the way the archiver lays it out, so a use case's
    functions can be tested on sample data. Times may be datetimes, ISO strings or epoch ms;
    missing nullable fields are null and missing maps/arrays empty."""
    for view, rows in (("records", list(records)), ("feedback", list(feedback))):
        if not rows:
            continue
        schema = contract_schema(TABLES[view])
        from pyspark.sql import types as T

        prepared = []
        for row in rows:
            values = []
            for field in schema.fields:
                value = row.get(field.name)
                if isinstance(field.dataType, T.TimestampType):
                    value = _to_timestamp(value)
                elif value is None and isinstance(field.dataType, T.MapType):
                    value = {}
                elif value is None and isinstance(field.dataType, T.ArrayType):
                    value = []
                values.append(value)
            prepared.append(values)
        frame = with_day(spark.createDataFrame(prepared, schema))
        frame.write.mode("append").partitionBy(DAY_COLUMN).parquet(str(table_dir(history_dir, view)))


def delete_old_days(history_dir: str | Path, retention_days: int, today: dt.date | None = None) -> list[str]:
    """Removes day=… folders older than the retention; returns what it removed (view/day=…)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    oldest_kept = today - dt.timedelta(days=retention_days - 1)
    removed = []
    for view in TABLES:
        folder = table_dir(history_dir, view)
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            match = _DAY_FOLDER.match(child.name)
            if match and dt.date.fromisoformat(match.group(1)) < oldest_kept:
                shutil.rmtree(child, ignore_errors=True)
                removed.append(f"{view}/{child.name}")
    return removed


def committed_files(folder: str | Path, last_batch: int) -> list[str]:
    """The Parquet files the archiver's file sink committed in its batches 0..last_batch, from
    the sink's `_spark_metadata` log (each batch a file `N`, every tenth a `N.compact` holding
    everything up to N). A backfill reads exactly these, so it ends where the archive's batch
    `last_batch` ended in Kafka, while the archiver goes on appending. Files retention deleted
    are left out."""
    from urllib.parse import unquote, urlparse

    log_dir = Path(folder) / "_spark_metadata"
    if not log_dir.is_dir():
        return []
    batches: dict[int, Path] = {}
    compacts: list[int] = []
    for child in log_dir.iterdir():
        stem, _, suffix = child.name.partition(".")
        if not stem.isdigit() or suffix not in ("", "compact"):
            continue  # .tmp files of a write in progress, crc files
        batches[int(stem)] = child
        if suffix == "compact":
            compacts.append(int(stem))
    start = max((c for c in compacts if c <= last_batch), default=0)
    files: dict[str, None] = {}  # ordered set
    for batch in range(start, last_batch + 1):
        if batch not in batches:
            continue
        for line in batches[batch].read_text().splitlines()[1:]:  # line 1 is the log's version
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry.get("action") == "delete":
                files.pop(entry["path"], None)
            else:
                files[entry["path"]] = None
    return [path for path in files if Path(unquote(urlparse(path).path)).exists()]
