"""A record the use case's per-record `feedback()` raised on, in the one shape
shared/schemas/record-failure.schema.json defines (TypeScript reads the same file).

Built in the Python worker that ran the function (records.apply_feedback_function), where
the exception object still exists: its type, message and the user's own frame (file, line,
function) come from it, not from parsing text. A running job writes it, with a `reason`,
to feedback.rejected; the test harness raises it as a RecordError unless the test asked for
the rejected list, and appends every one to $DIAMOND_RECORD_FAILURES (one JSON line each),
which `diamond usecase test` prints before its summary, whether or not the tests pass.
"""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any, Sequence

from . import contracts
from .usercode import UserCodeError, user_frame

REASON = "feedback() raised"
"""The `reason` of a failure's feedback.rejected envelope."""

FAILURES_FILE_ENV = "DIAMOND_RECORD_FAILURES"


def record_failure(usecase: str, variant: str, folder: Path | None, record: dict[str, Any], error: BaseException) -> dict[str, Any]:
    """The failure of `record`; `folder` is the use case's (frames outside it are the platform's)."""
    frame = user_frame(folder, error) if folder is not None else None
    return {
        "usecase": usecase,
        "variant": variant,
        "record_id": _text_or_none(record.get("record_id")),
        "customer_id": _text_or_none(record.get("customer_id")),
        "exception": type(error).__name__,
        "message": str(error),
        "file": frame.filename if frame else None,
        "line": frame.lineno if frame else None,
        "function": frame.name if frame else None,
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "record": record,
    }


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def describe(failure: dict[str, Any]) -> str:
    """`<file>:<line> in feedback(): ValueError: message` — what a person reads first."""
    where = f"{failure['file']}:{failure['line']}" if failure["file"] else "(outside the use case's files)"
    function = f" in {failure['function']}()" if failure["function"] else ""
    return f"{where}{function}: {failure['exception']}: {failure['message']}"


class RecordError(UserCodeError):
    """The use case's `feedback()` raised on at least one record of a test that did not ask
    for rejections (`run_usecase(..., expect_rejections=True)`).

    Its file, line, function and message are the first failure's; `record` is the record it
    raised on, `exception` the class name of what it raised, `failures` every failure (dicts
    in the RecordFailure shape). Its text ends with the worker's traceback.
    """

    def __init__(self, failures: Sequence[dict[str, Any]]):
        if not failures:
            raise ValueError("RecordError needs at least one failure")
        first = failures[0]
        super().__init__(first["usecase"], first["file"], first["line"], first["function"], f"{first['exception']}: {first['message']}", first["traceback"])
        self.failures = list(failures)
        self.record: dict[str, Any] = first["record"]
        self.exception: str = first["exception"]
        others = f" ({len(failures)} records raised; the first is shown)" if len(failures) > 1 else ""
        self.args = ("\n".join([
            f"use case {first['usecase']!r} variant {first['variant']} raised on a record{others}",
            f"  at {describe(first)}",
            f"  record: {json.dumps(first['record'], default=str)}",
            "  (a test that means its records to be rejected: run_usecase(..., expect_rejections=True), then read result.rejected)",
            "",
            first["traceback"].rstrip(),
        ]),)


def report_failures(failures: Sequence[dict[str, Any]], expected: bool) -> None:
    """Checks each failure against the contract and appends it to $DIAMOND_RECORD_FAILURES
    (when set), marked `expected` when the test asked for rejections."""
    for failure in failures:
        contracts.validate_message("record_failure", failure)
    path = os.environ.get(FAILURES_FILE_ENV)
    if not path or not failures:
        return
    with open(path, "a", encoding="utf-8") as out:
        for failure in failures:
            out.write(json.dumps({**failure, "expected": expected}, default=str) + "\n")
