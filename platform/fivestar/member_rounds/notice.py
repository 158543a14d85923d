"""公示 and 上报: the public notice of a branch, objections filed on it, the branch's answers, finalising.

Anyone with the notice link may file an objection while the notice runs (no account: the link is
the only key, so a stale or unknown link is simply "not found"). The branch answers every
objection — upheld, with the change it made and why, or dismissed, with why — and may finalise only
when all are answered and the notice period is over (workflow.refusal "finalise"). Finalising is
the 上报: from then on the branch's five-star list is on the committee's pages.

Services flush, never commit, and refuse with `ServiceError` / `ConflictError`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from fivestar import audit
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _, current_language
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version, flush_or_stale
from fivestar.member_rounds import core
from fivestar.member_rounds.honour import period_label  # 2026Q1 → 2026年第一季度, the same on every page
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    PartKind,
    RoundBranch,
    RoundState,
    ScoreStage,
)
from fivestar.member_rounds.workflow import BRANCH_WORKFLOW, refusal
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import InputError, MemberResult, RuleSet, level_label, level_label_en
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

# Steps in which a notice page is shown: while it runs, and afterwards as the public record.
PUBLIC_STEPS = (BranchStep.NOTICE, BranchStep.FINALISED)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

TEXT_MAX = 2000
NAME_MAX = 60
CONTACT_MAX = 120
REASON_MAX = 2000


# --- labels ------------------------------------------------------------------------------------------


def member_level_text(level: int | None, rated: bool | None, disqualifier: str | None, below_label: str) -> str:
    """What a page shows for a member's result: 五星 … 二星, the rules' name below the lowest band,
    不予评星 for a member excluded by a disqualifier, or a dash while not scored yet."""
    english = current_language() == "en"
    if disqualifier or rated is False:
        return level_label_en(None) if english else level_label(None, "member")
    if level is None:
        return "—"
    if english:
        return level_label_en(level)
    return level_label(level, "member", below_label)


def notice_length_text(rules: RuleSet) -> str:
    notice = rules.schedule.public_notice
    if notice.working_days:
        return _("公示期 %(n)d 个工作日", n=notice.days)
    return _("公示期 %(n)d 天", n=notice.days)


# --- the public page -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeRow:
    evaluation_id: int
    member_no: str
    name: str
    level_text: str
    level: int | None


@dataclass(frozen=True)
class NoticeView:
    """Everything the public page (and its PDF) shows — and nothing else: no scores, no phones."""

    round: MemberRound
    round_branch: RoundBranch
    branch_name: str
    period: str
    starts: dt.datetime  # local time of the tenant
    ends: dt.datetime
    length: str
    rows: list[NoticeRow]
    running: bool  # objections may be filed now
    ended: bool


def find_notice(session: Session, token: str) -> RoundBranch | None:
    """The branch whose public notice `token` opens, or None (unknown, stale, not started yet).

    A branch returned to review has no token any more; a notice that has not started is not shown.
    The tenant scope of the request applies: another district's token finds nothing.
    """
    if not token or not _TOKEN.match(token):
        return None
    found = session.scalar(
        select(RoundBranch)
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .where(RoundBranch.notice_token == token, RoundBranch.step.in_(PUBLIC_STEPS))
        .options(contains_eager(RoundBranch.branch))
    )
    if found is None or found.notice_started_at is None or found.notice_ends_at is None:
        return None
    if clock.now() < found.notice_started_at:
        return None
    return found


def is_running(member_round: MemberRound, round_branch: RoundBranch, now: dt.datetime | None = None) -> bool:
    now = now or clock.now()
    return (
        member_round.state is RoundState.OPEN
        and round_branch.step is BranchStep.NOTICE
        and round_branch.notice_started_at is not None
        and round_branch.notice_ends_at is not None
        and round_branch.notice_started_at <= now <= round_branch.notice_ends_at
    )


def notice_rows(session: Session, round_branch: RoundBranch, rules: RuleSet) -> list[NoticeRow]:
    """The branch's active members in this round with their level, in one query."""
    rows = session.execute(
        select(
            Evaluation.id, Member.member_no, Member.name, Evaluation.level, Evaluation.rated, Evaluation.disqualifier
        )
        .join(Member, Evaluation.member_id == Member.id)
        .where(Evaluation.round_branch_id == round_branch.id, Evaluation.status == EvaluationStatus.ACTIVE)
        .order_by(Member.member_no, Member.id)
    )
    below = rules.member.below_label
    return [
        NoticeRow(
            evaluation_id=row.id,
            member_no=row.member_no,
            name=row.name,
            level_text=member_level_text(row.level, row.rated, row.disqualifier, below),
            level=None if (row.disqualifier or row.rated is False) else row.level,
        )
        for row in rows
    ]


