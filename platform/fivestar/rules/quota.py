"""Quota checks (名额/比例) and the other counting rules: advanced organisations, meeting make-up.

A quota limits the *share* of rated units at a level (五星组织 ≤ 10 %).  The allowed count is
``max_share × rated`` rounded as the rules say (``floor`` by default, so "≤ 10 %" is never exceeded).
Advisory quotas produce a warning the committee may override; enforced quotas produce a refusal the
workflow must respect.  Units not rated (``None``) are left out of the count.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal

from ._reader import fmt
from .errors import InputError, RuleError, bilingual
from .labels import LEVELS, Kind, level_label
from .model import Quota, RuleSet

__all__ = [
    "QuotaLine",
    "QuotaReport",
    "advanced_branch",
    "advanced_organisation",
    "check_quota",
    "min_member_public_representatives",
    "min_public_representatives",
    "quota_allowed",
]

_ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}


@dataclass(frozen=True, slots=True)
class QuotaLine:
    """One level: how many units, their share (4 decimals, for display), the limit and whether exceeded."""

    level: int
    label: str
    count: int
    share: Decimal
    max_share: Decimal | None
    allowed: int | None
    over: bool


@dataclass(frozen=True, slots=True)
class QuotaReport:
    """Counts per level against the quota; ``mode`` is ``advisory``, ``enforced`` or ``none``."""

    kind: Kind
    mode: Literal["advisory", "enforced", "none"]
    total: int
    lines: tuple[QuotaLine, ...]

    @property
    def over(self) -> tuple[QuotaLine, ...]:
        """Levels above their limit."""
        return tuple(line for line in self.lines if line.over)

    @property
    def ok(self) -> bool:
        return not self.over

    @property
    def is_warning(self) -> bool:
        """Over an advisory quota: tell the committee, let it decide."""
        return self.mode == "advisory" and not self.ok

    @property
    def is_refusal(self) -> bool:
        """Over an enforced quota: the decision must not be saved as it is."""
        return self.mode == "enforced" and not self.ok

    @property
    def messages(self) -> tuple[str, ...]:
        """One Chinese-and-English sentence per exceeded level."""
        word = ("超出比例上限（须调整）", "over the enforced quota") if self.mode == "enforced" \
            else ("超出指导比例（提醒）", "over the advisory quota")
        return tuple(bilingual(
            f"{line.label} {line.count} 个，占 {fmt(line.share * 100)}%，"
            f"上限 {fmt((line.max_share or Decimal(0)) * 100)}%"
            f"（最多 {line.allowed} 个），{word[0]}",
            f"level {line.level}: {line.count} of {self.total}, limit {line.allowed}; {word[1]}")
            for line in self.over)


def quota_allowed(max_share: Decimal, total: int, rounding: str = "floor") -> int:
    """How many units ``max_share`` of ``total`` allows, rounded by the quota's rule."""
    return int((max_share * total).to_integral_value(rounding=_ROUNDING[rounding]))


def check_quota(rules: RuleSet, levels: Mapping[Hashable, int | None], kind: Kind = "branch"
                ) -> QuotaReport:
    """Count ``levels`` (unit → level, ``None`` = not rated) against the branch or member quota."""
    errors = [RuleError(f"levels.{key}", bilingual("星级应为 0 到 5 的整数", "a level is an integer 0..5"))
              for key, level in levels.items()
              if level is not None and (isinstance(level, bool) or not isinstance(level, int)
                                        or not 0 <= level <= 5)]
    if errors:
        raise InputError(errors)
    quota: Quota | None = rules.branch.quota if kind == "branch" else rules.member.quota
    rated = [lv for lv in levels.values() if lv is not None]
    total = len(rated)
    below = rules.member.below_label if kind == "member" else None
    lines: list[QuotaLine] = []
    for level in LEVELS:
        count = rated.count(level)
        share = (Decimal(count) / total).quantize(Decimal("0.0001"), ROUND_HALF_UP) if total else Decimal(0)
        limit = quota.share_for(level) if quota is not None else None
        allowed = quota_allowed(limit, total, quota.rounding) if quota is not None and limit is not None \
            else None
        lines.append(QuotaLine(level=level, label=level_label(level, kind, below), count=count,
                               share=share, max_share=limit, allowed=allowed,
                               over=allowed is not None and count > allowed))
    return QuotaReport(kind=kind, mode=quota.mode if quota is not None else "none", total=total,
                       lines=tuple(lines))


def advanced_branch(rules: RuleSet, level: int) -> bool:
    """May a branch at ``level`` be proposed as advanced?  False when the rules set no criterion."""
    advanced = rules.branch.advanced
    return advanced is not None and level >= advanced.branch_min_level


def advanced_organisation(rules: RuleSet, branch_levels: Iterable[int]) -> bool:
    """May an organisation be proposed: share of its branches at ``org_share_min_level``+ ≥ the minimum."""
    advanced = rules.branch.advanced
    levels = list(branch_levels)
    if advanced is None or not levels:
        return False
    good = sum(1 for lv in levels if lv >= advanced.org_share_min_level)
    return Decimal(good) >= advanced.org_min_share * len(levels)


def min_public_representatives(rules: RuleSet, member_count: int, kind: Kind = "branch") -> int | None:
    """Fewest public representatives for a meeting of a branch with ``member_count`` members.

    ``kind="branch"``: the branch rating's 议星 meeting (``branch.meeting``); ``kind="member"``: the
    member round's 党群联评 meeting (``member.meeting``).  ``None`` when the rules set no minimum.
    "不少于 20 %" includes the number, so the count is rounded up (20 % of 11 members → 3).
    """
    meeting = rules.branch.meeting if kind == "branch" else rules.member.meeting
    if meeting is None:
        return None
    return math.ceil(meeting.public_representatives_min_share * member_count)


def min_member_public_representatives(rules: RuleSet, member_count: int) -> int | None:
    """Fewest public representatives at a 党群联评 meeting of ``member_count`` members (``member.meeting``)."""
    return min_public_representatives(rules, member_count, "member")
