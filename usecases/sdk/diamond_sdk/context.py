"""What a use case's code receives besides its data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Context:
    """Passed to `transform(records, ctx)` (and to `feedback(record, ctx)` when it asks).

    `params` are the manifest's `params`, so thresholds live in usecase.yaml, not in code.
    """

    usecase: str
    variant: str
    version: str
    params: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)
