"""`functions:` in usecase.yaml, `describe`, parameter conversion and history retention
(docs/RUNS.md). No Spark here: describe must not need it."""
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from diamond_sdk._runtime import functions
from diamond_sdk._runtime.function_spec import ParamError, convert_params, span_ms
from diamond_sdk._runtime.function_runs import RunRefused, json_safe, resolve_folder
from diamond_sdk._runtime.history import delete_old_days
from diamond_sdk._runtime.manifest import ManifestError, load_manifest

USECASES = Path(__file__).resolve().parents[2]
SDK = USECASES / "sdk"
HEADER = "name: my_fn\ndescription: d\nowner: o\n"
CODE = "def summary(spark, params, ctx):\n    return {}\n"


def write_case(tmp_path, functions_yaml, code=CODE, header=HEADER):
    folder = tmp_path / "my_fn"
    folder.mkdir()
    (folder / "usecase.yaml").write_text(header + functions_yaml)
    (folder / "functions.py").write_text(code)
    return folder


def problems_of(folder):
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    return caught.value.problems


def test_describe_prints_the_contract_with_defaults_filled_in(tmp_path):
    folder = write_case(tmp_path, """functions:
  summary:
    params:
      customer_id: { type: string, required: true }
      since: { type: timestamp, default: 30d }
      at: { type: timestamp, default: "2026-11-01T10:00:00+01:00" }
      window: { type: duration, default: 5m }
      limit: { type: int, default: 10 }
      ratio: { type: double, default: 1 }
      strict: bool
""".replace("strict: bool", "strict: { type: bool, default: false }"))
    result = subprocess.run([sys.executable, "-m", "diamond_sdk._runtime.functions", "describe", str(folder)], cwd=SDK, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body == {"usecase": "my_fn", "functions": {"summary": {
        "file": "functions.py", "description": "",
        "params": {
            "customer_id": {"type": "string", "required": True, "default": None},
            "since": {"type": "timestamp", "required": False, "default": "30d"},
            "at": {"type": "timestamp", "required": False, "default": "2026-11-01T09:00:00Z"},
            "window": {"type": "duration", "required": False, "default": 300_000},
            "limit": {"type": "int", "required": False, "default": 10},
            "ratio": {"type": "double", "required": False, "default": 1.0},
            "strict": {"type": "bool", "required": False, "default": False},
        },
        "limits": {"start_timeout_ms": 30_000, "run_timeout_ms": 60_000, "max_rows": 10_000},
        "exclusive": False, "concurrency": 2,
    }}}


def test_describe_does_not_import_spark_or_the_use_cases_code(tmp_path):
    folder = write_case(tmp_path, "functions:\n  summary: {}\n", code="raise SystemExit('imported!')\ndef summary(spark, params, ctx):\n    return {}\n")
    probe = "import sys, runpy; sys.argv=['x','describe',sys.argv[1]]\ntry: runpy.run_module('diamond_sdk._runtime.functions', run_name='__main__')\nexcept SystemExit as e: print('pyspark' in sys.modules, e.code)"
    result = subprocess.run([sys.executable, "-c", probe, str(folder)], cwd=SDK, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip().splitlines()[-1] == "False 0", result.stdout + result.stderr


def test_the_example_use_case_describes_itself():
    body = functions.describe(USECASES / "customer_insights")
    spec = body["functions"]["customer_summary"]
    assert spec["params"] == {"customer_id": {"type": "string", "required": True, "default": None}, "since": {"type": "timestamp", "required": False, "default": "30d"}}
    assert load_manifest(USECASES / "customer_insights").variants == {}


def test_a_use_case_with_functions_only_needs_no_variants_but_one_with_neither_does(tmp_path):
    assert load_manifest(write_case(tmp_path, "functions:\n  summary: {}\n")).functions["summary"].concurrency == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "usecase.yaml").write_text("name: other\ndescription: d\nowner: o\n")
    assert [field for field, _, _ in problems_of(other)] == ["variants"]


@pytest.mark.parametrize("yaml_text, field, fix", [
    ("functions:\n  summary: {colour: blue}\n", "functions.summary.colour", "use one of"),
    ("functions:\n  Summary: {}\n", "functions.Summary", "lower_snake_case"),
    ("functions:\n  summary: {file: ../x.py}\n", "functions.summary.file", "inside the use case folder"),
    ("functions:\n  summary: {file: other.py}\n", "functions.summary.file", "create"),
    ("functions:\n  missing: {}\n", "functions.missing.file", "define def missing(spark, params, ctx)"),
    ("functions:\n  summary: {params: {x: {type: text, required: true}}}\n", "functions.summary.params.x.type", "use one of string, int"),
    ("functions:\n  summary: {params: {x: {type: int}}}\n", "functions.summary.params.x", "set required: true or give it a default"),
    ("functions:\n  summary: {params: {x: {type: int, required: true, default: 1}}}\n", "functions.summary.params.x", "keep one"),
    ("functions:\n  summary: {params: {x: {type: int, default: many}}}\n", "functions.summary.params.x.default", "whole number"),
    ("functions:\n  summary: {params: {x: {type: timestamp, default: yesterday}}}\n", "functions.summary.params.x.default", "ISO-8601"),
    ("functions:\n  summary: {params: {x: {type: duration, default: soon}}}\n", "functions.summary.params.x.default", "500ms"),
    ("functions:\n  summary: {params: {x: {type: bool, default: 1}}}\n", "functions.summary.params.x.default", "true or false"),
    ("functions:\n  summary: {limits: {run_timeout: forever}}\n", "functions.summary.limits.run_timeout", "30s"),
    ("functions:\n  summary: {limits: {max_rows: 0}}\n", "functions.summary.limits.max_rows", "positive whole number"),
    ("functions:\n  summary: {limits: {memory: 1g}}\n", "functions.summary.limits.memory", "start_timeout"),
    ("functions:\n  summary: {exclusive: maybe}\n", "functions.summary.exclusive", "true"),
    ("functions:\n  summary: {concurrency: 0}\n", "functions.summary.concurrency", "positive whole number"),
    ("functions: []\n", "functions", "map each function name"),
])
def test_each_bad_function_declaration_names_the_field_and_the_fix(tmp_path, yaml_text, field, fix):
    folder = write_case(tmp_path, yaml_text)
    found = problems_of(folder)
    assert [f for f, _, _ in found] == [field], found
    assert fix in found[0][2]
    result = subprocess.run([sys.executable, "-m", "diamond_sdk._runtime.functions", "describe", str(folder)], cwd=SDK, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert json.loads(result.stdout)["problems"] == [list(problem) for problem in found]


def test_an_entry_point_with_the_wrong_signature_or_a_syntax_error_is_reported_without_running_it(tmp_path):
    folder = write_case(tmp_path, "functions:\n  summary: {}\n", code="def summary(spark, params):\n    return {}\n")
    [(field, problem, _)] = problems_of(folder)
    assert field == "functions.summary.file" and "2 parameters" in problem
    (folder / "functions.py").write_text("def summary(:\n")
    [(_, problem, _)] = problems_of(folder)
    assert "syntax error at line 1" in problem


def test_every_problem_is_reported_at_once(tmp_path):
    folder = write_case(tmp_path, "functions:\n  summary: {concurrency: 0, exclusive: 3, params: {x: {type: int}}}\n", header="name: my_fn\n")
    fields = [f for f, _, _ in problems_of(folder)]
    assert fields == ["description", "owner", "functions.summary.params.x", "functions.summary.exclusive", "functions.summary.concurrency"]


# ── parameters ───────────────────────────────────────────────────────────────

def spec_of(tmp_path, params_yaml):
    return load_manifest(write_case(tmp_path, f"functions:\n  summary:\n    params: {params_yaml}\n")).functions["summary"]


def test_params_arrive_as_python_values_timestamps_aware_utc_and_durations_timedeltas(tmp_path):
    spec = spec_of(tmp_path, "{c: {type: string, required: true}, since: {type: timestamp, default: 30d}, at: {type: timestamp, required: true},"
                             " window: {type: duration, default: 5m}, n: {type: int, default: 3}, x: {type: double, default: 0.5}, b: {type: bool, required: true}}")
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)
    values = convert_params(spec, {"c": "acme", "at": "2026-11-01T10:00:00+02:00", "b": True, "x": 2}, now=now)
    assert values == {"c": "acme", "since": now - dt.timedelta(days=30), "at": dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc),
                      "window": dt.timedelta(minutes=5), "n": 3, "x": 2.0, "b": True}
    assert values["at"].tzinfo == dt.timezone.utc and isinstance(values["x"], float)
    assert convert_params(spec, {"c": "a", "at": "2026-11-01T10:00:00Z", "b": False, "window": 1500}, now=now)["window"] == dt.timedelta(milliseconds=1500)


