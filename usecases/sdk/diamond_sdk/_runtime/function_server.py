"""A function session (docs/RUNS.md, "The function session protocol"):

  spark-submit usecases/sdk/launch_job.py --serve-functions --session-file F --pid-file P \\
      --secret-file S --history-dir H --usecase-root R [--usecase-root R2 …] \\
      [--sql-cache-days 7] [--sql-refresh-seconds 60]

Starts the SparkSession (FAIR scheduler), defines the views `records` and `feedback` over
the history, listens on 127.0.0.1 (a port of its choice) and writes F by rename:
{"pid", "port", "readyAt", "session_ms"}. Every request must carry `Authorization: Bearer
<contents of S>`. POST /runs, POST /runs/<id>/cancel, POST /sql, POST /sql/<id>/cancel,
GET /health. SIGTERM: cancel what runs, stop the server and the session, exit 0.
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .function_runs import Runs
from .history import register_views
from .sql_queries import SqlQueries

log = logging.getLogger("diamond.functions")
# Views list their files when defined; a run redefines them when they are older than this,
# so a run sees what the archiver wrote a few seconds earlier.
VIEW_REFRESH_SECONDS = 5.0
MAX_BODY_BYTES = 1_000_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diamond-runner --serve-functions")
    parser.add_argument("--serve-functions", action="store_true")
    parser.add_argument("--session-file", required=True)
    parser.add_argument("--pid-file", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--history-dir", required=True)
    parser.add_argument("--usecase-root", action="append", required=True)
    parser.add_argument("--sql-cache-days", type=int, default=7, help="days of history interactive SQL keeps cached")
    parser.add_argument("--sql-refresh-seconds", type=float, default=60.0, help="how often that cache is rebuilt")
    return parser.parse_args(argv)


def session_config() -> dict[str, str]:
    """Settings a function session needs whoever builds it (spark-submit or a test)."""
    return {
        "spark.scheduler.mode": "FAIR",
        # Retention deletes day folders the archiver's file log still lists.
        "spark.sql.files.ignoreMissingFiles": "true",
    }


class ViewRefresher:
    def __init__(self, spark: Any, history_dir: str):
        self.spark = spark
        self.history_dir = history_dir
        self._lock = threading.Lock()
        self._defined_at = 0.0

    def __call__(self) -> None:
        with self._lock:
            if time.monotonic() - self._defined_at >= VIEW_REFRESH_SECONDS:
                register_views(self.spark, self.history_dir)
                self._defined_at = time.monotonic()


class FunctionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, runs: Runs, sql: SqlQueries, secret: str):
        self.runs = runs
        self.sql = sql
        self.secret = secret
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: FunctionServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — http.server's name
        pass  # requests are logged as runs, not as HTTP lines

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {self.server.secret}".encode()):
            return True
        self.close_connection = True  # its body is unread: the connection cannot carry another request
        self._send(401, {"error": "unauthorized"})
        return False

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"error": "body too large"})
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return None
        if not isinstance(body, dict):
            self._send(400, {"error": "body is not a JSON object"})
            return None
        return body

    def do_GET(self) -> None:  # noqa: N802 — http.server's name
        if not self._authorized():
            return
        if self.path == "/health":
            self._send(200, {"running": self.server.runs.running(), "sql": self.server.sql.running()})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        if not self._authorized():
            return
        parts = [part for part in self.path.split("?")[0].split("/") if part]
        body = self._body()
        if body is None:
            return
        if parts == ["runs"]:
            started = time.monotonic()
            answer = self.server.runs.execute(body)
            log.info("run", extra={"fields": {"run_id": body.get("run_id"), "function": f"{body.get('usecase')}.{body.get('function')}",
                                              "state": answer["state"], "ms": int((time.monotonic() - started) * 1000)}})
            self._send(200, answer)
        elif len(parts) == 3 and parts[0] == "runs" and parts[2] == "cancel":
            self._send(200, {"cancelled": self.server.runs.cancel(parts[1])})
        elif parts == ["sql"]:
            started = time.monotonic()
            answer = self.server.sql.execute(body)
            log.info("sql", extra={"fields": {"query_id": body.get("query_id"), "state": answer["state"], "ms": int((time.monotonic() - started) * 1000)}})
            self._send(200, answer)
        elif len(parts) == 3 and parts[0] == "sql" and parts[2] == "cancel":
            self._send(200, {"cancelled": self.server.sql.cancel(parts[1])})
        else:
            self._send(404, {"error": "not found"})


def write_atomically(path: str | Path, body: dict[str, Any]) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(target)


def start(spark: Any, history_dir: str, roots: list[str], secret: str, sql_cache_days: int = 7, sql_refresh_seconds: float = 60.0) -> FunctionServer:
    """Views defined, server listening in a background thread; returns it (its port is server_address[1])."""
    refresher = ViewRefresher(spark, history_dir)
    refresher()
    sql = SqlQueries(spark, history_dir, sql_cache_days, sql_refresh_seconds)
    server = FunctionServer(Runs(spark, [Path(root) for root in roots], refresher), sql, secret)
    threading.Thread(target=server.serve_forever, name="function-server", daemon=True).start()
    return server


def stop(server: FunctionServer, grace_seconds: float = 10.0) -> None:
    """Cancels what runs and lets those requests answer `cancelled` before closing."""
    server.sql.stop()
    for run_id in server.runs.running():
        server.runs.cancel(run_id)
    for query_id in server.sql.running():
        server.sql.cancel(query_id)
    deadline = time.monotonic() + grace_seconds
    while (server.runs.running() or server.sql.running()) and time.monotonic() < deadline:
        time.sleep(0.05)
    server.shutdown()
    server.server_close()


def serve(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    args = parse_args(argv)
    # Local time is UTC, so naive datetimes (PySpark's timestamps, the user's) mean UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    Path(args.pid_file).write_text(str(os.getpid()))
    secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
    if not secret:
        raise ValueError(f"{args.secret_file} is empty; a session needs a secret")
    began = time.monotonic()
    builder = SparkSession.builder.appName("diamond-functions")
    for key, value in session_config().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # A warm spare's context exists already: the scheduler mode came from spark-submit.
    if spark.sparkContext.getConf().get("spark.scheduler.mode", "FIFO") != "FAIR":
        log.warning("the session's scheduler is not FAIR; pass --conf spark.scheduler.mode=FAIR to spark-submit")
    spark.conf.set("spark.sql.files.ignoreMissingFiles", "true")
    session_ms = int((time.monotonic() - began) * 1000)
    server = start(spark, args.history_dir, args.usecase_root, secret, args.sql_cache_days, args.sql_refresh_seconds)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    port = server.server_address[1]
    write_atomically(args.session_file, {"pid": os.getpid(), "port": port, "readyAt": int(time.time() * 1000), "session_ms": session_ms})
    log.info("serving functions", extra={"fields": {"port": port, "session_ms": session_ms, "roots": args.usecase_root}})
    while not stopping.wait(0.5):
        pass
    log.info("stopping", extra={"fields": {"running": server.runs.running()}})
    stop(server)
    spark.stop()
    return 0
