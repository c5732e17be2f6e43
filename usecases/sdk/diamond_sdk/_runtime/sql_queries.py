"""Interactive SQL on a function session (docs/RUNS.md, "Interactive SQL"): read-only queries
over the history, answered from a cached recent window.

Queries run in a SparkSession of their own (`spark.newSession()`): it shares the context and
the cache with the functions' session but not its temp views or SQL settings, so nothing a
query names can change what a function sees. Its views:

  records, feedback          the last `cache_days` days, cached in memory, refreshed in the background
  records_all, feedback_all  the whole history (read from Parquet on each query)

A query is parsed first and refused unless every node of its plan is a query: no command
(SET, CACHE, CREATE, DROP, INSERT, SHOW, EXPLAIN, ADD JAR …), no reflection functions, no
`parquet.`/path`` reads of files. It then runs in its own job group, cancelled at its time limit.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

from .function_runs import json_safe
from .history import DAY_COLUMN, TABLES, table_dir, table_schema

log = logging.getLogger("diamond.sql")
# Functions that call JVM methods by name: a query could reach anything the driver can.
FORBIDDEN_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})
_QUERY_PLAN = "org.apache.spark.sql.catalyst.plans.logical."
_NOT_QUERIES = (_QUERY_PLAN + "Command", _QUERY_PLAN + "ParsedStatement")


class SqlRefused(ValueError):
    """The text is not one read-only query; the message says what to change."""


def _seq(scala_seq: Any) -> list[Any]:
    items, iterator = [], scala_seq.iterator()
    while iterator.hasNext():
        items.append(iterator.next())
    return items


def check_read_only(spark: Any, sql: str) -> None:
    """Raises SqlRefused unless `sql` parses to one query that only reads (see the module doc)."""
    jvm = spark.sparkContext._jvm
    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql)
    except Exception as error:  # py4j carries Spark's ParseException text
        message = str(error).split("\n\tat ")[0].strip()
        raise SqlRefused(message.split(": ", 1)[-1] if "ParseException" in message else message) from None
    forbidden = [jvm.java.lang.Class.forName(name) for name in _NOT_QUERIES]
    plans = [plan]
    while plans:
        node = plans.pop()
        if any(kind.isInstance(node) for kind in forbidden):
            raise SqlRefused(f"{node.nodeName()} is not a query: only SELECT, WITH … SELECT, VALUES and TABLE are allowed (read-only)")
        plans.extend(_seq(node.children()))
        plans.extend(_seq(node.innerChildren()))  # a WITH's definitions
        expressions = _seq(node.expressions())
        while expressions:
            expression = expressions.pop()
            kind = expression.getClass().getSimpleName()
            if kind == "UnresolvedFunction":
                name = str(_seq(expression.nameParts())[-1]).lower()
                if name in FORBIDDEN_FUNCTIONS:
                    raise SqlRefused(f"{name}() is not allowed: it calls JVM methods")
            if hasattr(expression, "plan") and "Subquery" in kind:
                plans.append(expression.plan())
            expressions.extend(_seq(expression.children()))


class RecentHistory:
    """The SQL session's views: the recent window cached (swapped in whole when refreshed), the full history not."""

    def __init__(self, session: Any, history_dir: str | Path, cache_days: int):
        self.session = session
        self.history_dir = history_dir
        self.cache_days = cache_days
        self._cached: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.refreshed_at: float | None = None
        self.rows: dict[str, int] = {}

    def define_full_views(self) -> None:
        for view in TABLES:
            folder = table_dir(self.history_dir, view)
            folder.mkdir(parents=True, exist_ok=True)
            self.session.read.schema(table_schema(view)).parquet(str(folder)).createOrReplaceTempView(f"{view}_all")

    def _window(self, view: str) -> Any:
        from pyspark.sql import functions as F

        first_day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=self.cache_days - 1)
        return self.session.table(f"{view}_all").where(F.col(DAY_COLUMN) >= F.lit(first_day))

    def define_uncached(self) -> None:
        """The views before the first cache is built: same rows, read from Parquet."""
        with self._lock:
            self.define_full_views()
            for view in TABLES:
                self._window(view).createOrReplaceTempView(view)

    def refresh(self) -> None:
        """Reads the window again, caches it, then swaps the views and drops the old copy."""
        with self._lock:
            self.define_full_views()  # lists the files written since
            fresh: dict[str, Any] = {}
            for view in TABLES:
                frame = self._window(view).cache()
                self.rows[view] = frame.count()  # materializes the cache before queries see it
                fresh[view] = frame
            for view, frame in fresh.items():
                frame.createOrReplaceTempView(view)
            old, self._cached = self._cached, fresh
            for frame in old.values():
                frame.unpersist()
            self.refreshed_at = time.time()


