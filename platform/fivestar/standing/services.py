"""Writing the level history: a round's results when they become final, and the committee's
adjustments (增星摘星) between rounds.

The rounds sit above this package and call `record_round_levels` at the moment their results become
final (a branch round's finalising, a member round's closing). They hand over a SELECT of their own
rows, so the history of a whole round is one INSERT … SELECT whatever the number of branches or
members; each row's previous level is read in the same statement from the subject's latest row.

`record_adjustment` is the one way a decided level changes after finalising: the committee's
decision with cause, reason and approving meeting, written as an `Adjustment`, a history row and an
audit event. It cannot be undone; a later adjustment corrects it. Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast as typed

from sqlalchemy import Integer, SelectBase, String, Table, Text, cast, func, insert, literal, select
from sqlalchemy.orm import Session, selectinload

from fivestar import audit
from fivestar.db import UTCDateTime
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.kernel import rounds
from fivestar.kernel.versioning import StaleEditError, expect_version
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import RuleSet, level_label
from fivestar.standing import workflow
from fivestar.standing.models import (
    Adjustment,
    Cause,
    EventKind,
    EventState,
    LevelHistory,
    SourceKind,
    StandingEvent,
)
from fivestar.standing.subjects import Subject
from fivestar.timekeeping import clock

REASON_MAX = 2000
MEETING_MAX = 200
NOTE_MAX = 2000

_HISTORY = typed(Table, LevelHistory.__table__)
# A round or another adjustment recorded a level since the form was opened.
STALE_LEVEL = _l("星级已被他人修改（您打开后有新的星级记录）。请核对当前星级后再提交。")


@dataclass(frozen=True)
class RoundLevels:
    """Which round's results are being written: its kind, id, period and when they took effect."""

    source: SourceKind  # BRANCH_ROUND or MEMBER_ROUND
    tenant_id: int
    round_id: int
    period: str
    effective_at: dt.datetime


