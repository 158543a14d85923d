"""What every part of the rule set shares: the document's JSON type, its format version, numbers as
strings, and the rules' own description (``Meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from .._reader import fmt

Json: TypeAlias = str | int | bool | list["Json"] | dict[str, "Json"] | None

FORMAT_VERSION = 1


def _num(value: Decimal) -> str:
    """Numbers are stored as strings in documents so JSON never turns them into floats."""
    return fmt(value)


# -- meta -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Meta:
    """Who wrote the rules and from where; ``illustrative`` marks a file that is not a real scheme."""

    format_version: int
    name: str
    description: str = ""
    sources: tuple[str, ...] = ()
    illustrative: bool = False
    notes: str = ""

    def to_document(self) -> dict[str, Json]:
        return {
            "format_version": self.format_version,
            "name": self.name,
            "description": self.description,
            "sources": list(self.sources),
            "illustrative": self.illustrative,
            "notes": self.notes,
        }
