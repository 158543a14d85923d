"""What every part of the loader shares: keys that must be unique, star-level keys, defaults."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from .._reader import Reader

_ZERO = Decimal(0)
_NINE = time(9, 0)


def _unique(r: Reader, key: str | None, seen: dict[str, str], what_zh: str, what_en: str) -> bool:
    """Record ``key`` of the item read by ``r``; report a duplicate naming where it was first used."""
    if key is None:
        return False
    if key in seen:
        r.error(
            "key",
            f"{what_zh}键 '{key}' 重复（已用于 {seen[key]}）",
            f"duplicate {what_en} key '{key}' (already used at {seen[key]})",
        )
        return False
    seen[key] = r.path
    return True


def _level_key(r: Reader, raw_key: str, *, allow_zero: bool) -> int | None:
    """A table key that names a level ("1".."5", or "0".."5" where ``allow_zero``)."""
    low = 0 if allow_zero else 1
    if raw_key.isdigit() and len(raw_key) == 1 and low <= int(raw_key) <= 5:
        return int(raw_key)
    if raw_key == "0" and not allow_zero:
        r.error(
            raw_key,
            "无星不设档：低于最低一档即为无星（或 below_label 所称）",
            "level 0 has no band: scores below the lowest band are level 0",
        )
    else:
        r.error(raw_key, f"星级键须为 {low} 到 5 的数字", f"level keys must be the digits {low} to 5")
    return None
