"""Shared by env.py and the initial-migration generator."""

from __future__ import annotations

from typing import Any

from fivestar.db import UTCDateTime
from fivestar.numbers import Hundredths


def render_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Write our column types as plain SQLAlchemy types so migrations never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, Hundredths):
        return "sa.Integer()"
    return False
