"""议星, the meeting: what every part of the 议星 works on (the meeting's context, its voter groups, the
refusals of the workflow) and the meeting itself, set up with its date, place and attendees per group.

The 议星 is split by what each part does, and each module says what it keeps secret (README "The 议星
ballot: what stays secret" has the whole argument and what remains visible while voting is open):
`ballot_codes` (codes and the slips), `ballot_casting` (the voter's page), `ballot_box` (where a
sealed ballot waits; the only writer of the box), `ballot_closing` (the close of voting),
`ballot_tallies` (paper ballots, counted by hand) and `ballot_results` (the results, only once
voting is closed). `ballot_slips` prints the slips.

Services flush, never commit, and refuse with `ServiceError`/`ConflictError` (a `FormError` carries
one message per field).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import core, workflow
from fivestar.branch_rounds.models import BallotMeeting, BranchRating, BranchRound, MeetingState, VoterGroup
from fivestar.enums import MemberStatus
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _
from fivestar.kernel.versioning import expect_version, flush_or_stale
from fivestar.people.models import Member
from fivestar.rules import BallotItem, BallotRules, RuleSet, ballot_items, ballot_rules, min_public_representatives
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

MAX_ATTENDEES = 500  # per group: a branch meeting, not a congress
PLACE_MAX = 200
GROUPS: tuple[VoterGroup, ...] = (VoterGroup.MEMBERS, VoterGroup.PUBLIC, VoterGroup.DEPUTIES)
COUNT_FIELDS: dict[VoterGroup, str] = {
    VoterGroup.MEMBERS: "members_count",
    VoterGroup.PUBLIC: "public_count",
    VoterGroup.DEPUTIES: "deputies_count",
}


class FormError(ServiceError):
    """Several fields are wrong; `errors` maps each field name to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(_("请按提示修改后再保存。"))
        self.errors = dict(errors)


def group_label(group: VoterGroup | str) -> str:
    return {
        VoterGroup.MEMBERS: _("党员"),
        VoterGroup.PUBLIC: _("群众代表"),
        VoterGroup.DEPUTIES: _("两代表一委员"),
    }[VoterGroup(group)]


def state_label(state: MeetingState) -> str:
    return {
        MeetingState.SETUP: _("筹备中"),
        MeetingState.VOTING: _("测评进行中"),
        MeetingState.CLOSED: _("测评已结束"),
    }[state]


@dataclass(frozen=True)
class MeetingContext:
    """Everything a meeting page or service needs about one branch's 议星."""

    branch_round: BranchRound
    rating: BranchRating
    rules: RuleSet
    ballot: BallotRules
    items: tuple[BallotItem, ...]
    meeting: BallotMeeting | None
    timezone: str
    members: int  # the branch's party members (for the public representatives' minimum)

    @property
    def state(self) -> MeetingState:
        return self.meeting.state if self.meeting is not None else MeetingState.SETUP

    @property
    def today(self) -> dt.date:
        return clock.now().astimezone(ZoneInfo(self.timezone)).date()

    def refusal(self, name: str, *, ballots_cast: int = 0) -> str | None:
        return workflow.meeting_refusal(
            name, self.state, self.branch_round.state, self.rating.step, ballots_cast=ballots_cast
        )


def load_meeting(session: Session, rating_id: int) -> BallotMeeting | None:
    return session.scalar(select(BallotMeeting).where(BallotMeeting.rating_id == rating_id))


def context_for(session: Session, rating: BranchRating) -> MeetingContext:
    branch_round = core.load_round(session, rating.round_id)
    rules = core.round_rules(session, branch_round)
    members = session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.branch_id == rating.branch_id, Member.status == MemberStatus.ACTIVE)
    )
    return MeetingContext(
        branch_round=branch_round,
        rating=rating,
        rules=rules,
        ballot=ballot_rules(rules),
        items=ballot_items(rules),
        meeting=load_meeting(session, rating.id),
        timezone=timezone_of(session, rating.tenant_id),
        members=int(members or 0),
    )


