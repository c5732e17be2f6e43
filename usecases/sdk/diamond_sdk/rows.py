"""The dicts a per-record `feedback(record, ctx)` receives and returns, typed for IDEs and
type checkers (plain dicts at run time: a TypedDict costs nothing).

    from diamond_sdk import Context, Feedback, Record

    def feedback(record: Record, ctx: Context) -> list[Feedback]:
        return [{"kind": "large_amount", "severity": "info", "message": record["record_id"]}]

Record's keys are the CustomerRecord contract's fields (shared/schemas/customer_record.avsc)
and Feedback's the fields a feedback dict may carry; the SDK's tests check both stay so.
"""
from __future__ import annotations

import datetime as dt
from typing import List, Literal, Optional, TypedDict, Union

Severity = Literal["info", "warning", "critical"]


class Record(TypedDict):
    """One customer record; times are timezone-aware UTC datetimes."""

    record_id: str
    customer_id: str
    source: str
    event_time: dt.datetime
    type: str
    amount: Optional[float]
    currency: Optional[str]
    attributes: dict[str, str]
    ingested_at: dt.datetime


class _FeedbackRequired(TypedDict):
    kind: str
    severity: Severity
    message: str


class Feedback(_FeedbackRequired, total=False):
    """One finding. `kind`, `severity` and `message` are required; the rest default to the
    record's: `customer_id`, `event_time`, `record_ids` ([record_id]) and `key` (record_id)."""

    score: Optional[float]
    details: dict[str, str]
    record_ids: List[str]
    key: str
    customer_id: str
    event_time: Union[dt.datetime, str, int]
    """A datetime, an ISO-8601 string or epoch millis."""


FeedbackResult = Union[List[Feedback], Feedback, None]
"""What `feedback()` may return: a list of findings, one finding, or None (no finding)."""