def record_round_levels(session: Session, round_levels: RoundLevels, levels: SelectBase) -> int:
    """Write one history row per subject of a round whose results just became final.

    `levels` is the round's SELECT with the labelled columns `subject_id`, `level`, `recorded_by`
    (None: the acting person) and `reason`; it runs inside one INSERT … SELECT (set-based), and each
    row's previous level is the subject's latest level before it. Returns the number of rows."""
    if round_levels.source is SourceKind.ADJUSTMENT:  # pragma: no cover - a programming error
        raise ValueError("adjustments are written by record_adjustment")
    branch = round_levels.source is SourceKind.BRANCH_ROUND
    src = levels.subquery("src")
    prior = _HISTORY.alias("prior")
    subject_column = prior.c.branch_id if branch else prior.c.member_id
    previous = (
        select(prior.c.level)
        .where(prior.c.tenant_id == round_levels.tenant_id, subject_column == src.c.subject_id)
        .order_by(prior.c.effective_at.desc(), prior.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    actor = audit.current_actor().name[:120]
    null_int = literal(None, Integer)
    rows = select(
        literal(round_levels.tenant_id, Integer),
        src.c.subject_id if branch else null_int,
        null_int if branch else src.c.subject_id,
        src.c.level,
        previous,
        literal(round_levels.source.value, String),
        literal(round_levels.round_id, Integer) if branch else null_int,
        null_int if branch else literal(round_levels.round_id, Integer),
        literal(round_levels.period, String),
        literal(round_levels.effective_at, UTCDateTime()),
        func.coalesce(cast(src.c.recorded_by, String), literal(actor, String))
        if "recorded_by" in src.c
        else literal(actor, String),
        cast(src.c.reason, Text) if "reason" in src.c else literal(None, Text),
    )
    columns = [
        "tenant_id",
        "branch_id",
        "member_id",
        "level",
        "previous_level",
        "source",
        "branch_round_id",
        "member_round_id",
        "period",
        "effective_at",
        "recorded_by",
        "reason",
    ]
    written = len(session.execute(insert(_HISTORY).from_select(columns, rows).returning(_HISTORY.c.id)).all())
    audit.record(
        session,
        "standing.round_levels",
        object_type="branch_round" if branch else "member_round",
        object_id=round_levels.round_id,
        after={"period": round_levels.period, "rows": written, "effective_at": round_levels.effective_at},
        tenant_id=round_levels.tenant_id,
    )
    return written


# --- adjustments ----------------------------------------------------------------------------------------------


def level_range(rules: RuleSet | None, subject: Subject) -> tuple[int, int]:
    """The levels an adjustment may set: 0 (无星) up to the highest level the rule set's bands define."""
    if rules is None:
        return (0, 5)
    bands = rules.branch.stars if subject.is_branch else rules.member.stars
    return (0, max(bands.levels))


def current_level_row(session: Session, subject: Subject) -> LevelHistory | None:
    """The subject's latest history row (its current level), or None when it has none yet."""
    column = LevelHistory.branch_id if subject.is_branch else LevelHistory.member_id
    return session.scalar(
        select(LevelHistory)
        .where(column == subject.id)
        .order_by(LevelHistory.effective_at.desc(), LevelHistory.id.desc())
        .limit(1)
    )


def history_version(session: Session, subject: Subject) -> int:
    """What an adjustment form carries as its version: the id of the subject's latest history row
    (0 with none). A round or another adjustment written since the form opened makes it stale."""
    row = current_level_row(session, subject)
    return row.id if row is not None else 0


@dataclass(frozen=True)
class AdjustmentInput:
    """What the committee typed (raw strings, as the form sent them)."""

    to_level: object
    cause: object
    reason: object
    meeting_name: object
    meeting_date: object
    veto_key: object = None
    event_id: int | None = None


@dataclass(frozen=True)
class CheckedAdjustment:
    """An adjustment that passed every check: what the confirmation step shows, then records."""

    subject: Subject
    from_level: int | None
    to_level: int
    cause: Cause
    veto_key: str | None
    reason: str
    meeting_name: str
    meeting_date: dt.date
    event_id: int | None
    version: int


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


EARLIEST_DAY = dt.date(2000, 1, 1)  # no approving meeting nor mid-year event is older than the ratings


def _parse_date(value: object, field: str, missing: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    if not text:
        raise ServiceError(missing, field=field)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ServiceError(_("日期格式不正确，请按 2026-03-01 的格式填写"), field=field) from None
    if day < EARLIEST_DAY:  # `0001-01-01`, `1900-01-01`: a typo, not a meeting or an event of this system
        raise ServiceError(_("日期不能早于 %(day)s", day=EARLIEST_DAY.isoformat()), field=field)
    return day


def check_adjustment(
    session: Session,
    subject: Subject,
    rules: RuleSet | None,
    raw: AdjustmentInput,
    *,
    version: object,
    today: dt.date,
) -> CheckedAdjustment:
    """Check an adjustment without writing anything (the confirmation step shows the result).

    Refuses: a stale form (someone recorded a level since), a level outside the rule set's range or
    equal to the current one, a missing reason or meeting, a meeting in the future, a veto not in the
    rules."""
    current = current_level_row(session, subject)
    current_version = current.id if current is not None else 0
    if str(version).strip() != str(current_version):
        raise StaleEditError(str(STALE_LEVEL))
    low, high = level_range(rules, subject)
    try:
        to_level = int(_text(raw.to_level))
    except ValueError:
        raise ServiceError(_("请选择调整后的星级"), field="to_level") from None
    if not low <= to_level <= high:
        raise ServiceError(_("星级须在 %(low)d 到 %(high)d 之间", low=low, high=high), field="to_level")
    from_level = current.level if current is not None else None
    if from_level == to_level:
        raise ServiceError(_("调整后的星级与当前星级（%(level)s）相同", level=level_label(to_level)), field="to_level")
    try:
        cause = Cause(_text(raw.cause))
    except ValueError:
        raise ServiceError(_("请选择调整原因类别"), field="cause") from None
    veto_key: str | None = None
    if cause is Cause.VETO:
        if not subject.is_branch:
            raise ServiceError(_("否决事项只适用于党支部"), field="cause")
        veto_key = _text(raw.veto_key)
        if rules is None or rules.branch.veto(veto_key) is None:
            raise ServiceError(_("请选择评定规则中的否决事项"), field="veto_key")
    reason = _text(raw.reason)
    if not reason:
        raise ServiceError(_("请填写调整理由"), field="reason")
    if len(reason) > REASON_MAX:
        raise ServiceError(_("理由最长 %(n)d 个字", n=REASON_MAX), field="reason")
    meeting_name = _text(raw.meeting_name)
    if not meeting_name:
        raise ServiceError(_("请填写批准调整的会议名称"), field="meeting_name")
    if len(meeting_name) > MEETING_MAX:
        raise ServiceError(_("会议名称最长 %(n)d 个字", n=MEETING_MAX), field="meeting_name")
    meeting_date = _parse_date(raw.meeting_date, "meeting_date", _("请填写批准调整的会议日期"))
    if meeting_date > today:
        raise ServiceError(
            _(
                "会议日期 %(day)s 还没有到，不能晚于今天（%(today)s）",
                day=meeting_date.isoformat(),
                today=today.isoformat(),
            ),
            field="meeting_date",
        )
    return CheckedAdjustment(
        subject,
        from_level,
        to_level,
        cause,
        veto_key,
        reason,
        meeting_name,
        meeting_date,
        raw.event_id,
        current_version,
    )


def record_adjustment(session: Session, checked: CheckedAdjustment) -> Adjustment:
    """Record a checked adjustment: the adjustment, its history row and an audit event; resolves the
    prompt it answers. Checks the version again, so two confirmations of one form record once."""
    subject = checked.subject
    if history_version(session, subject) != checked.version:
        raise StaleEditError(str(STALE_LEVEL))
    event = _open_event(session, checked.event_id, subject) if checked.event_id is not None else None
    now = clock.now()
    who = audit.current_actor().name[:120]
    adjustment = Adjustment(
        branch_id=subject.id if subject.is_branch else None,
        member_id=None if subject.is_branch else subject.id,
        from_level=checked.from_level,
        to_level=checked.to_level,
        cause=checked.cause,
        veto_key=checked.veto_key,
        reason=checked.reason,
        meeting_name=checked.meeting_name,
        meeting_date=checked.meeting_date,
        event_id=checked.event_id,
        recorded_at=now,
        recorded_by=who,
    )
    session.add(adjustment)
    session.flush()
    session.add(
        LevelHistory(
            branch_id=adjustment.branch_id,
            member_id=adjustment.member_id,
            level=checked.to_level,
            previous_level=checked.from_level,
            source=SourceKind.ADJUSTMENT,
            adjustment_id=adjustment.id,
            effective_at=now,
            recorded_by=who,
            reason=checked.reason,
        )
    )
    session.flush()
    if event is not None:  # the prompt this adjustment answers is resolved with it
        resolved = event

        def mark_resolved() -> None:
            resolved.resolved_at = now
            resolved.resolved_by = who

        rounds.apply(
            session, workflow.EVENT_WORKFLOW, "adjust", event, refusal=workflow.refusal(event), changes=mark_resolved
        )
    audit.record(
        session,
        "standing.adjust",
        adjustment,
        after=audit.snapshot(adjustment),
        reason=checked.reason,
    )
    return adjustment


# --- mid-year events (prompts, never acts) --------------------------------------------------------------------


def _open_event(session: Session, event_id: int, subject: Subject | None = None) -> StandingEvent:
    event = session.scalar(select(StandingEvent).where(StandingEvent.id == event_id))
    if event is None or (subject is not None and Subject.of_event(event) != subject):
        raise NotFoundError(_("事项不存在"))
    if event.state is not EventState.OPEN:
        raise ConflictError(_("该事项已处理"))
    return event


def record_event(
    session: Session,
    subject: Subject,
    rules: RuleSet | None,
    *,
    kind: object,
    veto_key: object,
    occurred_on: object,
    note: object,
    today: dt.date,
) -> StandingEvent:
    """Record a veto event against a branch, or a sanction or honour of a member: a prompt for the
    committee to consider an adjustment. No level changes."""
    try:
        chosen = EventKind(_text(kind))
    except ValueError:
        raise ServiceError(_("请选择事项类别"), field="kind") from None
    key: str | None = None
    if subject.is_branch:
        if chosen is not EventKind.VETO:
            raise ServiceError(_("党支部只能记录否决事项"), field="kind")
        key = _text(veto_key)
        if rules is None or rules.branch.veto(key) is None:
            raise ServiceError(_("请选择评定规则中的否决事项"), field="veto_key")
    elif chosen is EventKind.VETO:
        raise ServiceError(_("党员只能记录处分或表彰"), field="kind")
    day = _parse_date(occurred_on, "occurred_on", _("请填写事项发生日期"))
    if day > today:
        raise ServiceError(_("发生日期不能晚于今天（%(today)s）", today=today.isoformat()), field="occurred_on")
    text = _text(note)
    if not text:
        raise ServiceError(_("请填写事项说明"), field="note")
    if len(text) > NOTE_MAX:
        raise ServiceError(_("说明最长 %(n)d 个字", n=NOTE_MAX), field="note")
    event = StandingEvent(
        branch_id=subject.id if subject.is_branch else None,
        member_id=None if subject.is_branch else subject.id,
        kind=chosen,
        veto_key=key,
        occurred_on=day,
        note=text,
        recorded_at=clock.now(),
        recorded_by=audit.current_actor().name[:120],
    )
    session.add(event)
    session.flush()
    audit.record(session, "standing.event", event, after=audit.snapshot(event))
    return event


def dismiss_event(session: Session, event: StandingEvent, reason: object, *, version: object) -> StandingEvent:
    """Close a prompt without an adjustment, with the committee's reason."""
    refused = workflow.refusal(event)
    if refused is None:
        expect_version(event, version)
    text = _text(reason)
    if refused is None and not text:
        raise ServiceError(_("请填写不予调整的理由"), field="reason")
    if text and len(text) > REASON_MAX:
        raise ServiceError(_("理由最长 %(n)d 个字", n=REASON_MAX), field="reason")

    def mark_dismissed() -> None:
        event.dismiss_reason = text
        event.resolved_at = clock.now()
        event.resolved_by = audit.current_actor().name[:120]

    rounds.apply(
        session,
        workflow.EVENT_WORKFLOW,
        "dismiss",
        event,
        refusal=refused,
        reason=text,
        changes=mark_dismissed,
        before=audit.snapshot(event),
        after=lambda: audit.snapshot(event),
    )
    return event


def load_event(session: Session, event_id: int) -> StandingEvent:
    event = session.scalar(select(StandingEvent).where(StandingEvent.id == event_id))
    if event is None:
        raise NotFoundError(_("事项不存在"))
    return event


def load_subject_object(session: Session, subject: Subject) -> Organisation | Member:
    """The branch or member (with its branch loaded, as the policy needs), in the current tenant."""
    if subject.is_branch:
        org = session.scalar(select(Organisation).where(Organisation.id == subject.id))
        if org is None or not org.kind.holds_members:  # levels belong to branches, not to 机关党委/工委
            raise NotFoundError(_("组织不存在"))
        return org
    member = session.scalar(select(Member).where(Member.id == subject.id).options(selectinload(Member.branch)))
    if member is None:
        raise NotFoundError(_("党员不存在"))
    return member


__all__ = [
    "AdjustmentInput",
    "CheckedAdjustment",
    "RoundLevels",
    "check_adjustment",
    "current_level_row",
    "dismiss_event",
    "history_version",
    "level_range",
    "load_event",
    "load_subject_object",
    "record_adjustment",
    "record_event",
    "record_round_levels",
]
