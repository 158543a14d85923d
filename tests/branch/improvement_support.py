"""Helpers for the rectification-plan tests: a finalised year with its plans, principals, items."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.improvement import services
from fivestar.improvement.models import ImprovementPlan, PlanItem
from fivestar.tenancy import tenant_context


def plans_by_branch(session: Session, world: dict[str, Any]) -> dict[int, ImprovementPlan]:
    with tenant_context(world["tenant"].id):
        return {p.branch_id: p for p in session.scalars(select(ImprovementPlan))}


def with_plans(session: Session, world: dict[str, Any]) -> dict[str, Any]:
    """The `published` district (2024 finalised: `one` 四星, `direct` 五星) with its plans created."""
    with tenant_context(world["tenant"].id):
        services.create_plans_for_round(session, world["published_round"])
    plans = plans_by_branch(session, world)
    return {**world, "plan_one": plans[world["one"].id], "plan_direct": plans[world["direct"].id]}


def fill_items(
    session: Session, world: dict[str, Any], plan: ImprovementPlan, deadline: dt.date = dt.date(2025, 6, 30)
) -> list[PlanItem]:
    """Every item of `plan` given a measure, an owner and a deadline (so it may be published)."""
    with tenant_context(world["tenant"].id):
        items = services.items_of(session, plan.id)
        for item in items:
            services.update_item(
                session,
                plan,
                item,
                {
                    "problem": item.problem,
                    "measure": "制定专项措施，按月推进",
                    "owner": "赵书记",
                    "deadline": deadline.isoformat(),
                },
                version=item.version,
            )
        return items
