"""议星: the branch's meeting, its anonymous ballot (无记名测评), paper tallies and the results.

How anonymity is kept (README "The 议星 ballot: what stays secret" has the whole
argument and what remains visible while voting is open):

* Issuing the slips makes one random single-use code per attendee and group. Only the code's
  SHA-256 hash is stored, with its group and `used = false`; the codes themselves exist in memory
  just long enough to print the slips (in shuffled order — the slips are handed out at random), so
  the PDF can be made only then. Losing it means re-issuing (allowed while no ballot was cast).
* Casting is one transaction: `UPDATE ballot_codes SET used = true WHERE code_hash = :h AND used =
  false` must change exactly one row, then the ballot is sealed and dropped into the ballot box
  (ballot_box.py) with a random key — no code, no voter, no time. No audit event is written per
  ballot (its time would line up with the code's use); the meeting's totals are audited when voting
  closes.
* Closing the voting, in one transaction: every code row of the meeting is rewritten in random
  order (so no code row keeps the id of the transaction that used it, nor a position that follows
  the order of casting), the box is opened and its ballots written to `ballots` in random order with
  fresh keys, and the box is emptied for good (TRUNCATE on PostgreSQL, zeroed on SQLite). After
  that, nothing links a code, a slip or a moment of casting to a ballot.
* Codes never appear in a URL the server sees (the QR code puts them in the fragment), in an audit
  event, in a log line, in an exception or in a flash message.
* Results appear only once voting is closed (live figures would tell who just voted what), per group
  only from the rules' minimum number of ballots, and a hidden group is left out of the weighted
  result too (fivestar.rules.ballot).

Services flush, never commit, and refuse with `ServiceError`/`ConflictError` (a `FormError` carries
one message per field).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fivestar import audit
from fivestar.branch_rounds import ballot_box, core, workflow
from fivestar.branch_rounds.models import (
    Ballot,
    BallotCode,
    BallotMeeting,
    BranchRating,
    BranchRound,
    BranchRoundState,
    MeetingState,
    PaperTally,
    RatingStep,
    VoterGroup,
)
from fivestar.enums import MemberStatus
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _
from fivestar.kernel.versioning import expect_version as check_version
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import (
    OVERALL,
    BallotItem,
    BallotResult,
    BallotRules,
    GroupCounts,
    RuleSet,
    ballot_items,
    ballot_rules,
    min_public_representatives,
    tally_ballots,
)
from fivestar.tenants.models import RuleSetVersion
from fivestar.tenants.services import pinned_rules
from fivestar.timekeeping import clock

# Ten characters from an alphabet without 0/O, 1/I/L: ≈ 49 bits, read aloud or typed without doubt.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
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


# --- codes -----------------------------------------------------------------------------------------


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """For reading: ABCDE-FGHJK."""
    return f"{code[:5]}-{code[5:]}"


def normalise_code(text: object) -> str | None:
    """What a person typed, as a code (spaces and dashes dropped, any case), or None if it cannot be
    one. Nothing here echoes the input back: a malformed code is never shown or logged."""
    if not isinstance(text, str):
        return None
    cleaned = "".join(ch for ch in text.upper() if ch not in " -_\t\r\n")
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def code_hash(code: str, secret_key: str) -> str:
    """What is stored of a code: HMAC-SHA256 under a key derived from the instance's secret key, so
    that someone holding only a copy of the database cannot find unused codes by trying every
    possible code (ten characters of 31: about 2^49 tries, hours for a graphics card)."""
    return hmac.new(ballot_box.code_key(secret_key), code.encode("ascii"), hashlib.sha256).hexdigest()


def legacy_code_hash(code: str) -> str:
    """How codes issued before revision 0003 were stored (a plain SHA-256): still accepted, so that a
    meeting voting during the upgrade goes on; codes issued since never match it."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _hashes(code: str, secret_key: str) -> dict[str, str]:
    return {"b_hash": code_hash(code, secret_key), "b_legacy": legacy_code_hash(code)}


# --- context ---------------------------------------------------------------------------------------


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
        timezone=core.tenant_timezone(session, rating.tenant_id),
        members=int(members or 0),
    )


def _refuse(ctx: MeetingContext, name: str, *, ballots_cast: int = 0) -> None:
    core.ensure_open(ctx.branch_round)
    refusal = ctx.refusal(name, ballots_cast=ballots_cast)
    if refusal is not None:
        raise ConflictError(refusal)


