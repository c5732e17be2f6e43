"""The function session end to end (docs/RUNS.md): `launch_job.py --serve-functions` in its
own process on a local Spark, over history written with write_history; then SIGTERM."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from diamond_sdk._runtime.history import write_history
from diamond_sdk.testing import local_spark

SDK = Path(__file__).resolve().parents[1]
SECRET = "s3cret-for-tests"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
FUNCTIONS = '''\
import time

from pyspark.sql import functions as F


def numbers(spark, params, ctx):
    return spark.range(params["n"]).select(F.col("id"), (F.col("id") * 0.5).alias("half"), F.lit(ctx.run_id).alias("run"))


def summary(spark, params, ctx):
    rows = spark.table("records").where(F.col("customer_id") == params["customer_id"]).collect()
    return {"records": len(rows), "since": params["since"], "window_s": params["window"].total_seconds(), "first": rows[0]["event_time"]}


def boom(spark, params, ctx):
    values = {"a": 1}
    return values["missing"]


def not_json(spark, params, ctx):
    return 42


def slow(spark, params, ctx):
    # Hours on 2 cores, in short tasks: FAIR shares cores between jobs task by task, never mid-task.
    return {"n": spark.range(0, 10 ** 13, 1, 100_000).where((F.col("id") * 7) % 11 == 3).count()}
'''
MANIFEST = '''\
name: fn_case
description: functions for the server tests
owner: tests
functions:
  numbers: {params: {n: {type: int, default: 5}}, limits: {max_rows: 3}}
  summary:
    params:
      customer_id: {type: string, required: true}
      since: {type: timestamp, default: 30d}
      window: {type: duration, default: 1m}
  boom: {}
  not_json: {}
  slow: {}
'''


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    base = tmp_path_factory.mktemp("function-session")
    root = base / "root"
    folder = root / "fn_case"
    folder.mkdir(parents=True)
    (folder / "usecase.yaml").write_text(MANIFEST)
    (folder / "functions.py").write_text(FUNCTIONS)
    (base / "outside" / "fn_case").mkdir(parents=True)
    for name in ("usecase.yaml", "functions.py"):
        (base / "outside" / "fn_case" / name).write_text((folder / name).read_text())
    history = base / "history"
    write_history(local_spark(), history, records=[{"record_id": "r1", "customer_id": "acme", "source": "t", "event_time": "2026-11-01T10:00:00Z",
                                                    "type": "purchase", "amount": 3.0, "currency": "EUR", "ingested_at": "2026-11-01T10:00:01Z"},
                                                   # today: inside interactive SQL's cached window (the acme one is not)
                                                   {"record_id": "r2", "customer_id": "globex", "source": "t", "event_time": NOW, "type": "refund",
                                                    "amount": 5.0, "currency": "USD", "ingested_at": NOW}])
    (base / "secret").write_text(SECRET + "\n")
    session_file, pid_file = base / "session.json", base / "session.pid"
    env = {**os.environ, "PYTHONPATH": str(SDK), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false --conf spark.driver.host=127.0.0.1 "
                                  "--conf spark.driver.bindAddress=127.0.0.1 --conf spark.scheduler.mode=FAIR --conf spark.sql.shuffle.partitions=2 pyspark-shell"}
    log = open(base / "session.log", "w")
    process = subprocess.Popen([sys.executable, str(SDK / "launch_job.py"), "--serve-functions", "--session-file", str(session_file), "--pid-file", str(pid_file),
                                "--secret-file", str(base / "secret"), "--history-dir", str(history), "--usecase-root", str(root)],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while not session_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the session did not start: {(base / 'session.log').read_text()[-3000:]}")
        time.sleep(0.2)
    info = json.loads(session_file.read_text())
    yield {"info": info, "process": process, "folder": folder, "outside": base / "outside" / "fn_case", "pid_file": pid_file, "log": base / "session.log"}
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def call(session, method, path, body=None, secret=SECRET, timeout=120):
    request = urllib.request.Request(f"http://127.0.0.1:{session['info']['port']}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def run(session, function, params=None, run_id=None, folder=None, **extra):
    body = {"run_id": run_id or f"run-{function}-{time.monotonic_ns()}", "usecase": "fn_case", "folder": str(folder or session["folder"]),
            "function": function, "params": params or {}, "timeout_ms": 60_000, **extra}
    status, answer = call(session, "POST", "/runs", body)
    assert status == 200
    return answer


def test_the_session_file_says_where_it_listens(session):
    info = session["info"]
    assert set(info) == {"pid", "port", "readyAt", "session_ms"}
    assert info["pid"] == session["process"].pid == int(session["pid_file"].read_text())
    assert info["port"] > 0 and info["session_ms"] > 0


def test_a_dataframe_result_is_its_first_max_rows_rows_with_typed_columns(session):
    answer = run(session, "numbers", {"n": 5}, run_id="rows-1")
    assert answer["state"] == "finished", answer
    result = answer["result"]
    assert result["columns"] == [{"name": "id", "type": "bigint"}, {"name": "half", "type": "double"}, {"name": "run", "type": "string"}]
    assert result["rows"] == [[0, 0.0, "rows-1"], [1, 0.5, "rows-1"], [2, 1.0, "rows-1"]] and result["truncated"] is True
    assert set(answer["timings"]) == {"load_ms", "run_ms"}
    assert run(session, "numbers", {"n": 2}, max_rows=10)["result"]["truncated"] is False


def test_params_are_typed_and_history_is_in_the_views(session):
    answer = run(session, "summary", {"customer_id": "acme", "since": "2026-10-01T00:00:00Z", "window": 90_000})
    assert answer["state"] == "finished", answer
    assert answer["result"] == {"kind": "value", "value": {"records": 1, "since": "2026-10-01T00:00:00Z", "window_s": 90.0, "first": "2026-11-01T10:00:00Z"}}


def test_a_raising_function_shows_the_users_file_and_line(session):
    answer = run(session, "boom")
    assert answer["state"] == "failed"
    error = answer["error"]
    assert error["code"] == "user_code" and error["file"] == str(session["folder"].resolve() / "functions.py")
    assert (error["line"], error["function"]) == (17, "boom") and "KeyError" in error["message"]


def test_a_result_that_is_not_a_dataframe_dict_or_list_is_a_bad_result(session):
    answer = run(session, "not_json")
    assert answer["state"] == "failed" and answer["error"]["code"] == "bad_result" and "int" in answer["error"]["message"]


def test_a_bad_param_or_an_unknown_function_fails_as_the_platforms(session):
    assert run(session, "summary", {"customer_id": 7})["error"]["code"] == "platform"
    assert "no function" in run(session, "nothing")["error"]["message"]


def test_a_folder_outside_the_roots_is_refused(session):
    answer = run(session, "numbers", folder=session["outside"])
    assert answer["state"] == "failed" and answer["error"]["code"] == "platform" and "not under a use case root" in answer["error"]["message"]


def test_requests_without_the_secret_are_401(session):
    assert call(session, "GET", "/health", secret="wrong")[0] == 401
    assert call(session, "POST", "/runs", {"run_id": "x"}, secret="")[0] == 401
    assert call(session, "GET", "/health") == (200, {"running": [], "sql": []})


def test_a_cancelled_run_ends_cancelled_and_another_run_goes_on(session):
    answers = {}
    slow = threading.Thread(target=lambda: answers.update(slow=run(session, "slow", run_id="slow-1")))
    slow.start()
    deadline = time.monotonic() + 60
    while call(session, "GET", "/health")[1]["running"] != ["slow-1"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)  # its Spark job is running
    assert run(session, "numbers", {"n": 1}, max_rows=5)["state"] == "finished"  # while the slow one runs
    assert "slow" not in answers, answers
    assert call(session, "POST", "/runs/slow-1/cancel", {}) == (200, {"cancelled": True})
    slow.join(60)
    assert answers["slow"] == {"state": "cancelled"}
    assert call(session, "POST", "/runs/slow-1/cancel", {}) == (200, {"cancelled": False})
    assert call(session, "GET", "/health")[1] == {"running": [], "sql": []}


def sql(session, text, **extra):
    status, answer = call(session, "POST", "/sql", {"query_id": f"q-{time.monotonic_ns()}", "sql": text, "max_rows": 100, "timeout_ms": 60_000, **extra})
    assert status == 200
    return answer


def test_sql_reads_the_cached_recent_window_and_the_whole_history(session):
    recent = sql(session, "SELECT customer_id, count(*) AS n, sum(amount) AS spend FROM records GROUP BY customer_id")
    assert recent["state"] == "finished", recent
    assert recent["result"]["rows"] == [["globex", 1, 5.0]]
    assert [c["name"] for c in recent["result"]["columns"]] == ["customer_id", "n", "spend"]
    everything = sql(session, "WITH r AS (SELECT * FROM records_all) SELECT customer_id FROM r ORDER BY customer_id")
    assert everything["result"]["rows"] == [["acme"], ["globex"]]
    assert sql(session, "SELECT count(*) FROM feedback")["result"]["rows"] == [[0]]
    assert sql(session, "SELECT id FROM range(5)", max_rows=2)["result"] == {"kind": "rows", "columns": [{"name": "id", "type": "bigint"}], "rows": [[0], [1]], "truncated": True}


@pytest.mark.parametrize("text, says", [
    ("DROP VIEW records", "DropView is not a query"),
    ("SET spark.sql.ansi.enabled=false", "SetCommand is not a query"),
    ("CACHE TABLE records", "CacheTable is not a query"),
    ("INSERT INTO records SELECT * FROM records", "InsertIntoStatement is not a query"),
    ("WITH t AS (SELECT 1) INSERT INTO records SELECT * FROM t", "InsertIntoStatement is not a query"),
    ("SELECT reflect('java.lang.System', 'getProperty', 'user.home')", "reflect() is not allowed"),
    ("SELECT (SELECT java_method('java.lang.Math', 'abs', -1))", "java_method() is not allowed"),
    ("SELECT 1; DROP VIEW records", "Syntax error"),
])
def test_sql_that_is_not_one_read_only_query_is_refused(session, text, says):
    answer = sql(session, text)
    assert answer["state"] == "failed" and answer["error"]["code"] == "sql_refused", answer
    assert says in answer["error"]["message"]
    assert sql(session, "SELECT count(*) FROM records_all")["result"]["rows"] == [[2]]  # the views are intact


def test_sql_cannot_read_files_by_path_and_bad_sql_says_why(session):
    by_path = sql(session, "SELECT * FROM parquet.`/etc`")
    assert by_path["state"] == "failed" and by_path["error"]["code"] == "bad_sql", by_path
    unknown = sql(session, "SELECT no_such_column FROM records")
    assert unknown["state"] == "failed" and "no_such_column" in unknown["error"]["message"] and "\tat " not in unknown["error"]["message"]


def test_sql_over_its_time_limit_is_timed_out_and_the_session_goes_on(session):
    answer = sql(session, "SELECT count(*) FROM range(0, 10000000000000, 1, 100000) WHERE (id * 7) % 11 = 3", timeout_ms=2000)
    assert answer == {"state": "timed-out"}
    assert sql(session, "SELECT 1 AS one")["result"]["rows"] == [[1]]
    assert call(session, "GET", "/health")[1] == {"running": [], "sql": []}


def test_sigterm_stops_the_session_cleanly(session):
    process = session["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(90) == 0, session["log"].read_text()[-3000:]
