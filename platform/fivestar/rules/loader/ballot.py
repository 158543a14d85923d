"""Loading ``[branch.ballot]``: the 议星 ballot's form, weights, scale and satisfaction."""

from __future__ import annotations

from decimal import Decimal

from .._reader import Reader, fmt
from ..model import (
    BALLOT_GROUPS,
    BallotChoice,
    BallotRules,
    BallotSatisfaction,
)
from .common import _ZERO

_MAX_MIN_BALLOTS = 1000
_MAX_SCALE_VALUE = 100


def _ballot(r: Reader) -> BallotRules | None:
    """``[branch.ballot]``: the 议星 meeting's anonymous ballot (see tenants/README.md)."""
    form = r.choice("form", ("level", "indicators"))
    min_ballots = r.integer("min_ballots", minimum=1, maximum=_MAX_MIN_BALLOTS)
    illustrative = r.boolean("illustrative", default=False)
    note = r.text("note", required=False, default="", nonempty=False)
    weights_ok, weights = _ballot_weights(r)
    scale_ok, scale = _ballot_scale(r, form)
    satisfaction_r = r.table("satisfaction", required=False)
    satisfaction = _ballot_satisfaction(satisfaction_r, form, scale) if satisfaction_r else None
    r.finish()
    if (
        form is None
        or min_ballots is None
        or illustrative is None
        or note is None
        or not weights_ok
        or not scale_ok
        or (satisfaction_r and satisfaction is None)
    ):
        return None
    return BallotRules(
        form="indicators" if form == "indicators" else "level",
        min_ballots=min_ballots,
        weights=weights,
        scale=scale,
        satisfaction=satisfaction,
        illustrative=illustrative,
        note=note,
    )


def _ballot_weights(r: Reader) -> tuple[bool, tuple[tuple[str, Decimal], ...]]:
    """Group → share, summing exactly to 1; a group left out has weight 0 (shown, not weighted)."""
    t = r.table("weights", required=False)
    if t is None:
        return not r.has("weights"), ()
    found: dict[str, Decimal] = {}
    ok = True
    for raw_key, value in t.entries():
        if raw_key not in BALLOT_GROUPS:
            listed = ", ".join(BALLOT_GROUPS)
            t.error(raw_key, f"未知测评群体；可用: {listed}", f"unknown voter group; known groups: {listed}")
            ok = False
            continue
        share = t.check_decimal(raw_key, value, minimum=_ZERO, maximum=Decimal(1))
        if share is None:
            ok = False
            continue
        found[raw_key] = share
    if not ok:
        return False, ()
    total = sum(found.values(), _ZERO)
    if not found or total != 1:
        t.error(
            None,
            f"各群体权重之和为 {fmt(total)}，应恰好为 1",
            f"the group weights add up to {fmt(total)}; they must add up to exactly 1",
        )
        return False, ()
    return True, tuple((g, found[g]) for g in BALLOT_GROUPS if g in found)


def _ballot_scale(r: Reader, form: str | None) -> tuple[bool, tuple[BallotChoice, ...]]:
    """The answers of the indicators form, best first; the level form's answers are the levels."""
    if form == "level":
        if r.has("scale"):
            r.raw("scale")
            r.error(
                "scale",
                '按星级测评（form = "level"）时不设 scale：选项即五星至无星',
                "the level form takes no scale: its answers are the levels 5 to 0",
            )
            return False, ()
        return True, ()
    readers = r.tables("scale", required=form == "indicators", nonempty=True)
    if readers is None:
        return False, ()
    if form is None:
        return True, ()
    choices: list[BallotChoice] = []
    ok = len(readers) >= 2
    if not ok and readers:
        r.error("scale", "至少需要两个选项", "give at least two answers")
    seen_labels: set[str] = set()
    for cr in readers:
        value = cr.integer("value", minimum=0, maximum=_MAX_SCALE_VALUE)
        label = cr.text("label")
        cr.finish()
        if value is None or label is None:
            ok = False
            continue
        if label in seen_labels:
            cr.error("label", f"选项“{label}”重复", f"answer '{label}' is listed twice")
            ok = False
            continue
        if choices and value >= choices[-1].value:
            cr.error(
                "value",
                f"{value} 不低于上一项 {choices[-1].value}：选项须从好到差、分值依次降低",
                f"{value} is not below the previous answer's {choices[-1].value}; list answers "
                "best first with strictly falling values",
            )
            ok = False
            continue
        seen_labels.add(label)
        choices.append(BallotChoice(value=value, label=label))
    return ok, tuple(choices) if ok else ()


def _ballot_satisfaction(r: Reader, form: str | None, scale: tuple[BallotChoice, ...]) -> BallotSatisfaction | None:
    min_value = r.integer("min_value", minimum=0, maximum=_MAX_SCALE_VALUE)
    groups = r.text_list("groups")
    r.finish()
    if groups is not None:
        unknown = [g for g in groups if g not in BALLOT_GROUPS]
        if unknown:
            listed = ", ".join(BALLOT_GROUPS)
            r.error(
                "groups",
                f"未知测评群体 {', '.join(unknown)}；可用: {listed}",
                f"unknown voter group {', '.join(unknown)}; known groups: {listed}",
            )
            groups = None
        elif len(set(groups)) != len(groups):
            r.error("groups", "测评群体重复", "a group is listed twice")
            groups = None
    if min_value is not None:
        values = tuple(c.value for c in scale) if form == "indicators" else tuple(range(6))
        if values and not min(values) < min_value <= max(values):
            low, high = min(values), max(values)
            r.error(
                "min_value",
                f"{min_value} 须大于最低选项 {low} 且不高于最高选项 {high}",
                f"{min_value} must be above the lowest answer {low} and at most the highest {high}",
            )
            min_value = None
    if min_value is None or groups is None:
        return None
    return BallotSatisfaction(min_value=min_value, groups=groups or ("public",))