def _flush(session: Session) -> None:
    """Flush; a row someone else changed or created meanwhile is a conflict, not a 500."""
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        raise ConflictError(
            _("此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。")
        ) from None


def _meeting_or_refuse(ctx: MeetingContext) -> BallotMeeting:
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
        public=public_count, members=ctx.members, percent=percent, min=minimum,
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
            warnings.append(_(
                "%(group)s %(n)d 人，少于规则要求的最低票数 %(min)d 张：该群体的测评结果将不予显示，也不计入加权结果",
                group=group_label(group), n=attendees, min=minimum,
            ))
    return tuple(warnings)


def _text(raw: Mapping[str, object], name: str) -> str:
    value = raw.get(name)
    return str(value).strip() if value is not None else ""


def _count(errors: dict[str, str], raw: Mapping[str, object], name: str, label: str) -> int:
    text = _text(raw, name)
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
    _refuse(ctx, "setup")
    if ctx.meeting is None:
        if str(version or "").strip() not in ("", "0"):
            raise ConflictError(_("会议安排已被他人删除或更改，请刷新页面"))
    else:
        check_version(ctx.meeting, version)
    errors: dict[str, str] = {}
    meeting_date = None
    date_text = _text(raw, "meeting_date")
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
    place = _text(raw, "place")
    if not place:
        errors["place"] = _("请填写会议地点")
    elif len(place) > PLACE_MAX:
        errors["place"] = _("会议地点最长 %(n)d 个字", n=PLACE_MAX)
    counts = {
        group: _count(errors, raw, COUNT_FIELDS[group], _("%(group)s人数", group=group_label(group)))
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
            tenant_id=ctx.rating.tenant_id, rating_id=ctx.rating.id, meeting_date=meeting_date, place=place,
            state=MeetingState.SETUP,
        )
        session.add(meeting)
    meeting.meeting_date = meeting_date
    meeting.place = place
    meeting.members_count = counts[VoterGroup.MEMBERS]
    meeting.public_count = counts[VoterGroup.PUBLIC]
    meeting.deputies_count = counts[VoterGroup.DEPUTIES]
    _flush(session)
    warning = public_shortfall(ctx, meeting.public_count)
    warnings = ((warning,) if warning else ()) + ballot_shortfalls(ctx, _issued_counts(meeting))
    audit.record(
        session, "ballot_meeting.setup", meeting, before=before, after=_meeting_snapshot(meeting),
        reason="；".join(warnings) or None,
    )
    return SavedMeeting(meeting, warning, warnings)


# --- slips -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slip:
    group: VoterGroup
    code: str  # plain text: exists only in memory, for the PDF being made right now


@dataclass(frozen=True)
class IssuedSlips:
    meeting: BallotMeeting
    slips: list[Slip] = field(default_factory=list)  # shuffled


def _insert_codes(session: Session, meeting: BallotMeeting, secret_key: str) -> list[Slip]:
    """New codes for every attendee of every group (one INSERT), in shuffled order."""
    slips = [
        Slip(group, new_code())
        for group in GROUPS
        for _n in range(int(getattr(meeting, COUNT_FIELDS[group])))
    ]
    if not slips:
        raise ConflictError(_("会议没有参会人员，无法发放测评票"))
    session.execute(
        insert(BallotCode),
        [
            {"tenant_id": meeting.tenant_id, "meeting_id": meeting.id, "group": s.group,
             "code_hash": code_hash(s.code, secret_key), "used": False}
            for s in slips
        ],
    )
    secrets.SystemRandom().shuffle(slips)
    return slips


def _issued_counts(meeting: BallotMeeting) -> dict[str, int]:
    return {group.value: int(getattr(meeting, COUNT_FIELDS[group])) for group in GROUPS}


def issue_slips(
    session: Session, ctx: MeetingContext, version: str | int | None, *, secret_key: str
) -> IssuedSlips:
    """Make the codes and start voting. The plain codes are returned once, for the slips PDF.
    `secret_key` is the instance's (codes are stored as keyed hashes: `code_hash`)."""
    core.ensure_open(ctx.branch_round)
    meeting = _meeting_or_refuse(ctx)
    _refuse(ctx, "issue_slips")
    check_version(meeting, version)
    meeting.state = MeetingState.VOTING
    meeting.slips_issued_at = clock.now()
    _flush(session)  # the version check of the UPDATE: of two clicks at once only one goes on
    slips = _insert_codes(session, meeting, secret_key)
    audit.record(
        session, "ballot_meeting.issue_slips", meeting,
        before={"state": MeetingState.SETUP}, after={"state": meeting.state, "codes": _issued_counts(meeting)},
    )
    return IssuedSlips(meeting, slips)


