"""The code version of a use case: a hash of its folder, so a changed folder is a new version."""
from __future__ import annotations

import hashlib
from pathlib import Path

_SKIP_DIRS = {"__pycache__", ".pytest_cache", "tests"}


def code_version(folder: str | Path) -> str:
    """sha256 over the relative path and bytes of every file that affects the job (12 hex).

    Tests and sample data (*.jsonl) do not change what the job emits, so they are left out.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if _SKIP_DIRS.intersection(relative.parts) or path.suffix in (".pyc", ".jsonl"):
            continue
        digest.update(str(relative).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]
