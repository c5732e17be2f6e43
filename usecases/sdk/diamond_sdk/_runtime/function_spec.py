"""The `functions:` of usecase.yaml (docs/RUNS.md): typed parameters, limits, sharing mode.

Pure Python + yaml (no Spark): `describe` runs it once per code version in the orchestrator.
The entry point is checked by reading the file's syntax tree, never by importing it, so
describing a use case runs none of its code.
"""
from __future__ import annotations

import ast
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Problem = tuple[str, str, str]

PARAM_TYPES = ("string", "int", "double", "bool", "timestamp", "duration")
DEFAULT_FILE = "functions.py"
DEFAULT_START_TIMEOUT_MS = 30_000
DEFAULT_RUN_TIMEOUT_MS = 60_000
DEFAULT_MAX_ROWS = 10_000
DEFAULT_CONCURRENCY = 2
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_FUNCTION_KEYS = ("file", "description", "params", "limits", "exclusive", "concurrency")
_LIMIT_KEYS = ("start_timeout", "run_timeout", "max_rows")


@dataclass(frozen=True)
class ParamSpec:
    type: str
    required: bool
    default: Any
    """In wire form (what the orchestrator sends): timestamp an ISO string or a span back from
    now ("30d"), duration milliseconds, the others their JSON value; None when required."""

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "required": self.required, "default": self.default}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    file: str
    description: str
    params: dict[str, ParamSpec]
    start_timeout_ms: int
    run_timeout_ms: int
    max_rows: int
    exclusive: bool
    concurrency: int

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "description": self.description,
            "params": {name: spec.as_json() for name, spec in self.params.items()},
            "limits": {"start_timeout_ms": self.start_timeout_ms, "run_timeout_ms": self.run_timeout_ms, "max_rows": self.max_rows},
            "exclusive": self.exclusive, "concurrency": self.concurrency,
        }


def span_ms(value: Any) -> int | None:
    """Milliseconds of 500ms, 30s, 5m, 12h, 7d (or a bare number of ms); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = _SPAN.match(str(value)) if isinstance(value, str) else None
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)]) if match else None


def parse_timestamp(value: str) -> dt.datetime | None:
    """An aware UTC datetime of an ISO-8601 string (Z or an offset; naive means UTC)."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _default(kind: str, value: Any) -> tuple[Any, str] | None:
    """(wire form, "") of a manifest default, or (None, what is wrong)."""
    if kind == "string":
        return (value, "") if isinstance(value, str) else None
    if kind == "int":
        return (value, "") if _is_int(value) else None
    if kind == "double":
        return (float(value), "") if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "bool":
        return (value, "") if isinstance(value, bool) else None
    if kind == "duration":
        ms = span_ms(value)
        return (ms, "") if ms is not None else None
    if isinstance(value, dt.datetime):  # YAML reads an unquoted ISO timestamp as a datetime
        value = value.isoformat()
    if isinstance(value, str) and span_ms(value) is not None:
        return (value.strip(), "")
    if isinstance(value, str) and parse_timestamp(value) is not None:
        return (parse_timestamp(value).isoformat().replace("+00:00", "Z"), "")  # type: ignore[union-attr]
    return None


_DEFAULT_FIX = {
    "string": "use a string", "int": "use a whole number", "double": "use a number", "bool": "use true or false",
    "timestamp": "use an ISO-8601 time (2026-11-01T00:00:00Z) or a span back from now (7d, 12h, 30m)",
    "duration": "use a duration such as 500ms, 30s, 5m, 12h or 7d",
}


