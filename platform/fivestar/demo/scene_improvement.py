"""The demo's year after 定星: rectification plans (整改提升计划) and their acceptance review (考核验收).

The demo seeds a finished (finalised) branch round two years back and an open one for last year
(`scenes.seed_branch_round`). The finished year's plans ran through last year, so here every rated
branch gets its plan in its level's programme, prefilled where it lost most points; the plans are
published with their items mostly done; the demo secretary's branch keeps one item overdue (the plan
page highlights it, the work list and the reminders show it) and is left for the committee to
review; one other branch's plan is still a draft; the others are reviewed with varied outcomes
(晋位升级, 保持, 限期再整改). Last year's open round then shows each branch's outcome and findings in
its dossier for 定星 — a district's year walked from 定星 to acceptance at once.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.improvement import acceptance, services
from fivestar.improvement.models import ImprovementPlan, ItemStatus, Outcome, Verdict
from fivestar.orgs.models import Organisation
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

MEASURES = (
    "对照评分标准逐项查找差距，制定专项措施，按月推进并在支委会上通报进度。（演示数据）",
    "建立工作台账，明确时间节点，支部书记每季度听取一次汇报。（演示数据）",
    "组织专题学习和经验交流，学习先进支部做法，补齐短板。（演示数据）",
)
OWNERS = ("支部书记", "组织委员", "宣传委员", "纪检委员")
FINDINGS = {
    Verdict.MET: "已按计划落实，有台账和材料佐证。（演示数据）",
    Verdict.PARTLY: "部分措施落实，仍有差距，需持续推进。（演示数据）",
    Verdict.NOT_MET: "措施未落实到位，问题依然存在。（演示数据）",
}


def seed_improvement(session: Session, tenant: Tenant, own_branch: Organisation, rng: random.Random) -> None:
    """Plans for the demo's finished year, published and mostly reviewed (see the module docstring)."""
    finished = session.scalar(
        select(BranchRound).where(BranchRound.state == BranchRoundState.FINALISED).order_by(BranchRound.year.desc())
    )
    if finished is None:
        return
    services.create_plans_for_round(session, finished)
    plans = list(
        session.scalars(
            select(ImprovementPlan)
            .join(ImprovementPlan.branch)
            .where(ImprovementPlan.round_id == finished.id)
            .order_by(Organisation.sort_order, Organisation.id)
        )
    )
    today = clock.today_in(tenant.timezone)
    draft_left = False
    for index, plan in enumerate(plans):
        own = plan.branch_id == own_branch.id
        if not own and not draft_left and index > 0:
            draft_left = True  # one plan the branch has not published yet
            continue
        _write_and_publish(session, plan, rng, overdue_one=own)
        if own or index % 4 == 3:
            continue  # published, waiting for the committee's acceptance review
        outcome = (Outcome.PROMOTE, Outcome.KEEP, Outcome.RECTIFY)[index % 3]
        _review(session, plan, outcome, today, rng)


def _write_and_publish(session: Session, plan: ImprovementPlan, rng: random.Random, *, overdue_one: bool) -> None:
    plan.goal = "巩固提升现有星级，争创更高星级。（演示数据）"
    items = services.items_of(session, plan.id)
    if not items:
        services.add_item(session, plan, {"problem": "巩固提高措施需进一步细化。（演示数据）"})
        items = services.items_of(session, plan.id)
    for position, item in enumerate(items):
        deadline = dt.date(plan.year, 4 + 2 * position, 30)
        services.update_item(
            session,
            plan,
            item,
            {
                "problem": item.problem,
                "measure": MEASURES[position % len(MEASURES)],
                "owner": OWNERS[position % len(OWNERS)],
                "deadline": deadline.isoformat(),
            },
            version=item.version,
        )
    services.publish(session, plan, version=plan.version)
    for position, item in enumerate(items):
        late = overdue_one and position == len(items) - 1
        status = ItemStatus.IN_PROGRESS if late else ItemStatus.DONE
        services.update_item(session, plan, item, {"status": status.value}, version=item.version)
        if status is ItemStatus.DONE:
            item.completed_on = item.deadline - dt.timedelta(days=rng.randint(1, 20)) if item.deadline else None
    session.flush()


def _review(session: Session, plan: ImprovementPlan, outcome: Outcome, today: dt.date, rng: random.Random) -> None:
    rules = acceptance.plan_rules(session, plan)
    answers: dict[str, tuple[object, object]] = {}
    for question in rules.improvement.questions:
        if outcome is Outcome.PROMOTE:
            verdict = Verdict.MET
        elif outcome is Outcome.KEEP:
            verdict = rng.choice((Verdict.MET, Verdict.MET, Verdict.PARTLY))
        else:
            verdict = rng.choice((Verdict.PARTLY, Verdict.NOT_MET))
        answers[question.key] = (verdict.value, FINDINGS[verdict])
    rectify_by = (today + dt.timedelta(days=90)).isoformat() if outcome is Outcome.RECTIFY else None
    summary = {
        Outcome.PROMOTE: "整改到位，建议晋位升级。（演示数据）",
        Outcome.KEEP: "整改基本到位，保持现有星级。（演示数据）",
        Outcome.RECTIFY: "整改不到位，责令限期再整改。（演示数据）",
    }[outcome]
    draft = acceptance.check_review(rules, answers, outcome.value, rectify_by, summary, today=today)
    acceptance.record_review(session, plan, draft, version=plan.version)


__all__ = ["seed_improvement"]
