"""The bare Spark baseline of the runs bench: the same customer_summary code and the same SQL
over the same Parquet history, in one warm SparkSession, with no platform in between (no
HTTP, queue, Redis or Kafka events). Settings are the function session's (spark-submit with
the platform's --conf, FAIR scheduler); the views are plain reads of the history folders, and
the SQL's `records`/`feedback` are the same recent window, cached, as a session's.

  spark-submit bare_history_queries.py <history dir> <cache days> <use case folder>

It listens on 127.0.0.1 (spark-submit does not pass stdin to the Python driver) and prints
{"ready": true, "port": N} once the views and the cache exist. POST / with one JSON command:
  {"summary": {"customer_id", "since"}} → {"ms", "result"}
  {"sql": "…"}                           → {"ms", "rows"}
SIGTERM ends it.
"""
import datetime as dt
import importlib.util
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from diamond_sdk._runtime.function_server import session_config
from diamond_sdk._runtime.history import TABLES, register_views, table_dir, table_schema


def main() -> None:
    history, cache_days, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    builder = SparkSession.builder.appName("diamond-bench-bare-history")
    for key, value in session_config().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    register_views(spark, history)
    spec = importlib.util.spec_from_file_location("bare_functions", f"{folder}/functions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sql_session = spark.newSession()
    first_day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=cache_days - 1)
    for view in TABLES:
        frame = sql_session.read.schema(table_schema(view)).parquet(str(table_dir(history, view))).where(F.col("day") >= F.lit(first_day)).cache()
        frame.count()
        frame.createOrReplaceTempView(view)

    def answer(command):
        started = time.monotonic()
        if "summary" in command:
            params = {"customer_id": command["summary"]["customer_id"], "since": dt.datetime.fromisoformat(command["summary"]["since"].replace("Z", "+00:00"))}
            reply = {"result": module.customer_summary(spark, params, None)}
        else:
            reply = {"rows": [list(row) for row in sql_session.sql(command["sql"]).collect()]}
        reply["ms"] = (time.monotonic() - started) * 1000
        return reply

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002
            pass

        def do_POST(self):  # noqa: N802
            command = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps(answer(command), default=str).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(json.dumps({"ready": True, "port": server.server_address[1]}), flush=True)
    server.serve_forever()
    spark.stop()

if __name__ == "__main__":
    main()
