"""`usecase.yaml`: what a use case declares about itself, validated with messages that name
the field and the fix."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .function_spec import FunctionSpec, parse_functions

MANIFEST_FILE = "usecase.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_VARIANT = re.compile(r"^[A-Z]$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)\s*$")
_MEMORY = re.compile(r"^\d+[mMgG]$")
_SPARK_INTERVAL = re.compile(r"^\s*\d+\s+(milliseconds?|seconds?|minutes?|hours?|days?)\s*$")
DEFAULT_WATERMARK = "10 minutes"


class ManifestError(ValueError):
    """The manifest is invalid. `problems` lists (field, problem, fix) for every error found."""

    def __init__(self, folder: Path, problems: list[tuple[str, str, str]]):
        self.folder = folder
        self.problems = problems
        lines = [f"  - {name}: {problem} → {fix}" for name, problem, fix in problems]
        super().__init__(f"{folder / MANIFEST_FILE} is invalid:\n" + "\n".join(lines))


@dataclass(frozen=True)
class Resources:
    cores: float = 1.0
    memory: str = "1g"


@dataclass(frozen=True)
class Manifest:
    folder: Path
    name: str
    description: str
    owner: str
    trigger_ms: int
    max_records_per_batch: int
    stateful: bool
    variants: dict[str, str]
    resources: Resources = field(default_factory=Resources)
    params: dict[str, Any] = field(default_factory=dict)
    input_where: str | None = None
    """Stateful only: a SQL predicate choosing the records the transform gets (and the watermark sees)."""
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    """On-demand functions (docs/RUNS.md); a use case may have these and no variants."""

    @property
    def watermark(self) -> str:
        """Stateful only: the event-time watermark the SDK applies before the transform."""
        return str(self.params.get("watermark", DEFAULT_WATERMARK))

    def variant_file(self, variant: str) -> Path:
        if variant not in self.variants:
            raise ManifestError(self.folder, [("variants", f"has no variant {variant!r}", f"use one of {', '.join(sorted(self.variants))}")])
        return self.folder / self.variants[variant]


def parse_duration_ms(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _DURATION.match(str(value))
    if not match:
        return None
    amount, unit = float(match.group(1)), match.group(2)
    if unit.startswith("ms") or unit.startswith("milli"):
        return int(amount)
    if unit.startswith("s"):
        return int(amount * 1000)
    return int(amount * 60_000)


def load_manifest(folder: str | Path) -> Manifest:
    folder = Path(folder).resolve()
    path = folder / MANIFEST_FILE
    if not path.exists():
        raise ManifestError(folder, [(MANIFEST_FILE, "is missing", f"create {path} (`diamond usecase new {folder.name}` writes one)")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ManifestError(folder, [(MANIFEST_FILE, f"is not valid YAML ({error})", "fix the syntax")]) from error
    if not isinstance(data, dict):
        raise ManifestError(folder, [(MANIFEST_FILE, "is not a mapping", "write `key: value` lines")])

    problems: list[tuple[str, str, str]] = []
    known = {"name", "description", "owner", "trigger", "max_records_per_batch", "stateful", "variants", "resources", "params", "input_where", "functions"}
    for key in sorted(set(data) - known):
        problems.append((key, "is not a known field", f"remove it or use one of {', '.join(sorted(known))}"))

    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(("name", f"is {name!r}", "use lower_snake_case letters, digits and _"))
    elif name != folder.name:
        problems.append(("name", f"is {name!r} but the folder is {folder.name!r}", f"set name: {folder.name}"))

    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        problems.append(("description", "is missing", "say in one sentence what feedback this gives customers"))
    owner = data.get("owner")
    if not isinstance(owner, str) or not owner.strip():
        problems.append(("owner", "is missing", "name the team or person to call when it breaks"))

    trigger_ms = parse_duration_ms(data.get("trigger", "1s"))
    if trigger_ms is None or trigger_ms < 100:
        problems.append(("trigger", f"is {data.get('trigger')!r}", "use a micro-batch interval of at least 100ms, e.g. 500ms or 5s"))

    max_records = data.get("max_records_per_batch", 100_000)
    if not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 1:
        problems.append(("max_records_per_batch", f"is {max_records!r}", "use a positive integer, e.g. 100000"))

    stateful = data.get("stateful", False)
    if not isinstance(stateful, bool):
        problems.append(("stateful", f"is {stateful!r}", "use true or false"))

    functions, function_problems = parse_functions(folder, data.get("functions"))
    variants = data.get("variants")
    if variants is None and data.get("functions") is not None:
        variants = {}  # functions only: nothing streams
    elif not isinstance(variants, dict) or not variants:
        problems.append(("variants", "is missing", "map at least one variant to its file, e.g. variants: {A: job.py}, or declare functions:"))
        variants = {}
    for variant, file in variants.items():
        if not isinstance(variant, str) or not _VARIANT.match(variant):
            problems.append((f"variants.{variant}", "is not a variant name", "use one capital letter: A, B, …"))
        if not isinstance(file, str) or not file.endswith(".py"):
            problems.append((f"variants.{variant}", f"is {file!r}", "name a .py file in the use case folder"))
        elif not (folder / file).is_file():
            problems.append((f"variants.{variant}", f"names {file}, which does not exist", f"create {folder / file} or fix the name"))

    raw_resources = data.get("resources", {}) or {}
    resources = Resources()
    if not isinstance(raw_resources, dict):
        problems.append(("resources", f"is {raw_resources!r}", "use a mapping with cores and memory"))
    else:
        cores = raw_resources.get("cores", 1)
        memory = str(raw_resources.get("memory", "1g"))
        if not isinstance(cores, (int, float)) or isinstance(cores, bool) or cores <= 0:
            problems.append(("resources.cores", f"is {cores!r}", "use a positive number, e.g. 1 or 0.5"))
        if not _MEMORY.match(memory):
            problems.append(("resources.memory", f"is {memory!r}", "use a JVM size such as 512m or 1g"))
        if not problems:
            resources = Resources(cores=float(cores), memory=memory)

    params = data.get("params", {}) or {}
    if not isinstance(params, dict):
        problems.append(("params", f"is {params!r}", "use a mapping of parameter names to values"))

    input_where = data.get("input_where")
    if input_where is not None and (not isinstance(input_where, str) or not input_where.strip()):
        problems.append(("input_where", f"is {input_where!r}", "use a SQL predicate on the record's columns, e.g. \"type = 'purchase'\""))
    elif input_where is not None and stateful is not True:
        problems.append(("input_where", "is only for stateful use cases", "remove it, or filter in your transform"))
    if stateful is True and isinstance(params, dict) and not _SPARK_INTERVAL.match(str(params.get("watermark", DEFAULT_WATERMARK))):
        problems.append(("params.watermark", f"is {params.get('watermark')!r}", "use an interval such as 10 minutes or 1 hour (the SDK applies it on event_time)"))

    problems.extend(function_problems)
    if problems:
        raise ManifestError(folder, problems)
    return Manifest(
        folder=folder, name=name, description=description.strip(), owner=owner.strip(), trigger_ms=int(trigger_ms),
        max_records_per_batch=max_records, stateful=stateful, variants=dict(variants), resources=resources, params=dict(params),
        input_where=input_where.strip() if isinstance(input_where, str) else None, functions=functions,
    )