def refuse(ctx: MeetingContext, name: str, *, ballots_cast: int = 0) -> None:
    """Every writer of the 议星 asks first: a finalised round (409), then the workflow's refusal of `name`."""
    core.ensure_open(ctx.branch_round)
    refusal = ctx.refusal(name, ballots_cast=ballots_cast)
    if refusal is not None:
        raise ConflictError(refusal)


def flush_or_conflict(session: Session) -> None:
    """Flush; a row someone else changed or created meanwhile is a conflict, not a 500."""
    try:
        flush_or_stale(session)
    except IntegrityError:
        raise ConflictError(
            _("此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。")
        ) from None


def meeting_or_refuse(ctx: MeetingContext) -> BallotMeeting:
    """The meeting; slips, closing and tallies need one, so without it they refuse (409)."""
    if ctx.meeting is None:
        raise ConflictError(_("请先填写议星会议安排"))
    return ctx.meeting


# --- the meeting -----------------------------------------------------------------------------------


def public_minimum(ctx: MeetingContext) -> int | None:
    """Fewest public representatives the rules ask for (branch.meeting), or None."""
    return min_public_representatives(ctx.rules, ctx.members)


def public_shortfall(ctx: MeetingContext, public_count: int) -> str | None:
    """The warning when fewer public representatives attend than the rules ask for (with numbers)."""
    minimum = public_minimum(ctx)
    meeting_rules = ctx.rules.branch.meeting
    if minimum is None or meeting_rules is None or public_count >= minimum:
        return None
    percent = format((meeting_rules.public_representatives_min_share * 100).normalize(), "f")
    return _(
        "群众代表 %(public)d 人，少于本支部党员人数 %(members)d 的 %(percent)s%%（至少应有 %(min)d 人）",
        public=public_count,
        members=ctx.members,
        percent=percent,
        min=minimum,
    )


def ballot_shortfalls(ctx: MeetingContext, counts: Mapping[str, int]) -> tuple[str, ...]:
    """One warning per group whose attendees are fewer than the rules' minimum number of ballots:
    such a group's figures will never be shown, nor count in the weighted result — better said when
    the meeting is set up than found out after the vote. `counts` maps group names to attendees."""
    minimum = ctx.ballot.min_ballots
    warnings = []
    for group in GROUPS:
        attendees = int(counts.get(group.value, 0))
        if 0 < attendees < minimum:
            warnings.append(_shortfall_warning(group, attendees, minimum))
    return tuple(warnings)


def _shortfall_warning(group: VoterGroup, attendees: int, minimum: int) -> str:
    return _(
        "%(group)s %(n)d 人，少于规则要求的最低票数 %(min)d 张：该群体的测评结果将不予显示，也不计入加权结果",
        group=group_label(group),
        n=attendees,
        min=minimum,
    )


def form_text(raw: Mapping[str, object], name: str) -> str:
    """A form field as trimmed text ("" when missing)."""
    value = raw.get(name)
    return str(value).strip() if value is not None else ""


def form_count(errors: dict[str, str], raw: Mapping[str, object], name: str, label: str) -> int:
    """A form field as a head count (empty: 0); a wrong one adds its message to `errors` and counts 0,
    so that every wrong field of the form is reported at once."""
    text = form_text(raw, name)
    if not text:
        return 0
    try:
        number = int(text)
    except ValueError:
        errors[name] = _("%(label)s须为整数", label=label)
        return 0
    if number < 0 or number > MAX_ATTENDEES:
        errors[name] = _("%(label)s须在 0 到 %(max)d 之间", label=label, max=MAX_ATTENDEES)
        return 0
    return number


def _meeting_snapshot(meeting: BallotMeeting) -> dict[str, object]:
    return audit.snapshot(
        meeting, ["meeting_date", "place", "members_count", "public_count", "deputies_count", "state"]
    )