class SqlQueries:
    """Runs read-only queries with a row and a time limit; cancels them by id."""

    def __init__(self, spark: Any, history_dir: str | Path, cache_days: int, refresh_seconds: float):
        self.session = spark.newSession()
        # Files are read only through the history views.
        self.session.conf.set("spark.sql.runSQLOnFiles", "false")
        self.session.conf.set("spark.sql.files.ignoreMissingFiles", "true")
        self.session.conf.set("spark.sql.session.timeZone", "UTC")
        self.history = RecentHistory(self.session, history_dir, cache_days)
        # Serving starts at once; the first cache is built in the background.
        self.history.define_uncached()
        self.refresh_seconds = refresh_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # query id → why it was stopped ("" while running)
        threading.Thread(target=self._refresh_loop, name="sql-history-refresh", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def _refresh_loop(self) -> None:
        wait = 0.0
        while not self._stopping.wait(wait):
            wait = self.refresh_seconds
            try:
                started = time.monotonic()
                self.history.refresh()
                log.info("cached recent history", extra={"fields": {"days": self.history.cache_days, "rows": self.history.rows,
                                                                     "ms": int((time.monotonic() - started) * 1000)}})
            except Exception as error:  # the old cache stays; the next round tries again
                log.warning("refreshing the cached history failed", extra={"fields": {"error": str(error)[:500]}})

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def cancel(self, query_id: str, why: str = "cancelled") -> bool:
        with self._lock:
            if query_id not in self._running:
                return False
            self._running[query_id] = why
        self.session.sparkContext.cancelJobGroup(query_id)
        return True

    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to POST /sql: finished with rows, failed (refused or bad SQL), cancelled or timed-out."""
        query_id = str(request.get("query_id") or "")
        sql = request.get("sql")
        if not query_id or not isinstance(sql, str) or not sql.strip():
            return {"state": "failed", "error": {"code": "bad_sql", "message": "the request needs query_id and a non-empty sql string"}}
        max_rows = int(request.get("max_rows") or 1000)
        timeout_s = float(request.get("timeout_ms") or 30_000) / 1000
        try:
            check_read_only(self.session, sql)
        except SqlRefused as error:
            return {"state": "failed", "error": {"code": "sql_refused", "message": str(error)}}
        with self._lock:
            if query_id in self._running:
                return {"state": "failed", "error": {"code": "platform", "message": f"query {query_id} is already running"}}
            self._running[query_id] = ""
        context = self.session.sparkContext
        timer = threading.Timer(timeout_s, self.cancel, args=(query_id, "timed-out"))
        timer.daemon = True
        started = time.monotonic()
        try:
            context.setJobGroup(query_id, "sql", interruptOnCancel=True)
            context.setLocalProperty("spark.scheduler.pool", "sql")
            timer.start()
            frame = self.session.sql(sql)
            rows = frame.limit(max_rows + 1).collect()
            columns = [{"name": f.name, "type": f.dataType.simpleString()} for f in frame.schema.fields]
            result = {"kind": "rows", "columns": columns, "rows": [[json_safe(v) for v in row] for row in rows[:max_rows]], "truncated": len(rows) > max_rows}
        except Exception as error:
            stopped = self._stopped_why(query_id)
            if stopped:
                return {"state": stopped}
            return {"state": "failed", "error": {"code": "bad_sql", "message": _spark_message(error)}}
        finally:
            timer.cancel()
            context.setLocalProperty("spark.scheduler.pool", None)
            context.setLocalProperty("spark.jobGroup.id", None)
            with self._lock:
                self._running.pop(query_id, None)
        # Rows that arrived are the answer, even when the limit struck just after.
        return {"state": "finished", "result": result, "timings": {"run_ms": int((time.monotonic() - started) * 1000)},
                "cache": {"days": self.history.cache_days, "refreshed_at": self.history.refreshed_at}}

    def _stopped_why(self, query_id: str) -> str:
        with self._lock:
            return self._running.get(query_id, "")


def _spark_message(error: Exception) -> str:
    """Spark's own sentence (e.g. `[TABLE_OR_VIEW_NOT_FOUND] …`) without the JVM stack."""
    text = str(error).split("\n\tat ")[0].split("\nJVM stacktrace:")[0].strip()
    return text[:2000]
