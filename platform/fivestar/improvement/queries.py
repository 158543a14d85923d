"""Set-based reads of the rectification plans: a fixed number of statements whatever the rows.

`plans_of_year` is the one other features read (the committee's dashboard): every plan of a work year
with its progress — items in total, done, overdue — and the acceptance outcome if recorded. Its
signature is kept stable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import Session

from fivestar.improvement.models import AcceptanceReview, ImprovementPlan, ItemStatus, Outcome, PlanItem, PlanState
from fivestar.orgs.models import Organisation


@dataclass(frozen=True)
class PlanProgress:
    """One plan of a year and how far it is (`today` decides what is overdue)."""

    plan_id: int
    round_id: int
    branch_id: int
    branch_name: str
    branch_path: str
    year: int  # the year of the work (the rated year + 1)
    level: int  # the decided level the plan starts from
    programme_key: str
    programme_label: str
    state: PlanState
    items_total: int
    items_done: int
    items_overdue: int  # not done and past their deadline (before `today`)
    published_at: dt.datetime | None
    outcome: Outcome | None  # the acceptance review's, once recorded

    @property
    def share_done(self) -> float:
        """Done items over all items, 0..1 (0 for a plan without items); for bars, not for rules."""
        return self.items_done / self.items_total if self.items_total else 0.0


def plans_of_year(
    session: Session, year: int, today: dt.date, scope: ColumnElement[bool] | None = None
) -> list[PlanProgress]:
    """Every plan of work year `year` in the current tenant with its progress, by branch name (one
    query). `today` is the tenant's calendar day (`clock.today_in(timezone)`): an item not done whose
    deadline is before it is overdue. `scope` is a WHERE clause on the branch `Organisation`
    (e.g. `accounts.policy.plan_scope(principal)`); None: every plan of the tenant."""
    items = (
        select(
            PlanItem.plan_id.label("plan_id"),
            func.count().label("total"),
            func.sum(case((PlanItem.status == ItemStatus.DONE, 1), else_=0)).label("done"),
            func.sum(case((and_(PlanItem.status != ItemStatus.DONE, PlanItem.deadline < today), 1), else_=0)).label(
                "overdue"
            ),
        )
        .group_by(PlanItem.plan_id)
        .subquery()
    )
    rows: Any = session.execute(
        select(
            ImprovementPlan,
            Organisation.name,
            Organisation.path,
            items.c.total,
            items.c.done,
            items.c.overdue,
            AcceptanceReview.outcome,
        )
        .join(
            Organisation,
            (Organisation.id == ImprovementPlan.branch_id) & (Organisation.tenant_id == ImprovementPlan.tenant_id),
        )
        .outerjoin(items, items.c.plan_id == ImprovementPlan.id)
        .outerjoin(
            AcceptanceReview,
            (AcceptanceReview.plan_id == ImprovementPlan.id)
            & (AcceptanceReview.tenant_id == ImprovementPlan.tenant_id),
        )
        .where(ImprovementPlan.year == year, scope if scope is not None else true())
        .order_by(Organisation.name, ImprovementPlan.id)
    ).all()
    return [
        PlanProgress(
            plan_id=plan.id,
            round_id=plan.round_id,
            branch_id=plan.branch_id,
            branch_name=name,
            branch_path=path,
            year=plan.year,
            level=plan.level,
            programme_key=plan.programme_key,
            programme_label=plan.programme_label,
            state=plan.state,
            items_total=int(total or 0),
            items_done=int(done or 0),
            items_overdue=int(overdue or 0),
            published_at=plan.published_at,
            outcome=outcome,
        )
        for plan, name, path, total, done, overdue, outcome in rows
    ]


def plan_years(session: Session) -> list[int]:
    """The work years that have plans in the current tenant, newest first (one query)."""
    return [
        int(y) for y in session.scalars(select(ImprovementPlan.year).distinct().order_by(ImprovementPlan.year.desc()))
    ]


__all__ = ["PlanProgress", "plan_years", "plans_of_year"]
