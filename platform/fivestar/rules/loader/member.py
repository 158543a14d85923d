"""Loading ``[member]``: the scheme, star bands, bonus, disqualifiers and follow-ups."""

from __future__ import annotations

from decimal import Decimal

from .._reader import Reader
from ..model import (
    DEFAULT_JOINT_TOLERANCE,
    Bonus,
    BonusReason,
    Disqualifier,
    FollowUp,
    MemberRules,
    MemberScheme,
)
from ..registry import (
    CADENCES,
    MEMBER_SCHEMES,
)
from .branch import _bands, _labelled, _meeting, _quota
from .common import _ZERO, _unique


def _member(r: Reader) -> MemberRules | None:
    cadence = r.choice("cadence", CADENCES)
    scheme_r = r.table("scheme")
    scheme = _scheme(scheme_r) if scheme_r else None
    bonus_r = r.table("bonus", required=False)
    bonus = _bonus(bonus_r) if bonus_r else None
    raw_type = scheme_r.data.get("type") if scheme_r else None
    scheme_cls = MEMBER_SCHEMES.get(raw_type) if isinstance(raw_type, str) else None
    if bonus_r is not None and scheme_cls is not None and not scheme_cls.allows_bonus:
        name = scheme_cls.type_name
        bonus_r.error(
            None,
            f"评分方式 {name} 不能加分（总分是获得的星数）",
            f"the {name} scheme takes no bonus (its total is a count of stars)",
        )
        bonus = None
    attainable: Decimal | None = None
    if scheme is not None and (bonus_r is None or bonus is not None):
        top = scheme.max_total()
        if top is not None:
            attainable = top + (bonus.cap if bonus else _ZERO)
    stars_r = r.table("stars")
    stars = _bands(stars_r, attainable=attainable, ctx=None) if stars_r else None
    below = r.text("below_label", required=False, default="无星")
    disqualifiers = _disqualifiers(r)
    follow_r = r.table("follow_up", required=False)
    follow = _follow_up(follow_r) if follow_r else FollowUp()
    quota_r = r.table("quota", required=False)
    quota = _quota(quota_r) if quota_r else None
    meeting_r = r.table("meeting", required=False)
    meeting = _meeting(meeting_r) if meeting_r else None
    tolerance = r.decimal(
        "joint_tolerance", required=False, default=DEFAULT_JOINT_TOLERANCE, minimum=_ZERO, maximum=attainable
    )
    r.finish()
    if (
        cadence is None
        or scheme is None
        or stars is None
        or below is None
        or disqualifiers is None
        or follow is None
        or (bonus_r and bonus is None)
        or (quota_r and quota is None)
        or (meeting_r and meeting is None)
        or tolerance is None
    ):
        return None
    return MemberRules(
        cadence="quarter" if cadence == "quarter" else "half_year" if cadence == "half_year" else "year",
        scheme=scheme,
        stars=stars,
        below_label=below,
        bonus=bonus,
        disqualifiers=disqualifiers,
        follow_up=follow,
        quota=quota,
        meeting=meeting,
        joint_tolerance=tolerance,
    )


def _scheme(r: Reader) -> MemberScheme | None:
    name = r.text("type")
    if name is None:
        r.mark_all_used()
        return None
    scheme_cls = MEMBER_SCHEMES.get(name)
    if scheme_cls is None:
        listed = ", ".join(MEMBER_SCHEMES.names())
        r.error(
            "type", f"未知评分方式 '{name}'；可用: {listed}", f"unknown member scheme '{name}'; known schemes: {listed}"
        )
        r.mark_all_used()
        return None
    scheme = scheme_cls.parse(r)
    r.finish()
    return scheme


def _bonus(r: Reader) -> Bonus | None:
    cap = r.decimal("cap", positive=True)
    readers = r.tables("reasons", required=True, nonempty=True)
    reasons: list[BonusReason] = []
    ok = bool(readers)
    seen: dict[str, str] = {}
    for br in readers or []:
        key = br.key()
        label = br.text("label")
        maximum = br.decimal("max", positive=True)
        br.finish()
        unique = _unique(br, key, seen, "加分事由", "bonus reason")
        if key is None or label is None or maximum is None or not unique:
            ok = False
            continue
        reasons.append(BonusReason(key=key, label=label, max=maximum))
    r.finish()
    if cap is None or not ok:
        return None
    return Bonus(cap=cap, reasons=tuple(reasons))


def _disqualifiers(r: Reader) -> tuple[Disqualifier, ...] | None:
    pairs = _labelled(r, "disqualifiers", "取消评星情形", "disqualifier")
    return None if pairs is None else tuple(Disqualifier(key=k, label=v) for k, v in pairs)


def _follow_up(r: Reader) -> FollowUp | None:
    talk = r.level("talk_at_or_below", required=False)
    mentors = r.integer("mentors", required=False, default=0, minimum=0, maximum=20)
    mentor_level = r.level("mentor_at_or_below", required=False)
    rectify = r.integer("rectify_days", required=False, minimum=1, maximum=3660)
    review = r.integer("review_after_days", required=False, minimum=1, maximum=3660)
    r.finish()
    bad = any(
        r.has(k) and v is None
        for k, v in (
            ("talk_at_or_below", talk),
            ("mentor_at_or_below", mentor_level),
            ("rectify_days", rectify),
            ("review_after_days", review),
        )
    )
    if mentors is None or bad:
        return None
    if mentors > 0 and mentor_level is None:
        r.error(
            "mentor_at_or_below",
            "设置了帮扶指导员人数时必须给出适用的星级上限",
            "required when mentors > 0: the level at or below which mentors are assigned",
        )
        return None
    return FollowUp(
        talk_at_or_below=talk,
        mentors=mentors,
        mentor_at_or_below=mentor_level,
        rectify_days=rectify,
        review_after_days=review,
    )
