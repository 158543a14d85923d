"""What the rectification plans ask of a person now (`pending`, gathered by the home page).

* A branch's secretary or committee member (PLAN_EDIT on the branch): a draft plan to complete and
  publish; items of a published plan not done whose deadline is within the rules' lead days, or
  already past (one item per plan, with how many, due at the end of the earliest deadline's day).
* The committee (PLAN_REVIEW): published plans whose acceptance review (考核验收) is due — from the
  first day of the rules' acceptance month of the plan's year — one item per year, due at the end of
  that month.

A fixed number of queries whatever the number of plans: the tenant's time zone, the plans in scope
with their rule-set versions, their open items, the versions' rules.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize, plan_scope, scoped_actions
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds.models import BranchRound
from fivestar.i18n import _
from fivestar.improvement.acceptance import due_window
from fivestar.improvement.models import ImprovementPlan, ItemStatus, PlanItem, PlanState
from fivestar.kernel.worklist import WorkItem
from fivestar.orgs.models import Organisation
from fivestar.rules import RuleSet
from fivestar.tenants.models import RuleSetVersion
from fivestar.tenants.services import timezone_of, version_rules
from fivestar.timekeeping.local_times import local_to_utc

END_OF_DAY = dt.time(23, 59)


def _rules_of(session: Session, version_ids: set[int]) -> dict[int, RuleSet]:
    if not version_ids:
        return {}
    versions = session.scalars(select(RuleSetVersion).where(RuleSetVersion.id.in_(version_ids)))
    return {version.id: version_rules(version) for version in versions}


def _plans(session: Session, scope: Any, states: tuple[PlanState, ...]) -> Any:
    """(id, year, state, branch name, rules version) of the plans in `scope` at `states` (one query)."""
    return session.execute(
        select(
            ImprovementPlan.id,
            ImprovementPlan.year,
            ImprovementPlan.state,
            Organisation.name,
            BranchRound.rules_version_id,
        )
        .join(
            Organisation,
            (Organisation.id == ImprovementPlan.branch_id) & (Organisation.tenant_id == ImprovementPlan.tenant_id),
        )
        .join(
            BranchRound,
            (BranchRound.id == ImprovementPlan.round_id) & (BranchRound.tenant_id == ImprovementPlan.tenant_id),
        )
        .where(ImprovementPlan.state.in_(states), scope)
        .order_by(Organisation.name, ImprovementPlan.id)
    ).all()


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """The plan work waiting for `principal` at `now` (see the module's docstring)."""
    if not isinstance(principal, Principal) or principal.tenant_id is None or principal.is_operator:
        return []
    reviewer = authorize(principal, Action.PLAN_REVIEW)
    writes = Action.PLAN_EDIT in scoped_actions(principal)  # the branch's own people, not the office
    if not reviewer and not writes:
        return []
    timezone = timezone_of(session, principal.tenant_id)
    today = now.astimezone(ZoneInfo(timezone)).date()
    mine = (
        _plans(session, plan_scope(principal, Action.PLAN_EDIT), (PlanState.DRAFT, PlanState.PUBLISHED))
        if (writes)
        else []
    )
    everyone = _plans(session, plan_scope(principal), (PlanState.PUBLISHED,)) if reviewer else []
    rules = _rules_of(session, {int(row.rules_version_id) for row in [*mine, *everyone]})
    items: list[WorkItem] = []
    if mine:
        items.extend(_branch_items(session, mine, rules, today, timezone))
    if everyone:
        items.extend(_acceptance_items(everyone, rules, today, timezone))
    return items


def _branch_items(
    session: Session, rows: Any, rules: dict[int, RuleSet], today: dt.date, timezone: str
) -> list[WorkItem]:
    items: list[WorkItem] = []
    published = {int(row.id): row for row in rows if row.state is PlanState.PUBLISHED}
    for row in rows:
        if row.state is PlanState.DRAFT:
            items.append(
                WorkItem(
                    kind="plan.publish",
                    title=_("完成并公布整改提升计划"),
                    endpoint="tenant.improvement.plan",
                    params={"plan_id": int(row.id)},
                    detail=_("%(branch)s · %(year)d 年", branch=row.name, year=row.year),
                )
            )
    if not published:
        return items
    due: dict[int, list[dt.date]] = defaultdict(list)
    for plan_id, deadline in session.execute(
        select(PlanItem.plan_id, PlanItem.deadline).where(
            PlanItem.plan_id.in_(published), PlanItem.status != ItemStatus.DONE, PlanItem.deadline.is_not(None)
        )
    ):
        row = published[int(plan_id)]
        ruleset = rules.get(int(row.rules_version_id))
        lead = max(ruleset.improvement.lead_days, default=0) if ruleset is not None else 0
        if deadline is not None and deadline <= today + dt.timedelta(days=lead):
            due[int(plan_id)].append(deadline)
    for plan_id, deadlines in due.items():
        row = published[plan_id]
        first = min(deadlines)
        late = sum(1 for d in deadlines if d < today)
        title = _("整改事项已逾期") if late else _("整改事项即将到期")
        items.append(
            WorkItem(
                kind="plan.item_due",
                title=title,
                endpoint="tenant.improvement.plan",
                params={"plan_id": plan_id},
                detail=_("%(branch)s · %(year)d 年整改提升计划", branch=row.name, year=row.year),
                due=local_to_utc(first, END_OF_DAY, timezone),
                count=len(deadlines),
            )
        )
    return items


def _acceptance_items(rows: Any, rules: dict[int, RuleSet], today: dt.date, timezone: str) -> list[WorkItem]:
    waiting: dict[tuple[int, dt.date], int] = defaultdict(int)
    for row in rows:
        ruleset = rules.get(int(row.rules_version_id))
        if row.state is not PlanState.PUBLISHED or ruleset is None:
            continue
        first, last = due_window(ruleset, int(row.year))
        if today >= first:
            waiting[(int(row.year), last)] += 1
    return [
        WorkItem(
            kind="plan.acceptance_due",
            title=_("整改提升计划考核验收"),
            endpoint="tenant.improvement.index",
            params={"year": year},
            detail=_("%(year)d 年", year=year),
            due=local_to_utc(last, END_OF_DAY, timezone),
            count=count,
        )
        for (year, last), count in sorted(waiting.items())
    ]


__all__ = ["pending"]