def notice_view(session: Session, round_branch: RoundBranch) -> NoticeView:
    """The public page's content for a branch found by `find_notice` (its branch loaded)."""
    member_round = core.load_round(session, round_branch.round_id)
    rules = core.round_rules(session, member_round)
    zone = ZoneInfo(timezone_of(session, member_round.tenant_id))
    assert round_branch.notice_started_at is not None and round_branch.notice_ends_at is not None
    now = clock.now()
    return NoticeView(
        round=member_round,
        round_branch=round_branch,
        branch_name=round_branch.branch.name,
        period=period_label(member_round.period_key),
        starts=round_branch.notice_started_at.astimezone(zone),
        ends=round_branch.notice_ends_at.astimezone(zone),
        length=notice_length_text(rules),
        rows=notice_rows(session, round_branch, rules),
        running=is_running(member_round, round_branch, now),
        ended=now > round_branch.notice_ends_at or round_branch.step is not BranchStep.NOTICE,
    )


# --- filing -----------------------------------------------------------------------------------------------


def _clean(value: str | None, limit: int, message: str, field: str) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise ServiceError(message, field=field)
    return text or None


def file_objection(
    session: Session,
    round_branch: RoundBranch,
    *,
    text: str | None,
    filer_name: str | None = None,
    filer_contact: str | None = None,
    evaluation_id: int | None = None,
) -> Objection:
    """Record an objection from the public page. Only while the notice runs; text required; the
    member it concerns, if named, must be one listed on this notice."""
    member_round = core.load_round(session, round_branch.round_id)
    core.ensure_open(member_round)
    if not is_running(member_round, round_branch):
        ends = round_branch.notice_ends_at
        if ends is not None and clock.now() > ends:
            zone = ZoneInfo(timezone_of(session, member_round.tenant_id))
            raise ServiceError(
                _("公示期已于 %(when)s 结束，不能再提出异议", when=ends.astimezone(zone).strftime("%Y-%m-%d %H:%M"))
            )
        raise ServiceError(_("公示尚未开始或已结束，不能提出异议"))
    body = _clean(text, TEXT_MAX, _("异议内容最长 %(n)d 个字", n=TEXT_MAX), "text")
    if body is None:
        raise ServiceError(_("请填写异议内容"), field="text")
    name = _clean(filer_name, NAME_MAX, _("姓名最长 %(n)d 个字", n=NAME_MAX), "filer_name")
    contact = _clean(filer_contact, CONTACT_MAX, _("联系方式最长 %(n)d 个字", n=CONTACT_MAX), "filer_contact")
    if evaluation_id is not None:
        listed = session.scalar(
            select(Evaluation.id).where(
                Evaluation.id == evaluation_id,
                Evaluation.round_branch_id == round_branch.id,
                Evaluation.status == EvaluationStatus.ACTIVE,
            )
        )
        if listed is None:
            raise ServiceError(_("请选择公示名单中的党员"), field="evaluation_id")
    objection = Objection(
        tenant_id=round_branch.tenant_id,
        round_branch_id=round_branch.id,
        evaluation_id=evaluation_id,
        text=body,
        filer_name=name,
        filer_contact=contact,
        filed_at=clock.now(),
        state=ObjectionState.OPEN,
    )
    session.add(objection)
    session.flush()
    # The contact stays in the objection row (the branch needs it to reply); the trail records what
    # was objected to, not how to reach the person.
    audit.record(
        session,
        "objection.file",
        objection,
        after={"round_branch_id": round_branch.id, "evaluation_id": evaluation_id, "text": body, "named": bool(name)},
    )
    return objection


