"""What a use case's functions are, for the orchestrator (docs/RUNS.md, "Describing"):

    python3 -m diamond_sdk._runtime.functions describe <use case folder>

prints {"usecase", "functions": {...}} and exits 0, or prints {"error", "problems"} and
exits 2. Pure Python + yaml: no Spark, no Kafka, none of the use case's code runs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .manifest import ManifestError, load_manifest

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 2, 64


def describe(folder: str | Path) -> dict[str, Any]:
    """The describe JSON of `folder`; raises ManifestError."""
    manifest = load_manifest(folder)
    return {"usecase": manifest.name, "functions": {name: spec.as_json() for name, spec in manifest.functions.items()}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "describe":
        print("usage: python3 -m diamond_sdk._runtime.functions describe <use case folder>", file=sys.stderr)
        return EXIT_USAGE
    try:
        body = describe(argv[1])
    except ManifestError as error:
        print(json.dumps({"error": str(error), "problems": [list(problem) for problem in error.problems]}))
        return EXIT_INVALID
    print(json.dumps(body))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