def ballots_cast(session: Session, meeting: BallotMeeting) -> int:
    """Electronic ballots cast so far (in the box while voting; counted once closed)."""
    if meeting.state is MeetingState.CLOSED:
        return int(
            session.scalar(select(func.count()).select_from(Ballot).where(Ballot.meeting_id == meeting.id)) or 0
        )
    return ballot_box.count(session, meeting.tenant_id, meeting.id)


def reissue_slips(
    session: Session, ctx: MeetingContext, version: str | int | None, *, secret_key: str
) -> IssuedSlips:
    """Revoke every code of the meeting and print new ones — only while no ballot has been cast
    (a lost or spoilt PDF: the codes cannot be printed again, since only their hashes are kept)."""
    core.ensure_open(ctx.branch_round)
    meeting = _meeting_or_refuse(ctx)
    _refuse(ctx, "reissue", ballots_cast=ballots_cast(session, meeting))
    check_version(meeting, version)
    used = session.scalar(
        select(func.count()).select_from(BallotCode).where(BallotCode.meeting_id == meeting.id, BallotCode.used)
    )
    if used:  # a used code without a ballot cannot happen (one transaction), but never revoke one
        raise ConflictError(_("已有测评码被使用，不能再重新发放测评票"))
    revoked = session.execute(
        delete(BallotCode).where(BallotCode.tenant_id == meeting.tenant_id, BallotCode.meeting_id == meeting.id)
    )
    revoked_count = int(revoked.rowcount or 0)  # type: ignore[attr-defined]
    before_state = meeting.state
    meeting.state = MeetingState.VOTING
    meeting.slips_issued_at = clock.now()
    _flush(session)
    slips = _insert_codes(session, meeting, secret_key)
    audit.record(
        session, "ballot_meeting.reissue", meeting,
        before={"state": before_state},
        after={"state": meeting.state, "codes": _issued_counts(meeting), "revoked": revoked_count},
    )
    return IssuedSlips(meeting, slips)


# --- casting (the voter's page) --------------------------------------------------------------------


@dataclass(frozen=True)
class Voting:
    """What the voter's page needs to show the ballot of a valid, unused code."""

    meeting_id: int
    meeting_date: dt.date
    group: VoterGroup
    branch_name: str
    ballot: BallotRules
    items: tuple[BallotItem, ...]


def _bad_code() -> ServiceError:
    return ServiceError(_("测评码无效，请核对测评票上的测评码后重新输入。"), field="code")


# (rule-set version id, content hash) → the ballot part of those rules; versions never change, and
# the hash guards against an id reused after a rolled-back transaction (as tenants.pinned_rules).
_BALLOTS_BY_VERSION: dict[tuple[int, str], tuple[BallotRules, tuple[BallotItem, ...]]] = {}


def _ballot_of(session: Session, version_id: int, content_hash: str) -> tuple[BallotRules, tuple[BallotItem, ...]]:
    key = (version_id, content_hash)
    found = _BALLOTS_BY_VERSION.get(key)
    if found is None:
        rules = pinned_rules(session, version_id)
        found = (ballot_rules(rules), ballot_items(rules))
        if len(_BALLOTS_BY_VERSION) > 256:
            _BALLOTS_BY_VERSION.clear()
        _BALLOTS_BY_VERSION[key] = found
    return found


# The voter's path runs on every ballot, all at once when the chair says "please vote now": it uses
# Core statements on the tables (no ORM unit of work, no loader-criteria hook), one UPDATE, one
# SELECT and one INSERT — and, being Core, each filters `tenant_id` itself (tenancy.py's rule for
# statements the hook does not see).
_CODES = cast(Table, BallotCode.__table__)
_MEETINGS = cast(Table, BallotMeeting.__table__)
_RATINGS = cast(Table, BranchRating.__table__)
_ROUNDS = cast(Table, BranchRound.__table__)
_ORGS = cast(Table, Organisation.__table__)
_VERSIONS = cast(Table, RuleSetVersion.__table__)


