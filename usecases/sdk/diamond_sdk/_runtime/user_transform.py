"""Calling a use case's `transform(records, ctx)`, written once for the runner, the test
harness and the deploy check: its exception becomes a UserCodeError naming the user's file,
line and function; what it returns must be a DataFrame; the runner and the harness then
conform it to Feedback.

Per-record `feedback(record)` functions are called by records.apply_feedback_function
instead: there one record's exception rejects that record and the job goes on.
"""
from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame

from ..context import Context
from .conform import OutputContractError, conform
from .usercode import UserJob, wrap_user_exception


def call_transform(job: UserJob, records: DataFrame, ctx: Context, folder: Path | None = None) -> DataFrame:
    """The user's DataFrame. Raises UserCodeError attributed to the deepest frame under
    `folder` (default: the folder of the variant's file), or OutputContractError when the
    result is not a DataFrame."""
    try:
        output = job.function(records, ctx)
    except Exception as error:  # the user's code may raise anything; say where, keep the cause
        raise wrap_user_exception(ctx.usecase, folder or job.file.parent.resolve(), error) from error
    if not isinstance(output, DataFrame):
        raise OutputContractError(ctx.usecase, "transform()", f"returned {type(output).__name__}; return a DataFrame")
    return output


def transform_feedback(job: UserJob, records: DataFrame, ctx: Context, folder: Path | None = None) -> DataFrame:
    """The transform's output as Feedback rows in contract order (see conform)."""
    return conform(call_transform(job, records, ctx, folder), ctx)