# --- answering ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultChange:
    """An upheld objection's change to one member's final result: all final scores (aspects,
    additions, deductions and bonus reasons, by `core.FieldKey`) and the 不予评星 decision."""

    evaluation: Evaluation
    version: int | str | None  # the evaluation's version the form was opened with
    scores: Mapping[core.FieldKey, Decimal]
    disqualifier: str | None = None
    disqualifier_note: str | None = None
    bonus_reason: str | None = None
    bonus_basis: str | None = None


def _result(evaluation: Evaluation, rules: RuleSet) -> dict[str, object]:
    return {
        "total": evaluation.total,
        "level": evaluation.level,
        "rated": evaluation.rated,
        "disqualifier": evaluation.disqualifier,
        "label": member_level_text(
            evaluation.level, evaluation.rated, evaluation.disqualifier, rules.member.below_label
        ),
    }


@dataclass(frozen=True)
class _Checked:
    disqualifier: str | None
    note: str | None
    result: MemberResult


def _checked_change(
    session: Session, member_round: MemberRound, round_branch: RoundBranch, change: ResultChange
) -> _Checked:
    """Everything about a change that can be refused — including the rule engine's verdict on the
    scores — checked before anything is written."""
    evaluation = change.evaluation
    if evaluation.round_branch_id != round_branch.id or evaluation.status is not EvaluationStatus.ACTIVE:
        raise ServiceError(_("该党员不在本支部的公示名单中"), field="evaluation_id")
    expect_version(evaluation, change.version)
    rules = core.round_rules(session, member_round)
    disqualifier = (change.disqualifier or "").strip() or None
    if disqualifier is not None and rules.member.disqualifier(disqualifier) is None:
        raise ServiceError(_("不予评星的原因须从规则列出的情形中选择"), field="disqualifier")
    note = _clean(change.disqualifier_note, REASON_MAX, _("说明最长 %(n)d 个字", n=REASON_MAX), "disqualifier_note")
    if disqualifier is not None and note is None:
        raise ServiceError(_("请说明不予评星的具体情况"), field="disqualifier_note")
    try:
        result = core.evaluate(rules, change.scores, disqualifier)
    except InputError as error:
        raise ServiceError(_("分数不符合评定规则：%(problem)s", problem=str(error))) from None
    return _Checked(disqualifier, note, result)


def _rescore(
    session: Session, member_round: MemberRound, change: ResultChange, checked: _Checked, reason: str
) -> tuple[dict[str, object], dict[str, object]]:
    """Re-score one member with the rule engine from the edited final scores; audit it.

    The evaluation's own row is updated (version-guarded) before its score rows are replaced, so a
    concurrent edit of the same member fails here instead of mixing two sets of scores.
    """
    evaluation = change.evaluation
    rules = core.round_rules(session, member_round)
    result, disqualifier, note = checked.result, checked.disqualifier, checked.note
    previous_scores = core.read_scores(session, [evaluation.id], [ScoreStage.FINAL]).get(
        (evaluation.id, ScoreStage.FINAL), {}
    )
    before = _result(evaluation, rules)
    has_bonus = any(kind is PartKind.BONUS and value > 0 for (kind, _p, _c), value in change.scores.items())
    evaluation.disqualifier = disqualifier
    evaluation.disqualifier_note = note if disqualifier else None
    evaluation.bonus_reason = (change.bonus_reason or None) if has_bonus else None
    evaluation.bonus_basis = (change.bonus_basis or None) if has_bonus else None
    # As the branch's review stores it: the rule engine's total, and no level when not rated.
    evaluation.total = result.total
    evaluation.level = result.level
    evaluation.rated = result.rated
    evaluation.scored_at = clock.now()
    _flush_or_conflict(session)
    core.write_scores(session, [evaluation.id], ScoreStage.FINAL, {evaluation.id: dict(change.scores)})
    after = _result(evaluation, rules)
    audit.record(
        session,
        "evaluation.adjust",
        evaluation,
        before={**before, "scores": _score_doc(previous_scores)},
        after={**after, "scores": _score_doc(change.scores)},
        reason=reason,
    )
    return before, after


def _score_doc(scores: Mapping[core.FieldKey, Decimal]) -> dict[str, str]:
    return {
        f"{kind.value}.{part}{'.' + criterion if criterion else ''}": str(value)
        for (kind, part, criterion), value in sorted(scores.items())
    }