def _params(prefix: str, raw: Any, problems: list[Problem]) -> dict[str, ParamSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append((prefix, f"is {raw!r}", "map each parameter name to {type: …, required: true} or {type: …, default: …}"))
        return {}
    params: dict[str, ParamSpec] = {}
    for name, body in raw.items():
        field = f"{prefix}.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append((field, "is not a parameter name", "use lower_snake_case letters, digits and _"))
            continue
        if isinstance(body, str):
            body = {"type": body}
        if not isinstance(body, dict):
            problems.append((field, f"is {body!r}", "use {type: string, required: true} or {type: …, default: …}"))
            continue
        for key in sorted(set(body) - {"type", "required", "default", "description"}):
            problems.append((f"{field}.{key}", "is not a known field", "use type, required, default or description"))
        kind = body.get("type")
        if kind not in PARAM_TYPES:
            problems.append((f"{field}.type", f"is {kind!r}", f"use one of {', '.join(PARAM_TYPES)}"))
            continue
        required = body.get("required", False)
        if not isinstance(required, bool):
            problems.append((f"{field}.required", f"is {required!r}", "use true or false"))
            continue
        has_default = "default" in body and body["default"] is not None
        if required and has_default:
            problems.append((field, "is required and has a default", "keep one: required: true, or a default"))
            continue
        if not required and not has_default:
            problems.append((field, "has neither required: true nor a default", "set required: true or give it a default"))
            continue
        default = None
        if has_default:
            parsed = _default(kind, body["default"])
            if parsed is None:
                problems.append((f"{field}.default", f"is {body['default']!r}, not a {kind}", _DEFAULT_FIX[kind]))
                continue
            default = parsed[0]
        params[name] = ParamSpec(kind, required, default)
    return params


def _limit(field: str, value: Any, default: int, problems: list[Problem], as_span: bool) -> int:
    if value is None:
        return default
    parsed = span_ms(value) if as_span else (value if _is_int(value) else None)
    if parsed is None or parsed < 1:
        fix = "use a duration such as 30s or 2m" if as_span else "use a positive whole number, e.g. 10000"
        problems.append((field, f"is {value!r}", fix))
        return default
    return int(parsed)


def _entry_point_problem(folder: Path, file: str, name: str) -> str | None:
    """Why `file` has no top-level `def name(spark, params, ctx)`, or None."""
    path = folder / file
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        return f"has a syntax error at line {error.lineno}: {error.msg}"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args
            count = len(args.posonlyargs) + len(args.args)
            if count != 3 or args.vararg or args.kwonlyargs:
                return f"defines {name}() at line {node.lineno} with {count} parameters"
            return None
    return f"does not define {name}(spark, params, ctx) at its top level"


def parse_functions(folder: Path, raw: Any) -> tuple[dict[str, FunctionSpec], list[Problem]]:
    """The `functions:` section of `folder`'s manifest and its problems, all of them."""
    problems: list[Problem] = []
    if raw is None:
        return {}, problems
    if not isinstance(raw, dict) or not raw:
        return {}, [("functions", f"is {raw!r}", "map each function name to {file, params, …}, e.g. functions: {customer_summary: {params: …}}")]
    functions: dict[str, FunctionSpec] = {}
    for name, body in raw.items():
        field = f"functions.{name}"
        before = len(problems)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append((field, "is not a function name", "use lower_snake_case letters, digits and _ (it is the Python function's name)"))
            continue
        body = {} if body is None else body
        if not isinstance(body, dict):
            problems.append((field, f"is {body!r}", "use a mapping with file, description, params, limits, exclusive, concurrency"))
            continue
        for key in sorted(set(body) - set(_FUNCTION_KEYS)):
            problems.append((f"{field}.{key}", "is not a known field", f"remove it or use one of {', '.join(_FUNCTION_KEYS)}"))
        file = body.get("file", DEFAULT_FILE)
        if not isinstance(file, str) or not file.endswith(".py") or Path(file).is_absolute() or ".." in Path(file).parts:
            problems.append((f"{field}.file", f"is {file!r}", "name a .py file inside the use case folder"))
        elif not (folder / file).is_file():
            problems.append((f"{field}.file", f"names {file}, which does not exist", f"create {folder / file} with def {name}(spark, params, ctx)"))
        else:
            problem = _entry_point_problem(folder, file, name)
            if problem:
                problems.append((f"{field}.file", f"{file} {problem}", f"define def {name}(spark, params, ctx) in {file}"))
        description = body.get("description", "")
        if not isinstance(description, str):
            problems.append((f"{field}.description", f"is {description!r}", "say in one sentence what it returns"))
        params = _params(f"{field}.params", body.get("params"), problems)
        limits = body.get("limits") or {}
        if not isinstance(limits, dict):
            problems.append((f"{field}.limits", f"is {limits!r}", "use {start_timeout: 30s, run_timeout: 60s, max_rows: 10000}"))
            limits = {}
        for key in sorted(set(limits) - set(_LIMIT_KEYS)):
            problems.append((f"{field}.limits.{key}", "is not a known limit", f"use one of {', '.join(_LIMIT_KEYS)}"))
        start_ms = _limit(f"{field}.limits.start_timeout", limits.get("start_timeout"), DEFAULT_START_TIMEOUT_MS, problems, True)
        run_ms = _limit(f"{field}.limits.run_timeout", limits.get("run_timeout"), DEFAULT_RUN_TIMEOUT_MS, problems, True)
        max_rows = _limit(f"{field}.limits.max_rows", limits.get("max_rows"), DEFAULT_MAX_ROWS, problems, False)
        exclusive = body.get("exclusive", False)
        if not isinstance(exclusive, bool):
            problems.append((f"{field}.exclusive", f"is {exclusive!r}", "use true (a session of its own) or false (shares one)"))
        concurrency = body.get("concurrency", DEFAULT_CONCURRENCY)
        if not _is_int(concurrency) or concurrency < 1:
            problems.append((f"{field}.concurrency", f"is {concurrency!r}", "use a positive whole number, e.g. 2"))
        if len(problems) == before:
            functions[name] = FunctionSpec(name, file, description.strip(), params, start_ms, run_ms, max_rows, exclusive, concurrency)
    return functions, problems


class ParamError(ValueError):
    """A run's parameter does not fit the function's declaration."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"parameter {name!r} {problem}")
        self.param = name


def _resolve_timestamp(text: str, now: dt.datetime) -> dt.datetime | None:
    back = span_ms(text)
    if back is not None and not text.strip().lstrip("-").isdigit():
        return now - dt.timedelta(milliseconds=back)
    return parse_timestamp(text)


def convert_params(spec: FunctionSpec, given: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """Wire-form params (docs/RUNS.md: timestamps ISO strings, durations ms) → Python values,
    defaults filled in; a span default such as 30d is resolved against `now`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise ParamError(unknown[0], f"is not a parameter of {spec.name} (it takes {', '.join(spec.params) or 'none'})")
    values: dict[str, Any] = {}
    for name, param in spec.params.items():
        value = given.get(name, param.default)
        if value is None:
            raise ParamError(name, f"is required ({param.type})")
        values[name] = _convert(name, param.type, value, now)
    return values


def _convert(name: str, kind: str, value: Any, now: dt.datetime) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "int" and _is_int(value):
        return value
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "double" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "duration" and (_is_int(value) or isinstance(value, float)) and value >= 0:
        return dt.timedelta(milliseconds=value)
    if kind == "duration" and isinstance(value, str) and span_ms(value) is not None:
        return dt.timedelta(milliseconds=span_ms(value) or 0)
    if kind == "timestamp" and isinstance(value, str):
        resolved = _resolve_timestamp(value, now)
        if resolved is not None:
            return resolved
    raise ParamError(name, f"is {value!r}; expected {kind}")