def _statements() -> dict[str, Any]:
    """Built once: constructing a statement costs more than running it on this path."""
    c, m, r, o, br, v = _CODES, _MEETINGS, _RATINGS, _ORGS, _ROUNDS, _VERSIONS
    tenant: Any = bindparam("b_tenant")
    code_of_tenant = (c.c.tenant_id == tenant) & c.c.code_hash.in_([bindparam("b_hash"), bindparam("b_legacy")])
    return {
        "claim": update(c)
        .where(code_of_tenant, c.c.used.is_(False))
        .values(used=True)
        .returning(c.c.meeting_id, c.c.group),
        "unused": select(c.c.meeting_id, c.c.group).where(code_of_tenant, c.c.used.is_(False)),
        "why": select(c.c.used, m.c.state)
        .select_from(c.join(m, (m.c.id == c.c.meeting_id) & (m.c.tenant_id == c.c.tenant_id)))
        .where(code_of_tenant),
        "voting": select(m.c.state, m.c.meeting_date, r.c.step, o.c.name, br.c.state, br.c.rules_version_id,
                         v.c.content_hash)
        .select_from(
            m.join(r, (r.c.id == m.c.rating_id) & (r.c.tenant_id == m.c.tenant_id))
            .join(o, (o.c.id == r.c.branch_id) & (o.c.tenant_id == r.c.tenant_id))
            .join(br, (br.c.id == r.c.round_id) & (br.c.tenant_id == r.c.tenant_id))
            .join(v, (v.c.id == br.c.rules_version_id) & (v.c.tenant_id == br.c.tenant_id))
        )
        .where(m.c.id == bindparam("b_meeting"), m.c.tenant_id == tenant),
    }


_SQL = _statements()


def _voting_for(session: Session, tenant_id: int, meeting_id: int, group: VoterGroup) -> Voting:
    """The meeting, its branch and its round in one query."""
    row: Any = session.execute(_SQL["voting"], {"b_meeting": meeting_id, "b_tenant": tenant_id}).one_or_none()
    if row is None:  # pragma: no cover - foreign keys guarantee it
        raise _bad_code()
    meeting_state, meeting_date, step, branch_name, round_state, version_id, content_hash = tuple(row)
    refusal = workflow.meeting_refusal(
        "cast", MeetingState(str(meeting_state)), BranchRoundState(str(round_state)), RatingStep(str(step))
    )
    if refusal is not None:
        raise ConflictError(refusal, field="code")
    rules, items = _ballot_of(session, int(version_id), str(content_hash))
    assert isinstance(meeting_date, dt.date)
    return Voting(meeting_id, meeting_date, group, str(branch_name), rules, items)


def _why_not(session: Session, tenant_id: int, hashed: Mapping[str, str]) -> ServiceError:
    """Why a code cannot be used: unknown (400), meeting over (409) or already used (409)."""
    row = session.execute(_SQL["why"], {"b_tenant": tenant_id, **hashed}).first()
    if row is None:
        return _bad_code()
    if MeetingState(str(row[1])) is MeetingState.CLOSED:
        return ConflictError(_("本次测评已结束，测评码不能再使用。"), field="code")
    return ConflictError(_("该测评码已经使用过：每个测评码只能投票一次。"), field="code")


def check_code(session: Session, tenant_id: int, text: object, *, secret_key: str) -> Voting:
    """Is this a valid, unused code of a meeting that is voting? (Nothing is changed.)"""
    code = normalise_code(text)
    if code is None:
        raise _bad_code()
    hashed = _hashes(code, secret_key)
    row = session.execute(_SQL["unused"], {"b_tenant": tenant_id, **hashed}).first()
    if row is None:
        raise _why_not(session, tenant_id, hashed)
    return _voting_for(session, tenant_id, int(row[0]), VoterGroup(str(row[1])))


