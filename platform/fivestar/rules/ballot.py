"""Counting the 议星 meeting's anonymous ballot (无记名测评) as the rules say — pure, no database.

The platform hands this module *counts* (how many ballots of a group gave which value, electronic
and paper together) and gets back what may be shown:

* per group: the number of ballots, and — only from ``min_ballots`` ballots up — the distribution
  per answer and the mean (per indicator for the indicators form);
* the weighted result across groups: Σ weight × group mean over the groups that are **shown**,
  divided by the sum of their weights.  A group below the minimum is left out of the weighted result
  as well: were it counted, its hidden mean could be worked back out of the result and the other
  groups' shown means, which is exactly what the minimum forbids.  Without ``weights`` every shown
  ballot counts the same (a pooled mean);
* optionally a satisfaction rate: the share of the ratings of the rules' groups (shown ones only)
  at or above ``satisfaction.min_value``.

Means are exact decimals rounded half-up to two places; rates to four (0.8333 = 83.33 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .errors import InputError, RuleError, bilingual
from .model import BALLOT_GROUPS, BallotRules, RuleSet

__all__ = [
    "DEFAULT_BALLOT",
    "OVERALL",
    "BallotItem",
    "BallotResult",
    "GroupCounts",
    "GroupResult",
    "ItemResult",
    "ballot_items",
    "ballot_rules",
    "tally_ballots",
]

#: The item key of the level form's single question (and of paper tallies of the overall level).
OVERALL = ""
#: Used when a rule set has no ``[branch.ballot]``: a level per voter, every shown ballot counting
#: the same, figures from 5 ballots up (the platform's own default, not a sourced value).
DEFAULT_BALLOT = BallotRules(form="level", min_ballots=5)

_TWO = Decimal("0.01")
_FOUR = Decimal("0.0001")
_ZERO = Decimal(0)


def ballot_rules(rules: RuleSet) -> BallotRules:
    """The rule set's ballot, or the platform default when it defines none."""
    return rules.branch.ballot or DEFAULT_BALLOT


@dataclass(frozen=True, slots=True)
class BallotItem:
    """One question of the ballot: the overall level (key ``""``) or one indicator."""

    key: str
    label: str


def ballot_items(rules: RuleSet) -> tuple[BallotItem, ...]:
    """The questions a voter answers, in ballot order."""
    if ballot_rules(rules).form == "level":
        return (BallotItem(OVERALL, "星级"),)
    return tuple(BallotItem(i.key, i.label) for i in rules.branch.indicators)


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """What one group gave: ``ballots`` (electronic + paper) and, per item key, value → count."""

    ballots: int
    counts: Mapping[str, Mapping[int, int]]


@dataclass(frozen=True, slots=True)
class ItemResult:
    key: str
    label: str
    distribution: tuple[tuple[int, str, int], ...]  # (value, answer label, count), best answer first
    count: int
    mean: Decimal | None


@dataclass(frozen=True, slots=True)
class GroupResult:
    group: str
    ballots: int
    shown: bool  # at least min_ballots ballots: figures may be shown
    weight: Decimal | None  # None: the rules pool the ballots
    items: tuple[ItemResult, ...]  # empty when not shown
    mean: Decimal | None  # level form: the mean level; indicators form: the mean of the item means


@dataclass(frozen=True, slots=True)
class BallotResult:
    form: str
    min_ballots: int
    groups: tuple[GroupResult, ...]
    items: tuple[tuple[BallotItem, Decimal | None], ...]  # the weighted mean per item
    weighted: Decimal | None  # the weighted result (None: no group reaches the minimum)
    used_groups: tuple[str, ...]  # groups that entered the weighted result
    left_out: tuple[str, ...]  # groups that have a weight (or ballots) but too few ballots to count
    satisfaction: Decimal | None  # 0..1, when the rules define one and its groups are shown

    @property
    def available(self) -> bool:
        """A weighted result exists: at least one counted group reaches the minimum."""
        return self.weighted is not None

    @property
    def ballots(self) -> int:
        return sum(g.ballots for g in self.groups)

    def group(self, name: str) -> GroupResult:
        return next(g for g in self.groups if g.group == name)


def _mean(pairs: Mapping[int, int]) -> Decimal | None:
    count = sum(pairs.values())
    if count == 0:
        return None
    return Decimal(sum(value * n for value, n in pairs.items())) / Decimal(count)


def _round(value: Decimal | None, places: Decimal = _TWO) -> Decimal | None:
    return None if value is None else value.quantize(places, rounding=ROUND_HALF_UP)


