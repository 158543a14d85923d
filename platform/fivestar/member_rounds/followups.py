"""After the results: support for low-rated members and deadlines for members not rated.

As the notice asks and the rules set: a member rated at or below `follow_up.mentor_at_or_below`
gets up to `follow_up.mentors` five-star members of the same branch (in the same round) as mentors
(帮扶指导员); one at or below `follow_up.talk_at_or_below` has a talk (谈话教育) recorded — when, who
talked, what was said; a member not rated (不予评星) gets a rectification deadline (限期整改),
by default `follow_up.rectify_days` after the branch's results were finalised.

The software records what people decided; it never acts on a member by itself. The committee's
list of members not improving over several periods is the committee pages' (committee.py).

Services flush, never commit, refuse with `ServiceError`, and write an audit event for each change.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.member_rounds import workflow
from fivestar.member_rounds.branch import (
    TEXT_MAX,
    BranchContext,
    FormError,
    branch_evaluations,
)
from fivestar.member_rounds.branch_pages import result_label
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationStatus,
    Mentorship,
    Rectification,
    TalkRecord,
)
from fivestar.people.models import Member
from fivestar.rules.model import FollowUp
from fivestar.timekeeping import clock

FIVE_STARS = 5
NAME_MAX = 120


@dataclass
class FollowUpRow:
    """One member who needs a follow-up, with what has been recorded so far."""

    evaluation: Evaluation
    member: Member
    result: str
    needs_mentors: bool
    needs_talk: bool
    needs_rectification: bool
    mentors: list[Member] = field(default_factory=list)
    talks: list[TalkRecord] = field(default_factory=list)
    rectification: Rectification | None = None
    candidates: list[Member] = field(default_factory=list)  # five-star members who may mentor them


@dataclass(frozen=True)
class FollowUpPage:
    refusal: str | None
    rules: FollowUp
    rows: list[FollowUpRow]
    default_due: dt.date | None  # the rectification deadline the form suggests
    today: dt.date


def needs_mentors(rules: FollowUp, evaluation: Evaluation) -> bool:
    return (
        evaluation.rated is True
        and evaluation.level is not None
        and rules.mentor_at_or_below is not None
        and rules.mentors > 0
        and evaluation.level <= rules.mentor_at_or_below
    )


def needs_talk(rules: FollowUp, evaluation: Evaluation) -> bool:
    return (
        evaluation.rated is True
        and evaluation.level is not None
        and rules.talk_at_or_below is not None
        and evaluation.level <= rules.talk_at_or_below
    )


def needs_rectification(evaluation: Evaluation) -> bool:
    return evaluation.rated is False


def _local(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def default_due(ctx: BranchContext) -> dt.date | None:
    """The rules' rectification period counted from the day the results were finalised (today while
    they are still on public notice); None when the rules set no period."""
    days = ctx.rules.member.follow_up.rectify_days
    if days is None:
        return None
    finalised = ctx.round_branch.finalised_at
    start = _local(finalised, ctx.timezone) if finalised is not None else ctx.today
    return start + dt.timedelta(days=days)


def follow_up_page(session: Session, ctx: BranchContext) -> FollowUpPage:
    """Every member of the branch who needs a follow-up, in four queries whatever the branch size."""
    rules = ctx.rules.member.follow_up
    evaluations = branch_evaluations(session, ctx.round_branch, active_only=True)
    five_star = [e for e in evaluations if e.rated is True and e.level == FIVE_STARS]
    wanted = [
        e for e in evaluations if needs_mentors(rules, e) or needs_talk(rules, e) or needs_rectification(e)
    ]
    ids = [e.id for e in wanted]
    mentors: dict[int, list[Member]] = defaultdict(list)
    talks: dict[int, list[TalkRecord]] = defaultdict(list)
    rectifications: dict[int, Rectification] = {}
    if ids:
        for evaluation_id, mentor in session.execute(
            select(Mentorship.evaluation_id, Member)
            .join(Member, Mentorship.mentor_member_id == Member.id)
            .where(Mentorship.evaluation_id.in_(ids))
            .order_by(Member.member_no, Member.id)
        ):
            mentors[evaluation_id].append(mentor)
        for record in session.scalars(
            select(TalkRecord).where(TalkRecord.evaluation_id.in_(ids)).order_by(TalkRecord.talk_date, TalkRecord.id)
        ):
            talks[record.evaluation_id].append(record)
        for rectification in session.scalars(select(Rectification).where(Rectification.evaluation_id.in_(ids))):
            rectifications[rectification.evaluation_id] = rectification
    rows = [
        FollowUpRow(
            evaluation=e,
            member=e.member,
            result=result_label(ctx.rules, e.level, e.rated),
            needs_mentors=needs_mentors(rules, e),
            needs_talk=needs_talk(rules, e),
            needs_rectification=needs_rectification(e),
            mentors=mentors.get(e.id, []),
            talks=talks.get(e.id, []),
            rectification=rectifications.get(e.id),
            candidates=[c.member for c in five_star if c.member_id != e.member_id],
        )
        for e in wanted
    ]
    return FollowUpPage(workflow.follow_up_refusal(ctx.facts), rules, rows, default_due(ctx), ctx.today)


def _check_open(ctx: BranchContext, evaluation: Evaluation) -> FollowUp:
    refusal = workflow.follow_up_refusal(ctx.facts)
    if refusal is not None:
        raise ConflictError(refusal)
    if evaluation.round_branch_id != ctx.round_branch.id or evaluation.status is not EvaluationStatus.ACTIVE:
        raise NotFoundError(_("评定记录不存在"))
    return ctx.rules.member.follow_up


def _text(raw: Mapping[str, object], name: str) -> str:
    return str(raw.get(name, "") or "").strip()


def _date(errors: dict[str, str], raw: Mapping[str, object], name: str, label: str) -> dt.date | None:
    text = _text(raw, name)
    if not text:
        errors[name] = _("请填写%(label)s", label=label)
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[name] = _("%(label)s格式不对，应如 2026-04-10", label=label)
        return None


# --- mentors ---------------------------------------------------------------------------------------


def assign_mentors(
    session: Session, ctx: BranchContext, evaluation: Evaluation, mentor_member_ids: Sequence[int]
) -> list[Member]:
    """Set a low-rated member's mentors: up to the rules' number of five-star members of the same
    branch in the same round, never the member themself. Replaces the earlier choice."""
    rules = _check_open(ctx, evaluation)
    if not needs_mentors(rules, evaluation):
        raise ServiceError(_("按规则，该党员的评定结果不需要安排帮扶指导员"), field="mentor")
    wanted = list(dict.fromkeys(mentor_member_ids))
    if not wanted:
        raise ServiceError(_("请选择帮扶指导员"), field="mentor")
    if len(wanted) > rules.mentors:
        raise ServiceError(_("按规则最多安排 %(n)d 名帮扶指导员", n=rules.mentors), field="mentor")
    if evaluation.member_id in wanted:
        raise ServiceError(_("党员不能做自己的帮扶指导员"), field="mentor")
    eligible = {
        e.member_id: e.member
        for e in branch_evaluations(session, ctx.round_branch, active_only=True)
        if e.member_id in wanted and e.rated is True and e.level == FIVE_STARS
    }
    if set(wanted) - set(eligible):
        raise ServiceError(_("帮扶指导员须是本支部本轮评为五星的党员"), field="mentor")
    existing = list(session.scalars(select(Mentorship).where(Mentorship.evaluation_id == evaluation.id)))
    before = sorted(m.mentor_member_id for m in existing)
    if before == sorted(wanted):
        return [eligible[i] for i in wanted]
    session.execute(
        delete(Mentorship)
        .where(Mentorship.evaluation_id == evaluation.id)
        .execution_options(synchronize_session=False)
    )
    for mentor in existing:
        session.expunge(mentor)
    actor = audit.current_actor().name
    now = clock.now()
    for member_id in wanted:
        session.add(Mentorship(evaluation_id=evaluation.id, mentor_member_id=member_id, assigned_at=now,
                               assigned_by=actor))
    session.flush()
    audit.record(
        session, "evaluation.mentors", evaluation,
        before={"mentors": before},
        after={"mentors": sorted(wanted), "names": [eligible[i].name for i in wanted]},
    )
    return [eligible[i] for i in wanted]


# --- talks -----------------------------------------------------------------------------------------


def record_talk(session: Session, ctx: BranchContext, evaluation: Evaluation, raw: Mapping[str, object]) -> TalkRecord:
    """Record a talk (谈话教育) with a member the rules say should have one."""
    rules = _check_open(ctx, evaluation)
    if not needs_talk(rules, evaluation):
        raise ServiceError(_("按规则，该党员的评定结果不需要谈话教育"))
    errors: dict[str, str] = {}
    talk_date = _date(errors, raw, "talk_date", _("谈话日期"))
    opened = _local(ctx.member_round.opened_at, ctx.timezone)
    if talk_date is not None and talk_date > ctx.today:
        errors["talk_date"] = _("谈话日期不能晚于今天")
    elif talk_date is not None and talk_date < opened:
        errors["talk_date"] = _("谈话日期不能早于本轮评定开启的日期 %(day)s", day=opened.isoformat())
    talked_by, summary = _text(raw, "talked_by"), _text(raw, "summary")
    if not talked_by:
        errors["talked_by"] = _("请填写谈话人")
    elif len(talked_by) > NAME_MAX:
        errors["talked_by"] = _("%(label)s不能超过 %(n)d 字", label=_("谈话人"), n=NAME_MAX)
    if not summary:
        errors["summary"] = _("请填写谈话内容摘要")
    elif len(summary) > TEXT_MAX:
        errors["summary"] = _("%(label)s不能超过 %(n)d 字", label=_("谈话内容摘要"), n=TEXT_MAX)
    if errors or talk_date is None:
        raise FormError(errors)
    record = TalkRecord(
        evaluation_id=evaluation.id,
        talk_date=talk_date,
        talked_by=talked_by,
        summary=summary,
        recorded_at=clock.now(),
        recorded_by=audit.current_actor().name,
    )
    session.add(record)
    session.flush()
    audit.record(session, "evaluation.talk", record, after=audit.snapshot(record, ["evaluation_id", "talk_date",
                                                                                   "talked_by", "summary"]))
    return record


# --- rectification ---------------------------------------------------------------------------------


def set_rectification(
    session: Session, ctx: BranchContext, evaluation: Evaluation, raw: Mapping[str, object]
) -> Rectification:
    """Set (or change) the rectification deadline and requirement for a member not rated."""
    _check_open(ctx, evaluation)
    if not needs_rectification(evaluation):
        raise ServiceError(_("只有不予评星的党员需要限期整改"))
    errors: dict[str, str] = {}
    due_on = _date(errors, raw, "due_on", _("整改期限"))
    if due_on is not None and due_on < ctx.today:
        errors["due_on"] = _("整改期限不能早于今天")
    requirement = _text(raw, "requirement")
    if not requirement:
        errors["requirement"] = _("请填写整改要求")
    elif len(requirement) > TEXT_MAX:
        errors["requirement"] = _("%(label)s不能超过 %(n)d 字", label=_("整改要求"), n=TEXT_MAX)
    if errors or due_on is None:
        raise FormError(errors)
    fields = ["evaluation_id", "due_on", "requirement"]
    current = session.scalar(select(Rectification).where(Rectification.evaluation_id == evaluation.id))
    before = audit.snapshot(current, fields) if current is not None else None
    if current is None:
        current = Rectification(
            evaluation_id=evaluation.id, due_on=due_on, requirement=requirement, set_at=clock.now(),
            set_by=audit.current_actor().name,
        )
        session.add(current)
    else:
        current.due_on = due_on
        current.requirement = requirement
        current.set_at = clock.now()
        current.set_by = audit.current_actor().name
    session.flush()
    audit.record(session, "evaluation.rectification", current, before=before, after=audit.snapshot(current, fields))
    return current


def record_rectification_result(
    session: Session, ctx: BranchContext, evaluation: Evaluation, raw: Mapping[str, object]
) -> Rectification:
    """Record how a rectification went: the day it was assessed and what was found (整改情况). It ends
    the deadline's reminders; what follows for the member (a further deadline, advice to leave) is
    for people to decide, and the software only records it."""
    _check_open(ctx, evaluation)
    current = session.scalar(select(Rectification).where(Rectification.evaluation_id == evaluation.id))
    if current is None:
        raise ServiceError(_("请先设定整改期限，再记录整改结果"))
    errors: dict[str, str] = {}
    completed_on = _date(errors, raw, "completed_on", _("评估日期"))
    if completed_on is not None and completed_on > ctx.today:
        errors["completed_on"] = _("评估日期不能晚于今天")
    elif completed_on is not None and completed_on < _local(current.set_at, ctx.timezone):
        errors["completed_on"] = _("评估日期不能早于设定整改期限的日期")
    outcome = _text(raw, "outcome")
    if not outcome:
        errors["outcome"] = _("请填写整改情况")
    elif len(outcome) > TEXT_MAX:
        errors["outcome"] = _("%(label)s不能超过 %(n)d 字", label=_("整改情况"), n=TEXT_MAX)
    if errors or completed_on is None:
        raise FormError(errors)
    fields = ["evaluation_id", "completed_on", "outcome"]
    before = audit.snapshot(current, fields)
    current.completed_on = completed_on
    current.outcome = outcome
    session.flush()
    audit.record(session, "evaluation.rectification_result", current, before=before,
                 after=audit.snapshot(current, fields))
    return current


__all__ = [
    "FollowUpPage",
    "FollowUpRow",
    "assign_mentors",
    "default_due",
    "follow_up_page",
    "needs_mentors",
    "needs_rectification",
    "needs_talk",
    "record_rectification_result",
    "record_talk",
    "set_rectification",
]