def parse_choice(
    ballot: BallotRules, items: tuple[BallotItem, ...], raw: Mapping[str, object]
) -> tuple[int | None, dict[str, int] | None]:
    """The voter's answers: (level, None) for the level form, (None, {indicator: value}) for the
    indicators form. Every question must be answered with one of the rules' answers."""
    allowed = set(ballot.values())
    errors: dict[str, str] = {}
    values: dict[str, int] = {}
    for item in items:
        name = choice_field(item)
        text = _text(raw, name)
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value not in allowed:
            errors[name] = _("请选择一项") if not text else _("选项无效，请重新选择")
            continue
        values[item.key] = value
    if errors:
        raise FormError(errors)
    if ballot.form == "level":
        return values[OVERALL], None
    return None, values


def choice_field(item: BallotItem) -> str:
    """The form field of one question: `level`, or `item.<indicator key>`."""
    return "level" if item.key == OVERALL else f"item.{item.key}"


def cast_ballot(
    session: Session, tenant_id: int, text: object, raw: Mapping[str, object], *, secret_key: str
) -> None:
    """Use the code once and drop the sealed ballot into the box, in the caller's (single) transaction.

    The conditional UPDATE comes first, so that on SQLite the transaction starts as a writer (a
    transaction that read first cannot become one once another voter has committed), and so that
    of any number of simultaneous submissions of one code exactly one changes the row (PostgreSQL
    re-checks `used = false` after waiting for the row lock). If anything after it refuses, the
    caller rolls back and the code is unused again. `secret_key` is the instance's (it seals the
    ballot until the close).
    """
    code = normalise_code(text)
    if code is None:
        raise _bad_code()
    hashed = _hashes(code, secret_key)
    claimed = session.execute(_SQL["claim"], {"b_tenant": tenant_id, **hashed}).all()
    if len(claimed) != 1:
        raise _why_not(session, tenant_id, hashed)
    meeting_id, group = int(claimed[0][0]), VoterGroup(str(claimed[0][1]))
    voting = _voting_for(session, tenant_id, meeting_id, group)
    level, ratings = parse_choice(voting.ballot, voting.items, raw)
    # Sealed, with a random key and nothing else: no code, no voter, no time (and no audit event).
    ballot_box.put(session, secret_key, tenant_id, meeting_id, ballot_box.BoxedBallot(group, level, ratings))


# --- closing ---------------------------------------------------------------------------------------


def _per_group(session: Session, model: type[Ballot] | type[BallotCode], *where: Any) -> dict[str, int]:
    """Rows of `model` matching `where`, counted per voter group (every group present, 0 if none)."""
    rows = session.execute(select(model.group, func.count()).where(*where).group_by(model.group)).all()
    found = {VoterGroup(g).value: int(n) for g, n in rows}
    return {group.value: found.get(group.value, 0) for group in GROUPS}


def electronic_per_group(session: Session, meeting: BallotMeeting) -> dict[str, int]:
    """Electronic ballots of each group so far: while voting, the codes used (the box is sealed);
    once closed, the ballots counted."""
    if meeting.state is MeetingState.CLOSED:
        return _per_group(session, Ballot, Ballot.meeting_id == meeting.id)
    return _per_group(session, BallotCode, BallotCode.meeting_id == meeting.id, BallotCode.used.is_(True))


def _rewrite_codes(session: Session, meeting: BallotMeeting) -> int:
    """Every code of the meeting used up, each row written anew in random order; returns how many
    had not been used.

    On PostgreSQL each row version carries the id of the transaction that wrote it, and the order
    of new versions on disk follows the order of writing: after this, every code row of the meeting
    carries the closing transaction's id and sits at a random place. The UPDATE first waits for any
    casting transaction holding one of these rows, so no ballot slips in afterwards."""
    unused = session.execute(
        update(BallotCode)
        .where(
            BallotCode.tenant_id == meeting.tenant_id,
            BallotCode.meeting_id == meeting.id,
            BallotCode.used.is_(False),
        )
        .values(used=True)
        .execution_options(synchronize_session=False)
    )
    codes = [
        {"id": int(row[0]), "tenant_id": meeting.tenant_id, "meeting_id": meeting.id, "group": row[1],
         "code_hash": str(row[2]), "used": True}
        for row in session.execute(
            select(BallotCode.id, BallotCode.group, BallotCode.code_hash).where(
                BallotCode.tenant_id == meeting.tenant_id, BallotCode.meeting_id == meeting.id
            )
        )
    ]
    session.execute(
        delete(BallotCode)
        .where(BallotCode.tenant_id == meeting.tenant_id, BallotCode.meeting_id == meeting.id)
        .execution_options(synchronize_session=False)
    )
    secrets.SystemRandom().shuffle(codes)
    if codes:
        session.execute(insert(BallotCode), codes)
    return int(unused.rowcount or 0)  # type: ignore[attr-defined]


