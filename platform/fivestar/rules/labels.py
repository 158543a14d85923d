"""Names of star levels and medals as users see them (Simplified Chinese first, English beside).

Kept in one place so pages, reports, the CLI and the evaluator's reasons all say "四星" the same way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = [
    "LEVELS",
    "NOT_RATED_LABEL",
    "Kind",
    "Medal",
    "level_label",
    "level_label_en",
    "medal_label",
    "programme_for_level",
]

#: Levels from highest to lowest; 0 is 无星 (or, for members, whatever the rules call "below the
#: lowest band", e.g. 不合格).
LEVELS: tuple[int, ...] = (5, 4, 3, 2, 1, 0)

Kind = Literal["branch", "member"]

_ZH = {5: "五星", 4: "四星", 3: "三星", 2: "二星", 1: "一星", 0: "无星"}
_EN = {5: "five stars", 4: "four stars", 3: "three stars", 2: "two stars", 1: "one star", 0: "no star"}

#: A member excluded from a round by a disqualifier (取消评星资格) has no level at all.
NOT_RATED_LABEL = "不予评星"
NOT_RATED_LABEL_EN = "not rated"


class Medal(StrEnum):
    """Per-indicator result of a branch rating (金星/银星/铜星); ordered gold > silver > bronze."""

    GOLD = "gold"
    SILVER = "silver"
    BRONZE = "bronze"

    @property
    def rank(self) -> int:
        """3 for gold, 2 for silver, 1 for bronze — compare medals with this."""
        return {Medal.GOLD: 3, Medal.SILVER: 2, Medal.BRONZE: 1}[self]

    @property
    def label(self) -> str:
        return medal_label(self)


_MEDAL_ZH = {Medal.GOLD: "金星", Medal.SILVER: "银星", Medal.BRONZE: "铜星"}


def medal_label(medal: Medal | None) -> str:
    """``金星``/``银星``/``铜星``, or ``无`` when an indicator earned no medal."""
    return "无" if medal is None else _MEDAL_ZH[medal]


def level_label(level: int | None, kind: Kind = "branch", below_label: str | None = None) -> str:
    """Chinese name of a level: 5 → ``五星`` … 0 → ``无星``; ``None`` → ``不予评星``.

    For members, level 0 means "below the lowest band" and rule sets may name it (华宁 calls it
    ``不合格``); pass ``rules.member.below_label`` as ``below_label`` to use that name.
    """
    if level is None:
        return NOT_RATED_LABEL
    if level not in _ZH:
        raise ValueError(f"level must be 0..5, got {level}")
    if level == 0 and kind == "member" and below_label:
        return below_label
    return _ZH[level]


def level_label_en(level: int | None) -> str:
    """English name of a level (``five stars`` … ``no star``; ``None`` → ``not rated``)."""
    if level is None:
        return NOT_RATED_LABEL_EN
    if level not in _EN:
        raise ValueError(f"level must be 0..5, got {level}")
    return _EN[level]


def programme_for_level(level: int) -> tuple[str, str]:
    """The notice's follow-up programme for a branch level: 示范 (5, 4), 提升 (3, 2), 转化 (1, 0)."""
    if level >= 4:
        return ("示范", "demonstration")
    if level >= 2:
        return ("提升", "improvement")
    return ("转化", "transformation")