def _flush_or_conflict(session: Session) -> None:
    """Flush; a version-guarded UPDATE that matched no row means someone saved first."""
    flush_or_stale(session)


def answer_objection(
    session: Session,
    round_branch: RoundBranch,
    objection: Objection,
    *,
    upheld: bool,
    reason: str | None,
    version: int | str | None,
    change: ResultChange | None = None,
) -> Objection:
    """Answer one objection: upheld (with the change made, if any, and why) or dismissed (why).

    Optimistic locking: the form carries the objection's version; an objection answered by someone
    else in the meantime is a conflict, never a silent second answer. The objection's row is
    written first, so of two people answering at once exactly one gets through.
    """
    member_round = core.load_round(session, round_branch.round_id)
    core.ensure_open(member_round)
    if objection.round_branch_id != round_branch.id:
        raise ServiceError(_("该异议不属于本支部"))
    if round_branch.step is not BranchStep.NOTICE:
        raise ServiceError(_("只有公示阶段才能答复异议"))
    if objection.state is not ObjectionState.OPEN:
        raise ConflictError(_("该异议已由他人答复，请刷新后查看"))
    expect_version(objection, version)
    text = _clean(reason, REASON_MAX, _("理由最长 %(n)d 个字", n=REASON_MAX), "reason")
    if text is None:
        raise ServiceError(
            _("请写明采纳的理由和所作的更改") if upheld else _("请写明不予采纳的理由"), field="reason"
        )
    if change is not None and not upheld:
        raise ServiceError(_("不予采纳的异议不能更改评定结果"))
    checked = _checked_change(session, member_round, round_branch, change) if change is not None else None
    before_state = audit.snapshot(objection, ["state", "answer"])
    objection.state = ObjectionState.UPHELD if upheld else ObjectionState.DISMISSED
    objection.answer = text
    objection.answered_at = clock.now()
    objection.answered_by = audit.current_actor().name
    flush_or_stale(session, message=_("该异议已由他人答复，请刷新后查看"))
    levels: dict[str, object] = {}
    if change is not None and checked is not None:
        result_before, result_after = _rescore(session, member_round, change, checked, text)
        levels = {"level_before": result_before["label"], "level_after": result_after["label"]}
        name = session.scalar(select(Member.name).where(Member.id == change.evaluation.member_id)) or ""
        objection.answer = text + "\n" + _(
            "处理结果：%(name)s 由“%(before)s”改为“%(after)s”",
            name=name,
            before=result_before["label"],
            after=result_after["label"],
        )
        _flush_or_conflict(session)
    audit.record(
        session,
        "objection.answer",
        objection,
        before=before_state,
        after={"state": objection.state, "answer": objection.answer, **levels},
        reason=text,
    )
    return objection


# --- finalising --------------------------------------------------------------------------------------------


def finalise(session: Session, round_branch: RoundBranch, *, version: int | str | None = None) -> RoundBranch:
    """上报: the branch's results become final and its five-star list goes to the committee.

    Only when every objection is answered and the notice period is over.
    """
    member_round = core.load_round(session, round_branch.round_id)
    core.ensure_open(member_round)
    if version is not None:
        expect_version(round_branch, version)
    facts = core.facts_for(session, member_round, round_branch)

    def finalised() -> None:
        round_branch.finalised_at = clock.now()

    rounds.apply(
        session, BRANCH_WORKFLOW, "finalise", round_branch,
        refusal=refusal("finalise", facts), refused_as=ServiceError, changes=finalised,
        before=audit.snapshot(round_branch, ["step", "finalised_at"]),
        after=lambda: {"step": round_branch.step, "finalised_at": round_branch.finalised_at, "members": facts.members},
    )
    return round_branch


def load_objection(session: Session, objection_id: int) -> Objection:
    found = session.scalar(select(Objection).where(Objection.id == objection_id))
    if found is None:
        raise NotFoundError(_("异议不存在"))
    return found


__all__ = [
    "NoticeRow",
    "NoticeView",
    "ResultChange",
    "answer_objection",
    "file_objection",
    "finalise",
    "find_notice",
    "is_running",
    "load_objection",
    "member_level_text",
    "notice_rows",
    "notice_view",
    "period_label",
]
