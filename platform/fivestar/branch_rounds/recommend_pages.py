"""The pages of a branch's rating, built from the 荐星 services (recommend.py): the 荐星 page (the rules'
criteria with their evidence files, the questions, the star bands and the engine's result), the
branch's page for the year (its dashboard: where the rating stands, what is done, what comes next)
and the home page's list of open ratings. Read-only: nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds import core, evidence, workflow
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    EvidenceFile,
    QuarterlyReview,
    RatingStep,
)
from fivestar.branch_rounds.recommend import (
    RatingContext,
    Stored,
    answer_name,
    edit_refusal,
    explanation_name,
    note_name,
    questions,
    score_name,
    stored,
)
from fivestar.errors import ServiceError
from fivestar.i18n import _, current_language, short_date
from fivestar.orgs.models import Organisation
from fivestar.rules import BranchResult, InputError, evaluate_branch, level_label, medal_label
from fivestar.rules.model import Indicator, PublicScore

# --- the 荐星 page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionRow:
    indicator_key: str
    key: str
    label: str
    points: Decimal
    guide: str
    score_name: str
    note_name: str
    anchor: str
    files: list[EvidenceFile] = field(default_factory=list)


@dataclass(frozen=True)
class IndicatorBlock:
    indicator: Indicator
    criteria: list[CriterionRow]
    medal_bands: list[tuple[str, Decimal]]


@dataclass(frozen=True)
class QuestionRow:
    kind: AnswerKind
    key: str
    label: str
    effect: str  # what a veto does (取消星级, 最高二星 …); "" for a fact
    name: str
    explanation_name: str


@dataclass(frozen=True)
class LevelRule:
    """One star band as the rules set it: the minimum total and the further conditions (gates)."""

    level: int
    label: str
    minimum: Decimal
    gates: list[str]


@dataclass(frozen=True)
class RecommendPage:
    ctx: RatingContext
    indicators: list[IndicatorBlock]
    vetoes: list[QuestionRow]
    facts: list[QuestionRow]
    public: PublicScore | None
    levels: list[LevelRule]
    result: BranchResult | None
    scored: int
    criteria: int
    edit_refusal: str | None
    submit_refusal: str | None


def anchor(indicator_key: str, criterion_key: str) -> str:
    return f"c-{indicator_key}-{criterion_key}"


def evaluate_rows(ctx: RatingContext, rows: Stored) -> BranchResult | None:
    """The rule engine's result for rows already read (as `evaluate_stored`, without reading again)."""
    rules = ctx.rules
    if rules.branch.public is not None and ctx.rating.public_rate is None:
        return None
    scores: dict[str, dict[str, Decimal]] = {}
    for (indicator_key, criterion_key), score in rows.scores.items():
        scores.setdefault(indicator_key, {})[criterion_key] = score
    answers: dict[AnswerKind, dict[str, bool]] = {AnswerKind.VETO: {}, AnswerKind.FACT: {}}
    for (kind, key), value in rows.answers.items():
        answers[kind][key] = value
    try:
        return evaluate_branch(rules, core.branch_input(rules, ctx.rating, scores, answers))
    except InputError as error:  # rows written under these pinned rules are valid; stay readable anyway
        raise ServiceError(str(error)) from None


