"""What the public reads of the rectification plans: published plans (no login), and the links a
branch's public stars page shows to them (the answer to `ask_public_branch_links`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from fivestar.i18n import _
from fivestar.improvement.models import ImprovementPlan, PlanState
from fivestar.kernel import events

PUBLIC_STATES = (PlanState.PUBLISHED, PlanState.REVIEWED)


def public_links(session: Session, branch: object) -> list[events.PublicLink]:
    """A link per published plan of the branch, newest year first (one query)."""
    rows = session.execute(
        select(ImprovementPlan.id, ImprovementPlan.year)
        .where(ImprovementPlan.branch_id == getattr(branch, "id", None), ImprovementPlan.state.in_(PUBLIC_STATES))
        .order_by(ImprovementPlan.year.desc())
    )
    return [
        events.PublicLink(_("%(year)d年整改提升计划", year=year), "improvement_public.plan", (("plan_id", plan_id),))
        for plan_id, year in rows
    ]


def load_public(session: Session, plan_id: int) -> ImprovementPlan | None:
    """A published (or reviewed) plan with its branch, or None: drafts are not public."""
    return session.scalar(
        select(ImprovementPlan)
        .join(ImprovementPlan.branch)
        .where(ImprovementPlan.id == plan_id, ImprovementPlan.state.in_(PUBLIC_STATES))
        .options(contains_eager(ImprovementPlan.branch))
    )
