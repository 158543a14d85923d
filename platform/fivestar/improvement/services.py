"""Writing the rectification plans (整改提升计划): creating them after 定星, the branch's edits, publishing.

A plan is created for every decided branch of a finalised round (`create_plans_for_round`, run by the
`branch_round_finalised` reaction and by the committee's "create missing plans" button or the CLI for
a year finalised before plans existed). It starts in the programme the round's rules give its level
and with items for the criteria where the branch lost most points (`prefill`, pure and worked out
from the branch's criterion scores against the rules' maxima).

The branch (PLAN_EDIT) writes the items while the plan is a draft — problem, measure, owner, deadline
— and publishes it (`publish`, the workflow's "publish" transition). After publishing, only the
progress moves: each item's status and evidence files. A reviewed plan is closed.

Services flush, never commit, audit every change and refuse with `ServiceError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import core as round_core
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, CriterionScore
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.improvement import workflow
from fivestar.improvement.models import ImprovementFile, ImprovementPlan, ItemStatus, PlanItem, PlanState
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version, flush_or_stale
from fivestar.rules import RuleSet
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

PROBLEM_MAX = 2000
MEASURE_MAX = 2000
GOAL_MAX = 2000
OWNER_MAX = 120
MAX_ITEMS = 50
ITEM_FIELDS = ("problem", "measure", "owner", "deadline", "status")

load_plan = rounds.loader(ImprovementPlan, _l("整改提升计划不存在"), with_branch=True)


# --- prefill -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefilled:
    """A criterion where the branch lost points: what a new plan's item starts from."""

    indicator_key: str
    criterion_key: str
    indicator_label: str
    criterion_label: str
    points: Decimal
    score: Decimal
    lost: Decimal

    @property
    def problem(self) -> str:
        return _(
            "%(indicator)s · %(criterion)s：得 %(score)s 分（满分 %(points)s），失 %(lost)s 分",
            indicator=self.indicator_label,
            criterion=self.criterion_label,
            score=_num(self.score),
            points=_num(self.points),
            lost=_num(self.lost),
        )


def _num(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def prefill(rules: RuleSet, scores: Mapping[str, Mapping[str, Decimal]], count: int | None = None) -> list[Prefilled]:
    """The `count` criteria (the rules' `prefill_items` by default) where the branch lost most points
    against the rules' maxima, most lost first; ties keep the rules' order of indicators and criteria.
    A criterion without a score lost all its points; criteria at full marks are never listed."""
    wanted = rules.improvement.prefill_items if count is None else count
    lost: list[tuple[Decimal, int, Prefilled]] = []
    order = 0
    for indicator in rules.branch.indicators:
        for criterion in indicator.criteria:
            score = scores.get(indicator.key, {}).get(criterion.key, Decimal(0))
            missing = criterion.points - score
            if missing > 0:
                lost.append(
                    (
                        missing,
                        order,
                        Prefilled(
                            indicator.key,
                            criterion.key,
                            indicator.label,
                            criterion.label,
                            criterion.points,
                            score,
                            missing,
                        ),
                    )
                )
            order += 1
    lost.sort(key=lambda entry: (-entry[0], entry[1]))
    return [entry[2] for entry in lost[:wanted]]


# --- creating plans after 定星 -------------------------------------------------------------------------


def create_plans_for_round(session: Session, branch_round: BranchRound) -> list[ImprovementPlan]:
    """A plan for every decided branch of a finalised round that has none yet (a fixed handful of
    queries whatever the number of branches); returns the plans created. Running it again creates
    nothing."""
    if branch_round.state is not BranchRoundState.FINALISED:
        raise ConflictError(_("本年度星级评定尚未定星公布，还不能制定整改提升计划"))
    rules = round_core.round_rules(session, branch_round)
    ratings: list[tuple[int, int, int]] = list(
        session.execute(
            select(BranchRating.id, BranchRating.branch_id, BranchRating.decided_level)
            .where(BranchRating.round_id == branch_round.id, BranchRating.decided_level.is_not(None))
            .order_by(BranchRating.id)
        )
    )
    existing = set(
        session.scalars(select(ImprovementPlan.branch_id).where(ImprovementPlan.round_id == branch_round.id))
    )
    wanted = [(rid, bid, level) for rid, bid, level in ratings if bid not in existing]
    if not wanted:
        return []
    scores: dict[int, dict[str, dict[str, Decimal]]] = {}
    for rating_id, indicator_key, criterion_key, score in session.execute(
        select(
            CriterionScore.rating_id, CriterionScore.indicator_key, CriterionScore.criterion_key, CriterionScore.score
        ).where(CriterionScore.rating_id.in_([rid for rid, _branch, _level in wanted]))
    ):
        scores.setdefault(rating_id, {}).setdefault(indicator_key, {})[criterion_key] = score
    plans: list[ImprovementPlan] = []
    for rating_id, branch_id, level in wanted:
        programme = rules.improvement.programme_for(int(level))
        plan = ImprovementPlan(
            tenant_id=branch_round.tenant_id,
            round_id=branch_round.id,
            rating_id=rating_id,
            branch_id=branch_id,
            year=branch_round.year + 1,
            level=int(level),
            programme_key=programme.key,
            programme_label=programme.label,
            state=PlanState.DRAFT,
        )
        session.add(plan)
        plans.append(plan)
    session.flush()
    items: list[PlanItem] = []
    for plan in plans:
        for position, lost in enumerate(prefill(rules, scores.get(plan.rating_id, {}))):
            items.append(
                PlanItem(
                    tenant_id=plan.tenant_id,
                    plan_id=plan.id,
                    position=position,
                    indicator_key=lost.indicator_key,
                    criterion_key=lost.criterion_key,
                    lost_points=lost.lost,
                    problem=lost.problem,
                    status=ItemStatus.NOT_STARTED,
                )
            )
    session.add_all(items)
    session.flush()
    audit.record_many(
        session,
        "improvement_plan.create",
        ImprovementPlan.__tablename__,
        [
            (
                plan.id,
                None,
                {
                    "round_id": plan.round_id,
                    "branch_id": plan.branch_id,
                    "year": plan.year,
                    "level": plan.level,
                    "programme": plan.programme_key,
                    "items": sum(1 for i in items if i.plan_id == plan.id),
                },
            )
            for plan in plans
        ],
        tenant_id=branch_round.tenant_id,
    )
    return plans


# --- the branch's edits ----------------------------------------------------------------------------------


def _ensure_draft(plan: ImprovementPlan) -> None:
    if plan.state is not PlanState.DRAFT:
        raise ConflictError(_("计划已公布，整改事项的内容不能再更改，只能更新进度和证明材料"))


def _ensure_not_reviewed(plan: ImprovementPlan) -> None:
    refused = workflow.editable_refusal(plan.state)
    if refused:
        raise ConflictError(refused)


EARLIEST_DAY, LATEST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)  # the dates a plan may name


