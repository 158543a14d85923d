"""What the public reads of the rectification plans: published plans (no login), and the link the
district's public stars page shows to them (the answer to `ask_public_links`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from fivestar.i18n import _
from fivestar.improvement.models import ImprovementPlan, PlanState
from fivestar.kernel import events

PUBLIC_STATES = (PlanState.PUBLISHED, PlanState.REVIEWED)


def public_links(session: Session, tenant: object) -> list[events.PublicLink]:
    """A link to the district's published plans, when it has any (one query)."""
    published = session.scalar(
        select(ImprovementPlan.id).where(
            ImprovementPlan.tenant_id == getattr(tenant, "id", None), ImprovementPlan.state.in_(PUBLIC_STATES)
        ).limit(1)
    )
    if published is None:
        return []
    return [events.PublicLink(_("各党支部整改提升计划公示"), "tenant.improvement_public.index")]


def load_public(session: Session, plan_id: int) -> ImprovementPlan | None:
    """A published (or reviewed) plan with its branch, or None: drafts are not public."""
    return session.scalar(
        select(ImprovementPlan)
        .join(ImprovementPlan.branch)
        .where(ImprovementPlan.id == plan_id, ImprovementPlan.state.in_(PUBLIC_STATES))
        .options(contains_eager(ImprovementPlan.branch))
    )