def close_voting(
    session: Session, ctx: MeetingContext, version: str | int | None, *, secret_key: str
) -> dict[str, int]:
    """End voting: every code not used yet stops working, the ballot box is opened and emptied, and
    its ballots are counted in random order; the totals are audited. Returns the electronic ballots
    per group. `secret_key` is the instance's (the box was sealed with it)."""
    core.ensure_open(ctx.branch_round)
    meeting = _meeting_or_refuse(ctx)
    _refuse(ctx, "close_voting")
    check_version(meeting, version)
    meeting.state = MeetingState.CLOSED
    meeting.voting_closed_at = clock.now()
    _flush(session)
    unused = _rewrite_codes(session, meeting)
    boxed = ballot_box.open_box(session, secret_key, meeting.tenant_id, meeting.id)
    if boxed:
        session.execute(
            insert(Ballot),
            [{**row, "tenant_id": meeting.tenant_id, "meeting_id": meeting.id} for row in ballot_box.plain(boxed)],
        )
    ballot_box.empty_box(session, meeting.tenant_id, meeting.id)
    ballots = _per_group(session, Ballot, Ballot.meeting_id == meeting.id)
    audit.record(
        session, "ballot_meeting.close", meeting,
        before={"state": MeetingState.VOTING},
        after={
            "state": meeting.state,
            "codes": _issued_counts(meeting),  # one code per attendee, fixed once issued
            "ballots": ballots,
            "codes_unused": unused,
        },
    )
    return ballots


# --- paper tallies ---------------------------------------------------------------------------------


TallyKey = tuple[VoterGroup, str, int]  # group, item key ("" = the level), value


def tally_field(group: VoterGroup | str, item_key: str, value: int) -> str:
    return f"tally.{VoterGroup(group).value}.{item_key or '_'}.{value}"


def paper_tallies(session: Session, meeting_id: int) -> dict[TallyKey, int]:
    rows = session.execute(
        select(PaperTally.group, PaperTally.indicator_key, PaperTally.value, PaperTally.count).where(
            PaperTally.meeting_id == meeting_id
        )
    )
    return {(VoterGroup(g), key, int(value)): int(count) for g, key, value, count in rows}


def _paper_ballots(items: tuple[BallotItem, ...], tallies: Mapping[TallyKey, int], group: VoterGroup) -> int:
    """A group's paper ballots: the level tally's total, or the largest indicator's (a voter may
    leave an indicator blank on paper)."""
    sums = [
        sum(n for (g, key, _v), n in tallies.items() if g is group and key == item.key) for item in items
    ]
    return max(sums, default=0)