def recommend_page(session: Session, ctx: RatingContext, rows: Stored | None = None) -> RecommendPage:
    """Everything the 荐星 page shows besides the form's values (one query beyond the context and
    the stored rows, which the caller may pass when it has read them already)."""
    rules = ctx.rules
    rows = rows if rows is not None else stored(session, ctx.rating.id)
    files = evidence.files_by_criterion(session, ctx.rating.id)
    blocks = []
    for indicator in rules.branch.indicators:
        criterion_rows = [
            CriterionRow(
                indicator_key=indicator.key,
                key=criterion.key,
                label=criterion.label,
                points=criterion.points,
                guide=criterion.guide,
                score_name=score_name(indicator.key, criterion.key),
                note_name=note_name(indicator.key, criterion.key),
                anchor=anchor(indicator.key, criterion.key),
                files=files.get((indicator.key, criterion.key), []),
            )
            for criterion in indicator.criteria
        ]
        bands = [(medal_label(m), v) for m, v in indicator.medals.bands()] if indicator.medals else []
        blocks.append(IndicatorBlock(indicator, criterion_rows, bands))

    def rows_of(kind: AnswerKind) -> list[QuestionRow]:
        result = []
        for k, key, label in questions(rules):
            if k is not kind:
                continue
            effect = ""
            if kind is AnswerKind.VETO:
                veto = rules.branch.veto(key)
                effect = veto.effect.describe()[0 if current_language() == "zh" else 1] if veto else ""
            result.append(QuestionRow(kind, key, label, effect, answer_name(kind, key), explanation_name(kind, key)))
        return result

    levels = [
        LevelRule(
            band.level,
            level_label(band.level),
            band.min,
            [gate.describe()[0 if current_language() == "zh" else 1] for gate in band.gates],
        )
        for band in rules.branch.stars.bands
    ]
    facts = ctx.facts
    total_criteria = sum(len(indicator.criteria) for indicator in rules.branch.indicators)
    return RecommendPage(
        ctx=ctx,
        indicators=blocks,
        vetoes=rows_of(AnswerKind.VETO),
        facts=rows_of(AnswerKind.FACT),
        public=rules.branch.public,
        levels=levels,
        result=evaluate_rows(ctx, rows),
        scored=total_criteria - facts.unscored_criteria,
        criteria=total_criteria,
        edit_refusal=edit_refusal(facts),
        submit_refusal=workflow.refusal("submit_recommendation", facts),
    )


# --- the dashboard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepItem:
    label: str
    state: str  # "done", "current" or "todo"


@dataclass(frozen=True)
class CheckItem:
    label: str
    done: bool
    optional: bool = False


@dataclass(frozen=True)
class StepAction:
    name: str
    label: str
    refusal: str | None


@dataclass(frozen=True)
class Dashboard:
    ctx: RatingContext
    step_label: str
    steps: list[StepItem]
    checklist: list[CheckItem]
    next_text: str
    actions: list[StepAction]
    middle: Organisation | None
    previous_label: str | None
    proposed_label: str | None
    opinion_label: str | None
    decided_label: str | None
    evidence_files: int
    quarterly: list[QuarterlyReview]


STEP_ORDER = (
    RatingStep.RECOMMEND,
    RatingStep.DELIBERATE,
    RatingStep.ORG_REVIEW,
    RatingStep.COMMITTEE,
    RatingStep.DECIDED,
)


def local_day(moment: dt.datetime, timezone: str) -> str:
    return short_date(moment.astimezone(ZoneInfo(timezone)))