def _check(ballot: BallotRules, items: tuple[BallotItem, ...], counts: Mapping[str, GroupCounts]) -> None:
    errors: list[RuleError] = []
    allowed = set(ballot.values())
    keys = {item.key for item in items}
    for group, given in counts.items():
        if group not in BALLOT_GROUPS:
            errors.append(RuleError(f"counts.{group}", bilingual("未知测评群体", "unknown voter group")))
            continue
        if given.ballots < 0:
            errors.append(RuleError(f"counts.{group}.ballots", bilingual("票数不能为负", "negative count")))
        for key, per_value in given.counts.items():
            if key not in keys:
                errors.append(RuleError(f"counts.{group}.{key}", bilingual("未知测评项目", "unknown item")))
                continue
            for value, n in per_value.items():
                if value not in allowed or n < 0:
                    errors.append(RuleError(f"counts.{group}.{key}.{value}",
                                            bilingual("无效的选项或计数", "invalid answer or count")))
    if errors:
        raise InputError(errors)


def tally_ballots(rules: RuleSet, counts: Mapping[str, GroupCounts]) -> BallotResult:
    """The ballot's results from per-group counts (missing groups count as no ballots)."""
    ballot = ballot_rules(rules)
    items = ballot_items(rules)
    _check(ballot, items, counts)
    labels = {c.value: c.label for c in ballot.choices()}
    empty = GroupCounts(ballots=0, counts={})
    groups: list[GroupResult] = []
    exact_means: dict[str, dict[str, Decimal]] = {}  # shown group → item → exact mean
    for name in BALLOT_GROUPS:
        given = counts.get(name, empty)
        shown = given.ballots >= ballot.min_ballots
        item_results: list[ItemResult] = []
        if shown:
            means: dict[str, Decimal] = {}
            for item in items:
                per_value = {v: n for v, n in given.counts.get(item.key, {}).items() if n}
                mean = _mean(per_value)
                if mean is not None:
                    means[item.key] = mean
                item_results.append(ItemResult(
                    key=item.key, label=item.label,
                    distribution=tuple((v, labels[v], per_value.get(v, 0)) for v in ballot.values()),
                    count=sum(per_value.values()), mean=_round(mean)))
            exact_means[name] = means
        group_mean = None
        if shown and exact_means[name]:
            group_mean = sum(exact_means[name].values(), _ZERO) / len(exact_means[name])
        groups.append(GroupResult(group=name, ballots=given.ballots, shown=shown, weight=ballot.weight(name),
                                  items=tuple(item_results), mean=_round(group_mean)))

    pooled = not ballot.weights
    counted = [g for g in groups if g.shown and (pooled or (g.weight or _ZERO) > 0)]
    left_out = tuple(g.group for g in groups if not g.shown and g.ballots > 0
                     and (pooled or (g.weight or _ZERO) > 0))
    item_means: list[tuple[BallotItem, Decimal | None]] = []
    used: set[str] = set()
    for item in items:
        if pooled:
            merged: dict[int, int] = {}
            for g in counted:
                for value, n in counts[g.group].counts.get(item.key, {}).items():
                    merged[value] = merged.get(value, 0) + n
                if counts[g.group].counts.get(item.key):
                    used.add(g.group)
            item_means.append((item, _mean(merged)))
            continue
        numerator = _ZERO
        denominator = _ZERO
        for g in counted:
            mean = exact_means[g.group].get(item.key)
            if mean is None or g.weight is None:
                continue
            numerator += g.weight * mean
            denominator += g.weight
            used.add(g.group)
        item_means.append((item, numerator / denominator if denominator else None))
    present = [m for _, m in item_means if m is not None]
    weighted = sum(present, _ZERO) / len(present) if present else None

    satisfaction = None
    if ballot.satisfaction is not None:
        wanted = [g for g in groups if g.group in ballot.satisfaction.groups and g.shown]
        good = total = 0
        for g in wanted:
            for item in items:
                for value, n in counts[g.group].counts.get(item.key, {}).items():
                    total += n
                    if value >= ballot.satisfaction.min_value:
                        good += n
        if total:
            satisfaction = _round(Decimal(good) / Decimal(total), _FOUR)

    return BallotResult(
        form=ballot.form, min_ballots=ballot.min_ballots, groups=tuple(groups),
        items=tuple((item, _round(mean)) for item, mean in item_means), weighted=_round(weighted),
        used_groups=tuple(g for g in BALLOT_GROUPS if g in used), left_out=left_out,
        satisfaction=satisfaction,
    )
