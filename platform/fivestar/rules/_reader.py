"""A small, error-collecting reader over a parsed TOML/JSON document.

Why not pydantic for the documents: the loader must (1) report *every* problem, including
cross-field ones, even when another part of the file is broken, (2) name paths in the house format
(``branch.stars.4.min``, ``branch.indicators[2]``) with Chinese-and-English reasons, and (3) read
numbers as exact ``Decimal``.  A reader that records errors and keeps going does all three with less
code than translating pydantic's error objects.

Each ``Reader`` wraps one table; every accessor marks the key as used and returns ``None`` (after
recording an error) when the value is missing or wrong.  ``finish()`` then reports keys nobody asked
for, which is how typos such as ``mni = 80`` are caught.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from .errors import RuleError, bilingual

__all__ = ["KEY_PATTERN", "Reader", "join_path", "to_decimal"]

#: Machine keys (indicators, criteria, vetoes, facts…) are stable ASCII identifiers so that stored
#: scores keep pointing at the right item when a label is reworded.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TIME_PATTERN = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

Raw: TypeAlias = object


def join_path(path: str, key: str | int) -> str:
    """Extend a path: ``join_path("a", "b") == "a.b"``, ``join_path("a", 2) == "a[2]"``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def to_decimal(value: object) -> Decimal:
    """Convert a document or input value to ``Decimal`` without passing through binary floats.

    TOML is parsed with ``parse_float=Decimal`` so TOML numbers arrive exact; JSON documents and
    Python callers may still hand us a float, which is converted through ``str()`` (shortest
    round-trip repr, so ``0.3`` becomes ``Decimal("0.3")`` and not 0.29999…).  Strings such as
    ``"89.5"`` are accepted because some editors quote numbers.  Booleans, NaN and infinities are
    rejected: they are never meaningful scores.
    """
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("not a number") from None
    else:
        raise ValueError("not a number")
    if not result.is_finite():
        raise ValueError("not finite")
    return result


def _type_name(value: object) -> str:
    names = {bool: "布尔值 boolean", int: "整数 integer", float: "小数 float", str: "字符串 string",
             list: "列表 array", dict: "表 table", Decimal: "小数 decimal"}
    return names.get(type(value), type(value).__name__)