def dashboard(session: Session, ctx: RatingContext) -> Dashboard:
    """The branch's page for the year: where it stands, what is done, what comes next (four small
    queries beyond the context)."""
    rating, facts, rules = ctx.rating, ctx.facts, ctx.rules
    middle = core.middle_organisation(session, rating)
    position = STEP_ORDER.index(rating.step)
    finalised = ctx.round.state is BranchRoundState.FINALISED
    steps = []
    for step in STEP_ORDER[:-1]:
        if step is RatingStep.ORG_REVIEW and middle is None:
            continue  # a branch directly under the committee has no middle level
        index = STEP_ORDER.index(step)
        state = "done" if index < position else ("current" if index == position else "todo")
        steps.append(StepItem(workflow.step_label(step), state))
    publish_state = "done" if finalised else ("current" if rating.step is RatingStep.DECIDED else "todo")
    steps.append(StepItem(_("亮星（公布）"), publish_state))

    checklist: list[CheckItem] = []
    evidence_count = int(
        session.scalar(select(func.count()).select_from(EvidenceFile).where(EvidenceFile.rating_id == rating.id)) or 0
    )
    if rating.step is RatingStep.RECOMMEND:
        total_criteria = sum(len(indicator.criteria) for indicator in rules.branch.indicators)
        scored = total_criteria - facts.unscored_criteria
        checklist.append(
            CheckItem(
                _("评分标准已打分 %(n)d / %(total)d 项", n=scored, total=total_criteria), not facts.unscored_criteria
            )
        )
        if rules.branch.vetoes:
            answered = len(rules.branch.vetoes) - facts.unanswered_vetoes
            checklist.append(
                CheckItem(
                    _("一票否决事项已回答 %(n)d / %(total)d 项", n=answered, total=len(rules.branch.vetoes)),
                    not facts.unanswered_vetoes,
                )
            )
        if rules.branch.facts:
            answered = len(rules.branch.facts) - facts.unanswered_facts
            checklist.append(
                CheckItem(
                    _("相关情况已填写 %(n)d / %(total)d 项", n=answered, total=len(rules.branch.facts)),
                    not facts.unanswered_facts,
                )
            )
        if rules.branch.public is not None:
            checklist.append(
                CheckItem(_("已填写%(label)s", label=rules.branch.public.label), rating.public_rate is not None)
            )
        checklist.append(CheckItem(_("已填写自我荐星说明"), facts.has_statement))
        checklist.append(CheckItem(_("已上传证明材料 %(n)d 份", n=evidence_count), evidence_count > 0, optional=True))

    due = local_day(ctx.round.self_report_due_at, ctx.timezone)
    committee_due = local_day(ctx.round.committee_due_at, ctx.timezone)
    if rating.step is RatingStep.RECOMMEND:
        next_text = _("对照评分标准逐项打分，回答一票否决事项，填写自我荐星说明，于 %(day)s 前提交荐星。", day=due)
    elif rating.step is RatingStep.DELIBERATE:
        next_text = _(
            "召开议星会议，组织党员、群众代表和“两代表一委员”无记名测评，形成支部意见后于 %(day)s 前上报。", day=due
        )
    elif rating.step is RatingStep.ORG_REVIEW:
        next_text = _("等待%(org)s审核后报送工委。", org=middle.name if middle else _("上级党组织"))
    elif rating.step is RatingStep.COMMITTEE:
        next_text = _("等待工委定星，工委于 %(day)s 前反馈结果。", day=committee_due)
    elif finalised:
        next_text = _("评定结果已公布。")
    else:
        next_text = _("工委已定星，待工委统一公布。")

    actions = []
    if rating.step is RatingStep.RECOMMEND:
        actions.append(
            StepAction("submit_recommendation", _("提交荐星"), workflow.refusal("submit_recommendation", facts))
        )
    quarterly = list(
        session.scalars(
            select(QuarterlyReview)
            .where(QuarterlyReview.branch_id == rating.branch_id, QuarterlyReview.year == ctx.round.year)
            .order_by(QuarterlyReview.quarter)
        )
    )
    return Dashboard(
        ctx=ctx,
        step_label=workflow.step_label(rating.step),
        steps=steps,
        checklist=checklist,
        next_text=next_text,
        actions=actions,
        middle=middle,
        previous_label=level_label(rating.previous_level) if rating.previous_level is not None else None,
        proposed_label=level_label(rating.proposed_level) if rating.proposed_level is not None else None,
        opinion_label=level_label(rating.opinion_level) if rating.opinion_level is not None else None,
        decided_label=level_label(rating.decided_level) if rating.decided_level is not None else None,
        evidence_files=evidence_count,
        quarterly=quarterly,
    )


# --- the home page's "本支部星级评定" ----------------------------------------------------------------


@dataclass(frozen=True)
class OpenRating:
    rating_id: int
    branch: str
    year: int
    step: RatingStep


def open_ratings(session: Session, branch_ids: Sequence[int]) -> list[OpenRating]:
    """The ratings of open rounds for these branches, newest year first (one query)."""
    if not branch_ids:
        return []
    rows = session.execute(
        select(BranchRating.id, Organisation.name, BranchRound.year, BranchRating.step)
        .join(BranchRound, BranchRating.round_id == BranchRound.id)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .where(BranchRating.branch_id.in_(list(branch_ids)), BranchRound.state == BranchRoundState.OPEN)
        .order_by(BranchRound.year.desc(), Organisation.path)
    )
    return [OpenRating(rating_id, name, year, step) for rating_id, name, year, step in rows]


__all__ = [
    "STEP_ORDER",
    "CheckItem",
    "CriterionRow",
    "Dashboard",
    "IndicatorBlock",
    "LevelRule",
    "OpenRating",
    "QuestionRow",
    "RecommendPage",
    "StepAction",
    "StepItem",
    "anchor",
    "dashboard",
    "evaluate_rows",
    "local_day",
    "open_ratings",
    "recommend_page",
]
