"""Shared by env.py and the initial-migration generator."""

from __future__ import annotations

from typing import Any

from fivestar.db import UTCDateTime


def render_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Write our column types as plain SQLAlchemy types so migrations never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False