def parse_deadline(value: object) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ServiceError(_("完成时限应为日期，例如 2026-06-30"), field="deadline") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:  # `0001-01-01`, `9999-12-31`: typos, not deadlines
        raise ServiceError(
            _("完成时限应在 %(first)s 至 %(last)s 之间", first=EARLIEST_DAY.isoformat(), last=LATEST_DAY.isoformat()),
            field="deadline",
        )
    return day


def parse_status(value: object) -> ItemStatus:
    try:
        return ItemStatus(str(value))
    except ValueError:
        raise ServiceError(_("请选择进度"), field="status") from None


def _text(value: object, longest: int, field: str, *, required: str | None = None) -> str | None:
    text = str(value or "").strip()
    if not text:
        if required:
            raise ServiceError(required, field=field)
        return None
    if len(text) > longest:
        raise ServiceError(_("最长 %(n)d 个字", n=longest), field=field)
    return text


def update_goal(session: Session, plan: ImprovementPlan, goal: object, *, version: object) -> ImprovementPlan:
    """The plan's goal (争创目标), while it is a draft."""
    _ensure_draft(plan)
    expect_version(plan, version)
    before = {"goal": plan.goal}
    plan.goal = _text(goal, GOAL_MAX, "goal")
    flush_or_stale(session)
    audit.record(session, "improvement_plan.goal", plan, before=before, after={"goal": plan.goal})
    return plan


def _item_snapshot(item: PlanItem) -> dict[str, object]:
    return audit.snapshot(item, ["plan_id", "problem", "measure", "owner", "deadline", "status", "completed_on"])


def add_item(session: Session, plan: ImprovementPlan, values: Mapping[str, object]) -> PlanItem:
    """A new item at the end of a draft plan (the problem is required)."""
    _ensure_draft(plan)
    count = int(session.scalar(select(func.count()).where(PlanItem.plan_id == plan.id)) or 0)
    if count >= MAX_ITEMS:
        raise ServiceError(_("每个计划最多 %(n)d 项整改事项", n=MAX_ITEMS))
    last = session.scalar(select(func.max(PlanItem.position)).where(PlanItem.plan_id == plan.id))
    item = PlanItem(tenant_id=plan.tenant_id, plan_id=plan.id, position=(last or 0) + 1, problem="")
    _write_item(item, values, content=True, today=_today(session, plan))
    session.add(item)
    session.flush()
    audit.record(session, "improvement_item.add", item, after=_item_snapshot(item))
    return item


