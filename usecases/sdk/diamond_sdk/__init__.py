"""Diamond's Python SDK: turns a use case folder into a streaming job.

A use case is plain PySpark or a plain function; this package hides Kafka, Avro and offsets.

    # usecases/<name>/job.py — either
    def transform(records, ctx):        # records: DataFrame of CustomerRecord columns
        return records.where(...).select(customer_id, kind, severity, message, event_time, ...)
    # or
    def feedback(record):               # record: dict; return a list of dicts
        return [{"kind": "...", "severity": "warning", "message": "..."}]

Test it with `diamond_sdk.testing.run_usecase(folder, records)` in pytest.
"""
from .context import Context
from .conform import OutputContractError
from .manifest import ManifestError
from .usercode import UserCodeError

__all__ = ["Context", "ManifestError", "OutputContractError", "UserCodeError"]
