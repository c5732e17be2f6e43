"""What a use case's code receives besides its data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Context:
    """Passed to `transform(records, ctx)` (and to `feedback(record, ctx)` when it asks).

    `params` are the manifest's `params`, so thresholds live in usecase.yaml, not in code.
    """

    usecase: str
    """The use case's name (its folder)."""
    variant: str
    """The variant running this code: "A", "B", …"""
    version: str
    """A hash of the use case's code (tests and sample data excluded)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The manifest's `params:`, as YAML read them."""

    def param(self, name: str, default: Any = None) -> Any:
        """`params[name]`, or `default` when the manifest does not set it."""
        return self.params.get(name, default)