def _today(session: Session, plan: ImprovementPlan) -> dt.date:
    """The district's date now: an item is done on the day it is where the branch works, not in UTC."""
    return clock.today_in(timezone_of(session, plan.tenant_id))


def _write_item(item: PlanItem, values: Mapping[str, object], *, content: bool, today: dt.date) -> None:
    if content:
        item.problem = _text(values.get("problem"), PROBLEM_MAX, "problem", required=_("请填写存在的问题")) or ""
        item.measure = _text(values.get("measure"), MEASURE_MAX, "measure")
        item.owner = _text(values.get("owner"), OWNER_MAX, "owner")
        item.deadline = parse_deadline(values.get("deadline"))
    if "status" in values and values.get("status") not in (None, ""):
        status = parse_status(values.get("status"))
        if status is ItemStatus.DONE and item.status is not ItemStatus.DONE:
            item.completed_on = today
        elif status is not ItemStatus.DONE:
            item.completed_on = None
        item.status = status


def update_item(
    session: Session, plan: ImprovementPlan, item: PlanItem, values: Mapping[str, object], *, version: object
) -> PlanItem:
    """Change an item: its content (when `values` has a problem) while the plan is a draft, its
    status whenever the plan is not reviewed yet."""
    _ensure_not_reviewed(plan)
    if item.plan_id != plan.id:  # pragma: no cover - the view loads the item through its plan
        raise NotFoundError(_("整改事项不存在"))
    content = plan.state is PlanState.DRAFT and "problem" in values
    if not content and values.get("status") in (None, ""):  # nothing to change: no save, no audit event
        raise ServiceError(_("请选择进度"), field="status")
    expect_version(item, version)
    before = _item_snapshot(item)
    _write_item(item, values, content=content, today=_today(session, plan))
    flush_or_stale(session)
    audit.record(session, "improvement_item.update", item, before=before, after=_item_snapshot(item))
    return item


def remove_item(session: Session, plan: ImprovementPlan, item: PlanItem) -> list[str]:
    """Remove an item of a draft plan with its evidence rows; returns the storage keys of its files
    (to delete from disk once the transaction has committed)."""

    _ensure_draft(plan)
    keys = list(session.scalars(select(ImprovementFile.storage_key).where(ImprovementFile.item_id == item.id)))
    audit.record(session, "improvement_item.remove", item, before=_item_snapshot(item))
    for row in session.scalars(select(ImprovementFile).where(ImprovementFile.item_id == item.id)):
        session.delete(row)
    session.delete(item)
    session.flush()
    return keys


def load_item(session: Session, plan: ImprovementPlan, item_id: int) -> PlanItem:
    found = session.scalar(select(PlanItem).where(PlanItem.id == item_id, PlanItem.plan_id == plan.id))
    if found is None:
        raise NotFoundError(_("整改事项不存在"))
    return found


def items_of(session: Session, plan_id: int) -> list[PlanItem]:
    return list(
        session.scalars(select(PlanItem).where(PlanItem.plan_id == plan_id).order_by(PlanItem.position, PlanItem.id))
    )


# --- publishing ------------------------------------------------------------------------------------------


def publish_facts(session: Session, plan: ImprovementPlan) -> workflow.PlanFacts:
    items = items_of(session, plan.id)
    incomplete = sum(1 for i in items if not i.measure or not i.owner or i.deadline is None)
    return workflow.PlanFacts(state=plan.state, items=len(items), incomplete_items=incomplete)


def publish(session: Session, plan: ImprovementPlan, *, version: object) -> ImprovementPlan:
    """Publish the plan in the unit and on the public page (DRAFT → PUBLISHED)."""
    expect_version(plan, version)
    refused = workflow.refusal("publish", publish_facts(session, plan))

    def published() -> None:
        plan.published_at = clock.now()
        plan.published_by = audit.current_actor().name[:120]

    rounds.apply(
        session,
        workflow.PLAN_WORKFLOW,
        "publish",
        plan,
        refusal=refused,
        changes=published,
        after=lambda: {"state": plan.state, "published_at": plan.published_at},
    )
    return plan


def is_overdue(item: PlanItem, today: dt.date) -> bool:
    """Not done and past its deadline (the tenant's calendar day `today`)."""
    return item.status is not ItemStatus.DONE and item.deadline is not None and item.deadline < today


__all__ = [
    "Prefilled",
    "add_item",
    "create_plans_for_round",
    "is_overdue",
    "items_of",
    "load_item",
    "load_plan",
    "parse_deadline",
    "prefill",
    "publish",
    "publish_facts",
    "remove_item",
    "update_goal",
    "update_item",
]
