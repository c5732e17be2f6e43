"""One run of an on-demand function on a session's SparkSession (docs/RUNS.md, POST /runs):
load the function from a use case folder under a root, convert the params, run it in its
job group and FAIR pool, and turn what it returns (or raises) into the run's answer."""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .function_spec import FunctionSpec, ParamError, convert_params
from .manifest import ManifestError, load_manifest
from .usercode import UserCodeError, load_user_function, user_error_from_text, wrap_user_exception


@dataclass(frozen=True)
class FunctionContext:
    """`ctx` of a function: which use case, function and run this is."""

    usecase: str
    function: str
    run_id: str


class BadResult(TypeError):
    """What the function returned cannot be a run's result."""


class RunRefused(ValueError):
    """The request itself is wrong (a folder outside the roots, an unknown function): the platform's error."""


def failed(code: str, message: str, **where: Any) -> dict[str, Any]:
    return {"state": "failed", "error": {"code": code, "message": message, **where}}


def json_safe(value: Any) -> Any:
    """Spark/Python values → JSON: datetimes and dates ISO (UTC), Decimals floats, Rows and
    maps objects, bytes base64, NaN and infinities null."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return aware.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    as_dict = getattr(value, "asDict", None)  # pyspark Row
    if callable(as_dict):
        return {str(k): json_safe(v) for k, v in as_dict().items()}
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(item) for item in value]
    raise BadResult(f"{type(value).__name__} is not a JSON value")


def resolve_folder(folder: str, roots: list[Path]) -> Path:
    """The real path of `folder` if it lies under one of the roots (symlinks resolved); RunRefused otherwise."""
    real = Path(folder).resolve()
    for root in roots:
        base = root.resolve()
        if real != base and real.is_relative_to(base):
            return real
    raise RunRefused(f"folder {folder!r} is not under a use case root ({', '.join(str(r) for r in roots)})")


class FunctionCache:
    """Loaded functions by (file, modification time): a changed file is imported again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, int], Callable[..., Any]] = {}

    def get(self, usecase: str, file: Path, name: str) -> Callable[..., Any]:
        key = (str(file), name, file.stat().st_mtime_ns)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load_user_function(usecase, file, name)
            return self._loaded[key]


def _spec(folder: Path, usecase: str, function: str) -> FunctionSpec:
    try:
        manifest = load_manifest(folder)
    except ManifestError as error:
        raise RunRefused(str(error)) from error
    if manifest.name != usecase:
        raise RunRefused(f"folder {folder} holds use case {manifest.name!r}, not {usecase!r}")
    if function not in manifest.functions:
        raise RunRefused(f"use case {usecase!r} has no function {function!r}")
    return manifest.functions[function]


def _result(value: Any, max_rows: int) -> dict[str, Any] | None:
    """The finished result of what the function returned; None when it is not a DataFrame, dict or list."""
    from pyspark.sql import DataFrame

    if isinstance(value, DataFrame):
        rows = value.limit(max_rows + 1).collect()
        columns = [{"name": f.name, "type": f.dataType.simpleString()} for f in value.schema.fields]
        return {"kind": "rows", "columns": columns, "rows": [[json_safe(v) for v in row] for row in rows[:max_rows]], "truncated": len(rows) > max_rows}
    if isinstance(value, (dict, list)):
        return {"kind": "value", "value": json_safe(value)}
    return None


class Runs:
    """The runs of one session: what is running, and cancelling by run id."""

    def __init__(self, spark: Any, roots: list[Path], before_run: Callable[[], None] = lambda: None):
        self.spark = spark
        self.roots = roots
        self.before_run = before_run
        self.functions = FunctionCache()
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._cancelled: set[str] = set()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def cancel(self, run_id: str) -> bool:
        with self._lock:
            if run_id not in self._running:
                return False
            self._cancelled.add(run_id)
        self.spark.sparkContext.cancelJobGroup(run_id)
        return True

    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to POST /runs (always a state; the HTTP status is 200)."""
        run_id = str(request.get("run_id") or "")
        if not run_id:
            return failed("platform", "the request has no run_id")
        with self._lock:
            if run_id in self._running:
                return failed("platform", f"run {run_id} is already running")
            self._running.add(run_id)
        try:
            return self._execute(run_id, request)
        finally:
            with self._lock:
                self._running.discard(run_id)
                was_cancelled = run_id in self._cancelled
                self._cancelled.discard(run_id)
            if was_cancelled:
                self.spark.sparkContext.cancelJobGroup(run_id)  # jobs the code started after the cancel

    def _was_cancelled(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._cancelled

    def _execute(self, run_id: str, request: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        usecase, function = str(request.get("usecase", "")), str(request.get("function", ""))
        try:
            folder = resolve_folder(str(request.get("folder", "")), self.roots)
            spec = _spec(folder, usecase, function)
            raw_params = request.get("params") or {}
            if not isinstance(raw_params, dict):
                raise RunRefused("params must be an object")
            params = convert_params(spec, raw_params)
        except (RunRefused, ParamError) as error:
            return failed("platform", str(error))
        try:
            code = self.functions.get(usecase, folder / spec.file, function)
        except UserCodeError as error:
            return failed("user_code", error.user_message, file=error.file, line=error.line, function=error.function)
        max_rows = int(request.get("max_rows") or spec.max_rows)
        self.before_run()
        load_ms = int((time.monotonic() - started) * 1000)
        context = self.spark.sparkContext
        # Thread-local: this request's thread is the JVM thread its jobs are submitted from.
        context.setJobGroup(run_id, f"{usecase}.{function}", interruptOnCancel=True)
        context.setLocalProperty("spark.scheduler.pool", function)
        ran = time.monotonic()
        try:
            value = code(self.spark, params, FunctionContext(usecase, function, run_id))
            if self._was_cancelled(run_id):
                return {"state": "cancelled"}
            result = _result(value, max_rows)
        except BadResult as error:
            return failed("bad_result", f"{function}() returned {error}; return a DataFrame, a dict or a list of JSON values", function=function)
        except Exception as error:  # the user's code (or a Spark job it started) raised
            if self._was_cancelled(run_id):
                return {"state": "cancelled"}
            user = wrap_user_exception(usecase, folder, error)
            if user.file is None:
                user = user_error_from_text(usecase, folder, str(error)) or user
            return failed("user_code", user.user_message, file=user.file, line=user.line, function=user.function)
        finally:
            context.setLocalProperty("spark.scheduler.pool", None)
            context.setLocalProperty("spark.jobGroup.id", None)
        if self._was_cancelled(run_id):
            return {"state": "cancelled"}
        if result is None:
            return failed("bad_result", f"{function}() returned {type(value).__name__}; return a DataFrame, a dict or a list", function=function)
        return {"state": "finished", "result": result, "timings": {"load_ms": load_ms, "run_ms": int((time.monotonic() - ran) * 1000)}}
