"""The rectification plan's steps, written down in one place.

A plan walks DRAFT (the branch writes it) → PUBLISHED (公开公示 in the unit and on the public page)
→ REVIEWED (the committee's acceptance review, 考核验收, is recorded). The table is declared over the
rounds kernel (`fivestar.kernel.rounds`): the state changes only through `rounds.apply`, which checks
the refusal, authorises the transition's action on the plan (its branch), sets the state and audits
it. `refusal()` turns the facts the services gather into the reason a person reads, or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from fivestar.accounts.policy import Action, authorize
from fivestar.i18n import _, _l
from fivestar.improvement.models import ImprovementPlan, PlanState
from fivestar.kernel.rounds import Transition, Workflow

PLAN_WORKFLOW: Workflow[PlanState] = Workflow(
    "improvement_plan",
    ImprovementPlan,
    "state",
    (
        # The branch publishes its plan in the unit (公开公示): items are then fixed in what they promise.
        Transition("publish", frozenset({PlanState.DRAFT}), PlanState.PUBLISHED, Action.PLAN_EDIT),
        # The committee's year-end acceptance review of a published plan.
        Transition("review", frozenset({PlanState.PUBLISHED}), PlanState.REVIEWED, Action.PLAN_REVIEW),
    ),
    authorize,
    labels={PlanState.DRAFT: _l("草稿"), PlanState.PUBLISHED: _l("已公布"), PlanState.REVIEWED: _l("已验收")},
)
TRANSITIONS: dict[str, Transition[PlanState]] = PLAN_WORKFLOW.by_name


def state_label(state: PlanState) -> str:
    return PLAN_WORKFLOW.label(state)


@dataclass(frozen=True)
class PlanFacts:
    """What a step of one plan depends on."""

    state: PlanState
    items: int = 0
    incomplete_items: int = 0  # items without a measure, an owner or a deadline


def refusal(name: str, facts: PlanFacts) -> str | None:
    """Why transition `name` may not happen now, or None if it may."""
    if facts.state not in TRANSITIONS[name].sources:
        return _("计划当前为“%(state)s”，不能执行此操作", state=state_label(facts.state))
    if name == "publish":
        if not facts.items:
            return _("计划还没有任何整改事项")
        if facts.incomplete_items:
            return _("还有 %(n)d 项整改事项未填写整改措施、责任人或完成时限", n=facts.incomplete_items)
    return None


def editable_refusal(state: PlanState) -> str | None:
    """Items are written while the plan is a draft; after publishing only their progress moves
    (status and evidence); a reviewed plan is closed."""
    if state is PlanState.REVIEWED:
        return _("计划已考核验收，不能再更改")
    return None
