"""Numbers that come from outside (a URL's `<int:…>`, `?round=`, a hidden field) before they reach SQL.

Every id column is a 32-bit INTEGER: a longer number in a URL (`/plans/99999999999999999999`) used to
reach the database and fail there (SQLite: `OverflowError`; PostgreSQL: integer out of range) as a 500.
`str.isdigit()` also accepts digits that `int()` refuses (`'²'`): ids are parsed here, ASCII digits
only, within the column's range; anything else is no id at all (the page then answers 404 or ignores
the parameter).
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # the largest value an INTEGER id column holds (PostgreSQL int4)


def parse_id(raw: str | None) -> int | None:
    """`raw` as an id (ASCII digits, 1…MAX_ID), else None."""
    text = (raw or "").strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` in every route: a number beyond an id column's range does not match (404)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def has_nul(values: Any) -> bool:
    """Whether a submitted value holds a NUL character, which PostgreSQL cannot store in text."""
    return any("\x00" in value for _key, value in values.items(multi=True))
