"""Diamond's Python SDK: turns a use case folder into a streaming job.

A use case is plain PySpark or a plain function; this package hides Kafka, Avro and offsets.

    # usecases/<name>/job.py — either
    def transform(records: DataFrame, ctx: Context) -> DataFrame:   # CustomerRecord columns in
        return records.where(...).select(customer_id, kind, severity, message, event_time, ...)
    # or
    def feedback(record: Record, ctx: Context) -> list[Feedback]:   # plain (typed) dicts
        return [{"kind": "...", "severity": "warning", "message": "..."}]

Test it with `diamond_sdk.testing.run_usecase(folder, records)` in pytest.

That is the whole API: this module and `diamond_sdk.testing`. What runs the job (Kafka,
Avro, the registry, progress reports) lives in `diamond_sdk._runtime`, which is private.
"""
from typing import Any

from ._runtime.manifest import ManifestError
from ._runtime.usercode import UserCodeError
from .context import Context
from .rows import Feedback, FeedbackResult, Record, Severity

__all__ = ["Context", "Feedback", "FeedbackResult", "ManifestError", "OutputContractError", "Record", "Severity", "UserCodeError", "now"]


def __getattr__(name: str) -> Any:
    # Imported on first use: conform needs pyspark, and describing a use case's functions
    # (python3 -m diamond_sdk._runtime.functions) must not.
    if name == "OutputContractError":
        from ._runtime.conform import OutputContractError

        return OutputContractError
    if name == "now":
        # The current time as a column, for streaming transforms: unlike current_timestamp(),
        # it does not make Spark compile the plan again every batch (_runtime/clock.py).
        from ._runtime.clock import wall_clock

        return wall_clock
    raise AttributeError(f"module 'diamond_sdk' has no attribute {name!r}")