@pytest.mark.parametrize("given, name", [
    ({"b": True}, "c"),                                    # required and missing
    ({"c": 1, "b": True}, "c"),                            # not a string
    ({"c": "a", "b": "yes"}, "b"),                         # not a bool
    ({"c": "a", "b": True, "n": True}, "n"),               # a bool is not an int
    ({"c": "a", "b": True, "since": "last week"}, "since"),
    ({"c": "a", "b": True, "other": 1}, "other"),          # not declared
])
def test_a_param_that_does_not_fit_names_itself(tmp_path, given, name):
    spec = spec_of(tmp_path, "{c: {type: string, required: true}, b: {type: bool, required: true}, n: {type: int, default: 1}, since: {type: timestamp, default: 7d}}")
    with pytest.raises(ParamError) as caught:
        convert_params(spec, given)
    assert caught.value.param == name


def test_spans_and_json_safe_values():
    assert [span_ms(v) for v in ("500ms", "30s", "5m", "12h", "7d", 250, "soon", True)] == [500, 30_000, 300_000, 43_200_000, 604_800_000, 250, None, None]
    import decimal

    assert json_safe({"t": dt.datetime(2026, 11, 1, 10, 0), "d": decimal.Decimal("1.50"), "n": float("nan"), "l": (1, dt.date(2026, 11, 1))}) == \
        {"t": "2026-11-01T10:00:00Z", "d": 1.5, "n": None, "l": [1, "2026-11-01"]}


def test_code_is_loaded_only_from_a_folder_under_a_root(tmp_path):
    root = tmp_path / "root"
    (root / "case").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    assert resolve_folder(str(root / "case"), [root]) == (root / "case").resolve()
    for folder in (tmp_path / "outside", root / "case" / ".." / "..", root / "escape", root):
        with pytest.raises(RunRefused):
            resolve_folder(str(folder), [root])


def test_retention_deletes_only_days_older_than_it(tmp_path):
    for view in ("records", "feedback"):
        for day in ("2026-09-01", "2026-10-04", "2026-10-05", "2026-12-03"):
            (tmp_path / view / f"day={day}").mkdir(parents=True)
    (tmp_path / "records" / "_spark_metadata").mkdir()
    removed = delete_old_days(tmp_path, 60, today=dt.date(2026, 12, 3))
    assert removed == ["records/day=2026-09-01", "records/day=2026-10-04", "feedback/day=2026-09-01", "feedback/day=2026-10-04"]
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["_spark_metadata", "day=2026-10-05", "day=2026-12-03"]