@dataclass(frozen=True)
class SavedMeeting:
    meeting: BallotMeeting
    warning: str | None  # the public representatives' shortfall, if any
    warnings: tuple[str, ...] = ()  # every warning: that one, then groups below the minimum of ballots


def save_meeting(
    session: Session, ctx: MeetingContext, raw: Mapping[str, object], version: str | int | None
) -> SavedMeeting:
    """Record (or change) the meeting's date, place and attendees per group, while still in SETUP.

    A shortfall of public representatives is a warning, not a refusal: meetings happen as they
    happen, and the numbers are kept and audited. A new meeting's form carries version 0."""
    refuse(ctx, "setup")
    if ctx.meeting is None:
        if str(version or "").strip() not in ("", "0"):
            raise ConflictError(_("会议安排已被他人删除或更改，请刷新页面"))
    else:
        expect_version(ctx.meeting, version)
    errors: dict[str, str] = {}
    meeting_date = None
    date_text = form_text(raw, "meeting_date")
    opened = ctx.branch_round.opened_at.astimezone(ZoneInfo(ctx.timezone)).date()
    if not date_text:
        errors["meeting_date"] = _("请填写会议日期")
    else:
        try:
            meeting_date = dt.date.fromisoformat(date_text)
        except ValueError:
            errors["meeting_date"] = _("会议日期格式不对，应如 2026-01-20")
        else:
            if meeting_date < opened:
                errors["meeting_date"] = _("会议日期不能早于本年度评定开启的日期 %(day)s", day=opened.isoformat())
    place = form_text(raw, "place")
    if not place:
        errors["place"] = _("请填写会议地点")
    elif len(place) > PLACE_MAX:
        errors["place"] = _("会议地点最长 %(n)d 个字", n=PLACE_MAX)
    counts = {
        group: form_count(errors, raw, COUNT_FIELDS[group], _("%(group)s人数", group=group_label(group)))
        for group in GROUPS
    }
    if not errors and sum(counts.values()) == 0:
        errors["members_count"] = _("请至少填写一类参会人员的人数")
    if errors:
        raise FormError(errors)
    assert meeting_date is not None
    meeting = ctx.meeting
    before = _meeting_snapshot(meeting) if meeting is not None else None
    if meeting is None:
        meeting = BallotMeeting(
            tenant_id=ctx.rating.tenant_id,
            rating_id=ctx.rating.id,
            meeting_date=meeting_date,
            place=place,
            state=MeetingState.SETUP,
        )
        session.add(meeting)
    meeting.meeting_date = meeting_date
    meeting.place = place
    meeting.members_count = counts[VoterGroup.MEMBERS]
    meeting.public_count = counts[VoterGroup.PUBLIC]
    meeting.deputies_count = counts[VoterGroup.DEPUTIES]
    flush_or_conflict(session)
    warning = public_shortfall(ctx, meeting.public_count)
    warnings = ((warning,) if warning else ()) + ballot_shortfalls(ctx, issued_counts(meeting))
    audit.record(
        session,
        "ballot_meeting.setup",
        meeting,
        before=before,
        after=_meeting_snapshot(meeting),
        reason="；".join(warnings) or None,
    )
    return SavedMeeting(meeting, warning, warnings)


def issued_counts(meeting: BallotMeeting) -> dict[str, int]:
    """Codes per group: one per attendee, fixed once the slips are issued (audited with each step)."""
    return {group.value: int(getattr(meeting, COUNT_FIELDS[group])) for group in GROUPS}


__all__ = [
    "COUNT_FIELDS",
    "GROUPS",
    "MAX_ATTENDEES",
    "PLACE_MAX",
    "FormError",
    "MeetingContext",
    "SavedMeeting",
    "ballot_shortfalls",
    "context_for",
    "flush_or_conflict",
    "form_count",
    "form_text",
    "group_label",
    "issued_counts",
    "load_meeting",
    "meeting_or_refuse",
    "public_minimum",
    "public_shortfall",
    "refuse",
    "save_meeting",
    "state_label",
]