def save_tallies(
    session: Session, ctx: MeetingContext, raw: Mapping[str, object], version: str | int | None
) -> dict[TallyKey, int]:
    """Replace the meeting's paper tallies with the counts in the form (empty = 0).

    Paper and electronic ballots of a group together cannot exceed its attendees. Guarded by the
    meeting's version: two secretaries entering tallies at once — the second gets a conflict."""
    core.ensure_open(ctx.branch_round)
    meeting = _meeting_or_refuse(ctx)
    _refuse(ctx, "tally")
    check_version(meeting, version)
    errors: dict[str, str] = {}
    counts: dict[TallyKey, int] = {}
    for group in GROUPS:
        for item in ctx.items:
            for value in ctx.ballot.values():
                name = tally_field(group, item.key, value)
                number = _count(errors, raw, name, _("票数"))
                if number:
                    counts[(group, item.key, value)] = number
    electronic = electronic_per_group(session, meeting)
    for group in GROUPS:
        attendees = int(getattr(meeting, COUNT_FIELDS[group]))
        paper = _paper_ballots(ctx.items, counts, group)
        if paper + electronic[group.value] > attendees:
            errors[f"tally.{group.value}"] = _(
                "%(group)s纸质票 %(paper)d 张加电子票 %(electronic)d 张，超过参会人数 %(n)d",
                group=group_label(group), paper=paper, electronic=electronic[group.value], n=attendees,
            )
    if errors:
        raise FormError(errors)
    before = paper_tallies(session, meeting.id)
    # The meeting's version moves with the tallies: a concurrent save of the same version fails.
    bumped = session.execute(
        update(BallotMeeting)
        .where(BallotMeeting.tenant_id == meeting.tenant_id, BallotMeeting.id == meeting.id,
               BallotMeeting.version == meeting.version)
        .values(version=meeting.version + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(_("此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。"))
    session.expire(meeting, ["version"])
    session.execute(
        delete(PaperTally).where(PaperTally.tenant_id == meeting.tenant_id, PaperTally.meeting_id == meeting.id)
    )
    if counts:
        session.execute(
            insert(PaperTally),
            [
                {"tenant_id": meeting.tenant_id, "meeting_id": meeting.id, "group": g, "indicator_key": key,
                 "value": value, "count": n}
                for (g, key, value), n in counts.items()
            ],
        )
    audit.record(session, "ballot_meeting.tally", meeting, before=_tally_doc(before), after=_tally_doc(counts))
    return counts


def _tally_doc(counts: Mapping[TallyKey, int]) -> dict[str, int]:
    return {f"{g.value}/{key or 'level'}/{value}": n for (g, key, value), n in sorted(counts.items())}


# --- results ---------------------------------------------------------------------------------------


def group_counts(session: Session, ctx: MeetingContext, meeting: BallotMeeting) -> dict[str, GroupCounts]:
    """Electronic ballots and paper tallies of each group, as counts the rule engine tallies
    (two or three small queries, whatever the number of ballots)."""
    return _counts_of(session, {meeting.id: (ctx.ballot, ctx.items)})[meeting.id]


def _counts_of(
    session: Session, shapes: Mapping[int, tuple[BallotRules, tuple[BallotItem, ...]]]
) -> dict[int, dict[str, GroupCounts]]:
    """`group_counts` of many meetings at once (meeting id → its ballot's form and items): one query
    per ballot form in use plus one for the paper tallies, whatever the number of meetings."""
    per_item: dict[int, dict[VoterGroup, dict[str, dict[int, int]]]] = {
        m: {g: {} for g in GROUPS} for m in shapes
    }
    electronic: dict[int, dict[VoterGroup, int]] = {m: dict.fromkeys(GROUPS, 0) for m in shapes}

    def add(meeting_id: int, group: VoterGroup, key: str, value: int, n: int) -> None:
        bucket = per_item[meeting_id][group].setdefault(key, {})
        bucket[value] = bucket.get(value, 0) + n

    by_level = [m for m, (rules, _items) in shapes.items() if rules.form == "level"]
    by_items = [m for m, (rules, _items) in shapes.items() if rules.form != "level"]
    if by_level:
        for meeting_id, g, level, n in session.execute(
            select(Ballot.meeting_id, Ballot.group, Ballot.level, func.count())
            .where(Ballot.meeting_id.in_(by_level))
            .group_by(Ballot.meeting_id, Ballot.group, Ballot.level)
        ):
            group = VoterGroup(g)
            electronic[meeting_id][group] += int(n)
            if level is not None:
                add(meeting_id, group, OVERALL, int(level), int(n))
    if by_items:
        for row in session.execute(
            select(Ballot.meeting_id, Ballot.group, Ballot.ratings).where(Ballot.meeting_id.in_(by_items))
        ):
            of_meeting, voter_group = int(row[0]), VoterGroup(row[1])
            answers: dict[str, object] = row[2] or {}
            keys = {item.key for item in shapes[of_meeting][1]}
            electronic[of_meeting][voter_group] += 1
            for key, value in answers.items():
                if key in keys and isinstance(value, int):
                    add(of_meeting, voter_group, key, value, 1)
    tallies: dict[int, dict[TallyKey, int]] = {m: {} for m in shapes}
    if shapes:
        for meeting_id, g, key, value, count in session.execute(
            select(PaperTally.meeting_id, PaperTally.group, PaperTally.indicator_key, PaperTally.value,
                   PaperTally.count).where(PaperTally.meeting_id.in_(list(shapes)))
        ):
            tallies[meeting_id][(VoterGroup(g), key, int(value))] = int(count)
    found: dict[int, dict[str, GroupCounts]] = {}
    for meeting_id, (rules, items) in shapes.items():
        allowed = set(rules.values())
        item_keys = {item.key for item in items}
        for (group, key, value), n in tallies[meeting_id].items():
            if key in item_keys and value in allowed:
                add(meeting_id, group, key, value, n)
        found[meeting_id] = {
            group.value: GroupCounts(
                ballots=electronic[meeting_id][group] + _paper_ballots(items, tallies[meeting_id], group),
                counts=per_item[meeting_id][group],
            )
            for group in GROUPS
        }
    return found


def results_for_ratings(session: Session, rating_ids: Sequence[int]) -> dict[int, BallotResult]:
    """The ballot results of many branch ratings at once (rating id → result; ratings whose voting
    has not closed are left out), for list pages and reports. A fixed number of queries — the
    meetings, the rule-set versions they were counted under, the ballots, the paper tallies —
    whatever the number of ratings."""
    if not rating_ids:
        return {}
    rows = session.execute(
        select(BallotMeeting.id, BallotMeeting.rating_id, BranchRound.rules_version_id)
        .join(BranchRating, (BranchRating.id == BallotMeeting.rating_id)
              & (BranchRating.tenant_id == BallotMeeting.tenant_id))
        .join(BranchRound, (BranchRound.id == BranchRating.round_id)
              & (BranchRound.tenant_id == BranchRating.tenant_id))
        .where(BallotMeeting.rating_id.in_(list(rating_ids)), BallotMeeting.state == MeetingState.CLOSED)
    ).all()
    if not rows:
        return {}
    rules_of = {version_id: pinned_rules(session, version_id) for version_id in {int(r[2]) for r in rows}}
    shapes = {
        int(meeting_id): (ballot_rules(rules_of[int(version_id)]), ballot_items(rules_of[int(version_id)]))
        for meeting_id, _rating, version_id in rows
    }
    counts = _counts_of(session, shapes)
    return {
        int(rating_id): tally_ballots(rules_of[int(version_id)], counts[int(meeting_id)])
        for meeting_id, rating_id, version_id in rows
    }


def weighted_summaries(session: Session, rating_ids: Sequence[int]) -> dict[int, str]:
    """The ballot result of many branch ratings in a few words each, for a list page (rating id →
    text; ratings whose voting has not closed are left out): `results_for_ratings`, worded."""
    return {rating_id: summary_text(result) for rating_id, result in results_for_ratings(session, rating_ids).items()}


def summary_text(result: BallotResult) -> str:
    """A ballot result in a few words: the weighted result and the ballots it rests on."""
    if result.weighted is None:
        return _("票数不足（共 %(n)d 票）", n=result.ballots)
    if result.form == "level":
        return _("加权 %(value)s 星（共 %(n)d 票）", value=result.weighted, n=result.ballots)
    return _("加权 %(value)s 分（共 %(n)d 票）", value=result.weighted, n=result.ballots)


def results(session: Session, ctx: MeetingContext) -> BallotResult | None:
    """The ballot's results — only once voting is closed (None before, or without a meeting)."""
    meeting = ctx.meeting
    if meeting is None or meeting.state is not MeetingState.CLOSED:
        return None
    return tally_ballots(ctx.rules, group_counts(session, ctx, meeting))


def results_for_rating(session: Session, rating: BranchRating) -> BallotResult | None:
    """The ballot results of one branch's rating, for other parts (the committee's dossier)."""
    return results(session, context_for(session, rating))


def has_results(session: Session, ctx: MeetingContext) -> bool:
    """Voting closed and a weighted result exists (at least one counted group reaches the minimum)."""
    found = results(session, ctx)
    return found is not None and found.available


__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "GROUPS",
    "FormError",
    "IssuedSlips",
    "MeetingContext",
    "SavedMeeting",
    "Slip",
    "Voting",
    "ballot_shortfalls",
    "ballots_cast",
    "cast_ballot",
    "check_code",
    "choice_field",
    "close_voting",
    "code_hash",
    "context_for",
    "electronic_per_group",
    "format_code",
    "group_counts",
    "group_label",
    "has_results",
    "issue_slips",
    "legacy_code_hash",
    "load_meeting",
    "new_code",
    "normalise_code",
    "paper_tallies",
    "parse_choice",
    "public_minimum",
    "public_shortfall",
    "reissue_slips",
    "results",
    "results_for_rating",
    "results_for_ratings",
    "save_meeting",
    "save_tallies",
    "state_label",
    "summary_text",
    "tally_field",
    "weighted_summaries",
]
