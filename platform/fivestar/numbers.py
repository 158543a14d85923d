"""Scores stored as integer hundredths, exact on SQLite and PostgreSQL alike.

Scores have at most two decimal places. Keeping them as integers of hundredths avoids binary
floats everywhere (SQLite has no decimal type) and lets set-based SQL add, compare and band them
exactly; Python sees `Decimal`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.types import TypeDecorator

HUNDRED = Decimal(100)


def to_hundredths(value: Decimal) -> int:
    scaled = value * HUNDRED
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than two decimal places")
    return int(scaled)


def from_hundredths(value: int) -> Decimal:
    return (Decimal(value) / HUNDRED).quantize(Decimal("0.01"))


class Hundredths(TypeDecorator[Decimal]):
    """A `Decimal` with two decimal places, stored as an integer number of hundredths."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Any) -> int | None:
        if value is None:
            return None
        return to_hundredths(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        return None if value is None else from_hundredths(value)
