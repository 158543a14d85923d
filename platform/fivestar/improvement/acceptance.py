"""考核验收: the committee's year-end acceptance review of a published plan, and what it shows later.

The committee (PLAN_REVIEW) answers each of the rules' acceptance questions (the round's pinned rule
set: the notice's six by default) with a verdict — met, partly, not met — and a text, attaches
evidence files (files.py) and records an outcome: 晋位升级 (recommended up), 保持 (keep), or 限期再整改
(rectify again) by a deadline, which is then required. Recording is the plan's "review" transition
(PUBLISHED → REVIEWED) and happens once: the page asks for a confirmation first.

The review is due from the first day of the rules' `acceptance_month` of the plan's year to that
month's end (`due_window`): the work list shows it then; recording earlier is not refused.

Next year's dossier for 定星 shows the outcome and findings (`dossier_sections`, the answer to the
`ask_dossier_sections` question): the plan a branch worked on during the rated year is the plan of
work year = the round's year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import core as round_core
from fivestar.branch_rounds.models import BranchRound
from fivestar.errors import ServiceError
from fivestar.i18n import _, _l
from fivestar.improvement import services, workflow
from fivestar.improvement.models import (
    AcceptanceFinding,
    AcceptanceReview,
    ImprovementPlan,
    ItemStatus,
    Outcome,
    PlanItem,
    Verdict,
)
from fivestar.kernel import events, rounds
from fivestar.kernel.versioning import expect_version
from fivestar.rules import AcceptanceQuestion, RuleSet, level_label
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

FINDING_MAX = 2000
SUMMARY_MAX = 4000

VERDICT_LABELS = {Verdict.MET: _l("达到"), Verdict.PARTLY: _l("部分达到"), Verdict.NOT_MET: _l("未达到")}
OUTCOME_LABELS = {Outcome.PROMOTE: _l("晋位升级"), Outcome.KEEP: _l("保持"), Outcome.RECTIFY: _l("限期再整改")}


def verdict_label(verdict: Verdict) -> str:
    return str(VERDICT_LABELS[verdict])


def outcome_label(outcome: Outcome) -> str:
    return str(OUTCOME_LABELS[outcome])


def plan_rules(session: Session, plan: ImprovementPlan) -> RuleSet:
    """The rule set of the round the plan follows (its pinned version)."""
    branch_round = session.get(BranchRound, plan.round_id)
    if branch_round is None:  # pragma: no cover - a foreign key holds it
        raise ServiceError(_("评定年度不存在"))
    return round_core.round_rules(session, branch_round)


def due_window(rules: RuleSet, year: int) -> tuple[dt.date, dt.date]:
    """The first and last day (tenant calendar) on which the review of a plan of work year `year` is due."""
    month = rules.improvement.acceptance_month
    first = dt.date(year, month, 1)
    last = (dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)) - dt.timedelta(days=1)
    return first, last


@dataclass(frozen=True)
class ReviewDraft:
    """What the committee entered, checked: shown on the confirmation page, then recorded."""

    findings: tuple[tuple[AcceptanceQuestion, Verdict, str | None], ...]
    outcome: Outcome
    rectify_by: dt.date | None
    summary: str | None


def check_review(
    rules: RuleSet,
    answers: Mapping[str, tuple[object, object]],
    outcome: object,
    rectify_by: object,
    summary: object,
    *,
    today: dt.date,
) -> ReviewDraft:
    """Check a review as entered (`answers`: question key → (verdict, text)); refuse naming the field."""
    findings = []
    for question in rules.improvement.questions:
        verdict_raw, text_raw = answers.get(question.key, (None, None))
        try:
            verdict = Verdict(str(verdict_raw))
        except ValueError:
            raise ServiceError(
                _("请为“%(q)s”选择达到、部分达到或未达到", q=question.label), field=f"verdict_{question.key}"
            ) from None
        text = str(text_raw or "").strip() or None
        if text is not None and len(text) > FINDING_MAX:
            raise ServiceError(_("最长 %(n)d 个字", n=FINDING_MAX), field=f"text_{question.key}")
        if verdict is not Verdict.MET and text is None:
            raise ServiceError(_("“%(q)s”未完全达到，请写明情况", q=question.label), field=f"text_{question.key}")
        findings.append((question, verdict, text))
    try:
        chosen = Outcome(str(outcome))
    except ValueError:
        raise ServiceError(_("请选择验收结果"), field="outcome") from None
    deadline: dt.date | None = None
    if chosen is Outcome.RECTIFY:
        if rectify_by in (None, ""):
            raise ServiceError(_("限期再整改须填写整改期限"), field="rectify_by")
        try:
            deadline = rectify_by if isinstance(rectify_by, dt.date) else dt.date.fromisoformat(str(rectify_by))
        except ValueError:
            raise ServiceError(_("整改期限应为日期，例如 2027-03-31"), field="rectify_by") from None
        if deadline <= today:
            raise ServiceError(_("整改期限须晚于今天（%(today)s）", today=today.isoformat()), field="rectify_by")
        if deadline > services.LATEST_DAY:  # `9999-12-31`: a typo, not a deadline
            raise ServiceError(_("整改期限不能晚于 %(day)s", day=services.LATEST_DAY.isoformat()), field="rectify_by")
    text = str(summary or "").strip() or None
    if text is not None and len(text) > SUMMARY_MAX:
        raise ServiceError(_("最长 %(n)d 个字", n=SUMMARY_MAX), field="summary")
    return ReviewDraft(tuple(findings), chosen, deadline, text)


def record_review(session: Session, plan: ImprovementPlan, draft: ReviewDraft, *, version: object) -> AcceptanceReview:
    """Record the acceptance review (PUBLISHED → REVIEWED): findings, outcome, deadline."""
    expect_version(plan, version)
    refused = workflow.refusal("review", workflow.PlanFacts(state=plan.state))
    review = AcceptanceReview(
        tenant_id=plan.tenant_id,
        plan_id=plan.id,
        outcome=draft.outcome,
        rectify_by=draft.rectify_by,
        summary=draft.summary,
        reviewed_at=clock.now(),
        reviewed_by=audit.current_actor().name[:120],
    )

    def reviewed() -> None:
        session.add(review)
        session.flush()
        session.add_all(
            AcceptanceFinding(
                tenant_id=plan.tenant_id,
                review_id=review.id,
                position=position,
                question_key=question.key,
                question=question.label,
                verdict=verdict,
                text=text,
            )
            for position, (question, verdict, text) in enumerate(draft.findings)
        )

    rounds.apply(
        session,
        workflow.PLAN_WORKFLOW,
        "review",
        plan,
        refusal=refused,
        changes=reviewed,
        after=lambda: {
            "state": plan.state,
            "outcome": draft.outcome,
            "rectify_by": draft.rectify_by,
            "summary": draft.summary,
            "findings": {q.key: {"verdict": v, "text": t} for q, v, t in draft.findings},
        },
    )
    return review


def review_of(session: Session, plan_id: int) -> tuple[AcceptanceReview | None, list[AcceptanceFinding]]:
    review = session.scalar(select(AcceptanceReview).where(AcceptanceReview.plan_id == plan_id))
    if review is None:
        return None, []
    findings = list(
        session.scalars(
            select(AcceptanceFinding)
            .where(AcceptanceFinding.review_id == review.id)
            .order_by(AcceptanceFinding.position)
        )
    )
    return review, findings


# --- next year's dossier -------------------------------------------------------------------------------------


def dossier_sections(session: Session, rating: object, branch_round: BranchRound) -> list[events.Section]:
    """The acceptance review of the plan the branch worked on during the rated year (three queries),
    as a section of the committee's dossier; nothing when the branch had no plan that year."""
    branch_id = getattr(rating, "branch_id", None)
    plan = session.scalar(
        select(ImprovementPlan).where(ImprovementPlan.branch_id == branch_id, ImprovementPlan.year == branch_round.year)
    )
    if plan is None:
        return []
    items = list(session.scalars(select(PlanItem.status).where(PlanItem.plan_id == plan.id)))
    done = sum(1 for status in items if status is ItemStatus.DONE)
    review, findings = review_of(session, plan.id)
    title = _("上年度整改提升与考核验收（%(year)d年）", year=plan.year)
    rows: list[tuple[str, str]] = [
        (
            _("整改提升计划"),
            _(
                "%(programme)s（定星%(level)s，%(state)s）",
                programme=plan.programme_label,
                level=level_label(plan.level),
                state=workflow.state_label(plan.state),
            ),
        ),
        (_("整改事项"), _("共 %(total)d 项，已完成 %(done)d 项", total=len(items), done=done)),
    ]
    if review is None:
        return [events.Section(title, tuple(rows), _("尚未考核验收"))]
    outcome = outcome_label(review.outcome)
    if review.rectify_by is not None:
        outcome = _("%(outcome)s（期限 %(day)s）", outcome=outcome, day=review.rectify_by.isoformat())
    rows.append((_("验收结果"), outcome))
    for finding in findings:
        text = verdict_label(finding.verdict) + (f"：{finding.text}" if finding.text else "")
        rows.append((finding.question, text))
    if review.summary:
        rows.append((_("验收意见"), review.summary))
    zone = ZoneInfo(timezone_of(session, plan.tenant_id))
    day = review.reviewed_at.astimezone(zone).date().isoformat()  # the district's date, not UTC's
    note = _("%(who)s 于 %(day)s 记录", who=review.reviewed_by, day=day)
    return [events.Section(title, tuple(rows), note)]


__all__ = [
    "OUTCOME_LABELS",
    "VERDICT_LABELS",
    "ReviewDraft",
    "check_review",
    "dossier_sections",
    "due_window",
    "outcome_label",
    "plan_rules",
    "record_review",
    "review_of",
    "verdict_label",
]