class Reader:
    """Typed, error-collecting access to one table of the document (see the module docstring)."""

    def __init__(self, data: Mapping[str, Raw], path: str, errors: list[RuleError]) -> None:
        self.data = data
        self.path = path
        self.errors = errors
        self._used: set[str] = set()
        self._expected: set[str] = set()

    # -- reporting -------------------------------------------------------------------------
    def at(self, key: str | int | None) -> str:
        """The full path of ``key`` inside this table (or the table itself for ``None``)."""
        return self.path if key is None else join_path(self.path, key)

    def error(self, key: str | int | None, zh: str, en: str) -> None:
        """Record a problem at ``key`` (relative to this table)."""
        self.errors.append(RuleError(self.at(key), bilingual(zh, en)))

    def error_at(self, path: str, zh: str, en: str) -> None:
        """Record a problem at an absolute path."""
        self.errors.append(RuleError(path, bilingual(zh, en)))

    def has(self, key: str) -> bool:
        return key in self.data

    def mark_all_used(self) -> None:
        """Silence the unknown-key check (used when the table's type is unknown: no cascade)."""
        self._used.update(self.data)

    def finish(self) -> None:
        """Report every key that no accessor asked for, with a suggestion for likely typos."""
        allowed = sorted(self._used | self._expected)
        for key in self.data:
            if key in self._used:
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            if close:
                self.error(key, f"未知字段，是否应为 '{close[0]}'？",
                           f"unknown key; did you mean '{close[0]}'?")
            else:
                listed = ", ".join(allowed) if allowed else "-"
                self.error(key, f"未知字段；可用字段: {listed}", f"unknown key; allowed keys: {listed}")

    def expect(self, *keys: str) -> None:
        """Declare keys that are allowed but were not read (so suggestions can name them)."""
        self._expected.update(keys)

    # -- raw access ------------------------------------------------------------------------
    def _get(self, key: str, required: bool) -> tuple[bool, Raw]:
        self._used.add(key)
        if key not in self.data:
            if required:
                self.error(key, "缺少必填字段", "required key is missing")
            return False, None
        return True, self.data[key]

    def raw(self, key: str) -> Raw:
        """The untouched value (or ``None``) and mark the key used."""
        self._used.add(key)
        return self.data.get(key)

    # -- scalars ---------------------------------------------------------------------------
    def text(self, key: str, *, required: bool = True, default: str | None = None,
             nonempty: bool = True) -> str | None:
        present, value = self._get(key, required)
        if not present:
            return default
        if not isinstance(value, str):
            self.error(key, f"应为字符串，实为{_type_name(value)}", "must be a string")
            return None
        if nonempty and not value.strip():
            self.error(key, "不能为空", "must not be empty")
            return None
        return value

    def key(self, key: str = "key") -> str | None:
        """A machine key (see ``KEY_PATTERN``)."""
        value = self.text(key)
        if value is not None and not KEY_PATTERN.match(value):
            self.error(key, f"'{value}' 不是合法标识：须以小写字母开头，仅含小写字母、数字和下划线",
                       "must be a lowercase ASCII identifier: a-z, 0-9, _ (starting with a letter)")
            return None
        return value

    def choice(self, key: str, choices: tuple[str, ...], *, required: bool = True,
               default: str | None = None) -> str | None:
        value = self.text(key, required=required, default=default)
        if value is not None and value not in choices:
            listed = ", ".join(choices)
            self.error(key, f"'{value}' 不是可选值；可选: {listed}", f"'{value}' is not one of: {listed}")
            return None
        return value

    def boolean(self, key: str, *, default: bool | None = None) -> bool | None:
        present, value = self._get(key, default is None)
        if not present:
            return default
        if not isinstance(value, bool):
            self.error(key, f"应为 true 或 false，实为{_type_name(value)}", "must be true or false")
            return None
        return value

    def integer(self, key: str, *, required: bool = True, default: int | None = None,
                minimum: int | None = None, maximum: int | None = None) -> int | None:
        present, value = self._get(key, required)
        if not present:
            return default
        return self.check_int(key, value, minimum, maximum)

    def check_int(self, key: str | int, value: Raw, minimum: int | None,
                  maximum: int | None) -> int | None:
        """Validate ``value`` (found at ``key``) as an integer within bounds."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"应为整数，实为{_type_name(value)}", "must be an integer")
            return None
        if minimum is not None and value < minimum:
            self.error(key, f"{value} 小于最小值 {minimum}", f"{value} is below the minimum {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.error(key, f"{value} 大于最大值 {maximum}", f"{value} is above the maximum {maximum}")
            return None
        return value

    def level(self, key: str, *, required: bool = True, default: int | None = None,
              minimum: int = 0, maximum: int = 5) -> int | None:
        """A star level (0 = 无星 … 5 = 五星)."""
        return self.integer(key, required=required, default=default, minimum=minimum, maximum=maximum)

    def decimal(self, key: str, *, required: bool = True, default: Decimal | None = None,
                minimum: Decimal | None = None, maximum: Decimal | None = None,
                positive: bool = False) -> Decimal | None:
        """An exact number; ``positive`` means strictly greater than zero."""
        present, value = self._get(key, required)
        if not present:
            return default
        return self.check_decimal(key, value, minimum=minimum, maximum=maximum, positive=positive)

    def check_decimal(self, key: str | int, value: Raw, *, minimum: Decimal | None = None,
                      maximum: Decimal | None = None, positive: bool = False) -> Decimal | None:
        try:
            number = to_decimal(value)
        except ValueError:
            self.error(key, f"应为数字（整数、小数或如 \"89.5\" 的字符串），实为{_type_name(value)}",
                       "must be a number (integer, decimal, or a string such as \"89.5\")")
            return None
        if positive and number <= 0:
            self.error(key, f"{fmt(number)} 必须大于 0", f"{fmt(number)} must be greater than 0")
            return None
        if minimum is not None and number < minimum:
            self.error(key, f"{fmt(number)} 小于最小值 {fmt(minimum)}",
                       f"{fmt(number)} is below the minimum {fmt(minimum)}")
            return None
        if maximum is not None and number > maximum:
            self.error(key, f"{fmt(number)} 大于最大值 {fmt(maximum)}",
                       f"{fmt(number)} is above the maximum {fmt(maximum)}")
            return None
        return number

    def share(self, key: str, *, required: bool = True, default: Decimal | None = None) -> Decimal | None:
        """A proportion between 0 and 1 inclusive (``0.30`` = 30 %)."""
        return self.decimal(key, required=required, default=default,
                            minimum=Decimal(0), maximum=Decimal(1))

    def clock(self, key: str, *, default: time) -> time | None:
        """A time of day written ``"HH:MM"`` (24-hour, tenant time)."""
        value = self.text(key, required=False)
        if value is None:
            return None if self.has(key) else default
        match = _TIME_PATTERN.match(value)
        if not match:
            self.error(key, f"'{value}' 不是 HH:MM 格式的时间", "must be a time of day as \"HH:MM\"")
            return None
        return time(int(match.group(1)), int(match.group(2)))

    def text_list(self, key: str, *, required: bool = False) -> tuple[str, ...] | None:
        present, value = self._get(key, required)
        if not present:
            return ()
        if not isinstance(value, list):
            self.error(key, "应为字符串列表", "must be an array of strings")
            return None
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.error(join_path(key, i), "应为非空字符串", "must be a non-empty string")
                ok = False
        return tuple(value) if ok else None

    def int_list(self, key: str, *, minimum: int, maximum: int) -> tuple[int, ...] | None:
        present, value = self._get(key, False)
        if not present:
            return ()
        if not isinstance(value, list):
            self.error(key, "应为整数列表", "must be an array of integers")
            return None
        result: list[int] = []
        for i, item in enumerate(value):
            number = self.check_int(join_path(key, i), item, minimum, maximum)
            if number is None:
                return None
            result.append(number)
        return tuple(result)

    # -- nested ----------------------------------------------------------------------------
    def table(self, key: str, *, required: bool = True) -> Reader | None:
        present, value = self._get(key, required)
        if not present:
            return None
        if not isinstance(value, Mapping):
            self.error(key, f"应为表（[{self.at(key)}]），实为{_type_name(value)}", "must be a table")
            return None
        return Reader(value, self.at(key), self.errors)

    def tables(self, key: str, *, required: bool = False, nonempty: bool = False) -> list[Reader] | None:
        """An array of tables (``[[section]]`` in TOML); ``None`` only if the value is not an array."""
        present, value = self._get(key, required)
        if not present:
            return None if required else []
        if not isinstance(value, list):
            self.error(key, f"应为表数组（[[{self.at(key)}]]）", "must be an array of tables")
            return None
        if nonempty and not value:
            self.error(key, "至少需要一项", "must have at least one entry")
        readers: list[Reader] = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                self.error(join_path(key, i), "应为表", "must be a table")
                continue
            readers.append(Reader(item, join_path(self.at(key), i), self.errors))
        return readers

    def entries(self) -> list[tuple[str, Raw]]:
        """All key/value pairs of a table with free keys (e.g. levels) — marks them all used."""
        self.mark_all_used()
        return list(self.data.items())


def fmt(number: Decimal) -> str:
    """Render a Decimal without exponent or trailing zeros: ``Decimal("80.0")`` → ``"80"``."""
    normal = number.normalize()
    text = format(normal, "f")
    return "0" if text in ("-0", "") else text
