"""Rectification plans (整改提升计划): created after 定星 in the level's programme, prefilled where the
branch lost most points (worked out by hand), edited and published by the branch, and the year's
progress query."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import decision
from fivestar.branch_rounds.models import BranchRating, RatingStep
from fivestar.errors import ConflictError, ServiceError
from fivestar.improvement import queries, services
from fivestar.improvement.models import ImprovementPlan, ItemStatus, PlanItem, PlanState
from fivestar.rules import load_rules_file
from fivestar.tenancy import tenant_context
from tests.branch.committee_support import put_at
from tests.branch.improvement_support import fill_items, plans_by_branch, with_plans
from tests.conftest import SAMPLE_RULES
from tests.support import count_queries

# --- prefill, by hand -----------------------------------------------------------------------------------


def test_prefill_lists_the_criteria_that_lost_most_points() -> None:
    rules = load_rules_file(SAMPLE_RULES)
    # leadership: secretary 6/6, structure 7/7, democracy 5/7 (lost 2); membership: recruitment 2.5/6
    # (lost 3.5); mechanisms: records 0/6 (lost 6); results: innovation 3.5/10 (lost 6.5); public full.
    scores = {
        "leadership": {"secretary": Decimal(6), "structure": Decimal(7), "democracy": Decimal(5)},
        "membership": {"education": Decimal(7), "pledges": Decimal(7), "recruitment": Decimal("2.5")},
        "mechanisms": {"three_meetings": Decimal(8), "appraisal": Decimal(6), "records": Decimal(0)},
        "results": {"core_tasks": Decimal(10), "innovation": Decimal("3.5")},
        "public": {"ballot": Decimal(12), "service": Decimal(8)},
    }
    top = services.prefill(rules, scores)
    assert [(p.criterion_key, p.lost) for p in top] == [
        ("innovation", Decimal("6.5")),
        ("records", Decimal(6)),
        ("recruitment", Decimal("3.5")),
    ]
    assert top[0].problem == "工作业绩 · 党建工作创新：得 3.5 分（满分 10），失 6.5 分"
    assert [p.criterion_key for p in services.prefill(rules, scores, 5)] == [
        "innovation",
        "records",
        "recruitment",
        "democracy",
    ]  # only four criteria lost anything


def test_prefill_breaks_ties_in_the_rules_order_and_counts_a_missing_score_as_lost() -> None:
    rules = load_rules_file(SAMPLE_RULES)
    full = {i.key: {c.key: c.points for c in i.criteria} for i in rules.branch.indicators}
    full["public"]["service"] = Decimal(7)  # lost 1
    full["leadership"]["democracy"] = Decimal(6)  # lost 1, earlier in the rules
    del full["mechanisms"]["records"]  # never scored: lost all 6
    assert [(p.criterion_key, p.lost) for p in services.prefill(rules, full)] == [
        ("records", Decimal(6)),
        ("democracy", Decimal(1)),
        ("service", Decimal(1)),
    ]
    assert services.prefill(rules, full, 0) == []


# --- creating plans -------------------------------------------------------------------------------------------


def test_plans_for_a_finalised_round_follow_the_level_and_the_lost_points(
    session: Session, published: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    one, direct = world["plan_one"], world["plan_direct"]
    assert (one.year, one.level, one.programme_key, one.programme_label) == (2025, 4, "demonstration", "示范工程")
    assert (direct.level, direct.programme_key, one.state) == (5, "demonstration", PlanState.DRAFT)
    with tenant_context(world["tenant"].id):
        items = services.items_of(session, one.id)
        # ONE_TOTALS spread in the rules' order: innovation 3.5/10, records 0/6, recruitment 2.5/6.
        assert [(i.criterion_key, i.lost_points) for i in items] == [
            ("innovation", Decimal("6.5")),
            ("records", Decimal(6)),
            ("recruitment", Decimal("3.5")),
        ]
        # DIRECT_TOTALS (19 of 20 each): every indicator lost 1; ties in the rules' order.
        assert [i.criterion_key for i in services.items_of(session, direct.id)] == [
            "democracy",
            "recruitment",
            "records",
        ]
        created = session.scalars(select(AuditEvent).where(AuditEvent.action == "improvement_plan.create")).all()
        assert {e.object_id for e in created} == {str(one.id), str(direct.id)}
        again = services.create_plans_for_round(session, world["published_round"])
    assert again == []
    assert len(plans_by_branch(session, world)) == 2


def test_an_open_round_gets_no_plans(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="尚未定星公布"):
        services.create_plans_for_round(session, opened["round"])


def test_finalising_a_round_creates_the_plans_through_the_domain_event(
    session: Session, opened: dict[str, Any]
) -> None:
    for rating, level in ((opened["rating_one"], 3), (opened["rating_direct"], 1)):
        put_at(session, opened, rating, RatingStep.COMMITTEE, opinion=level, proposed=level)
        with tenant_context(opened["tenant"].id):
            decision.decide(session, opened["round"], rating, level, "", version=rating.version)
    with tenant_context(opened["tenant"].id):
        decision.finalise_round(
            session,
            opened["round"],
            meeting_date=dt.date(2026, 1, 6),
            participants="张主任、李委员",
            version=opened["round"].version,
        )
    plans = plans_by_branch(session, opened)
    assert set(plans) == {opened["one"].id, opened["direct"].id}  # never the retirees' branch
    assert plans[opened["one"].id].programme_label == "提升工程" and plans[opened["one"].id].year == 2026
    assert plans[opened["direct"].id].programme_label == "转化工程"
    with tenant_context(opened["tenant"].id):
        # nothing scored in this round: every criterion lost all its points, the biggest first
        # (ballot 12, then core_tasks and innovation 10 each in the rules' order)
        assert [i.criterion_key for i in services.items_of(session, plans[opened["one"].id].id)] == [
            "ballot",
            "core_tasks",
            "innovation",
        ]
        assert session.scalar(select(BranchRating.step).where(BranchRating.id == opened["rating_one"].id)) is (
            RatingStep.DECIDED
        )


# --- the branch's edits and publishing -------------------------------------------------------------------------


def test_publishing_needs_every_item_complete_then_fixes_the_content(
    session: Session, published: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    with tenant_context(world["tenant"].id):
        with pytest.raises(ConflictError, match="还有 3 项整改事项未填写"):
            services.publish(session, plan, version=plan.version)
        assert plan.state is PlanState.DRAFT
        extra = services.add_item(
            session,
            plan,
            {"problem": "学习制度执行不严", "measure": "每月集中学习", "owner": "钱支委", "deadline": "2025-05-31"},
        )
        with pytest.raises(ServiceError, match="请填写存在的问题") as refused:
            services.add_item(session, plan, {"problem": "  "})
        assert refused.value.field == "problem"
        with pytest.raises(ServiceError, match="完成时限应为日期") as refused:
            services.update_item(session, plan, extra, {"problem": "x", "deadline": "明天"}, version=extra.version)
        assert refused.value.field == "deadline"
    fill_items(session, world, plan)
    with tenant_context(world["tenant"].id):
        services.publish(session, plan, version=plan.version)
        assert plan.state is PlanState.PUBLISHED and plan.published_at is not None
        # after publishing only the progress moves
        item = services.items_of(session, plan.id)[0]
        services.update_item(session, plan, item, {"problem": "改过的问题", "status": "done"}, version=item.version)
        assert item.status is ItemStatus.DONE and item.problem != "改过的问题" and item.completed_on is not None
        with pytest.raises(ConflictError, match="计划已公布"):
            services.add_item(session, plan, {"problem": "新问题"})
        with pytest.raises(ConflictError, match="计划已公布"):
            services.remove_item(session, plan, item)
        with pytest.raises(ConflictError, match="当前为“已公布”"):
            services.publish(session, plan, version=plan.version)
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("improvement%"))))
    assert {"improvement_plan.publish", "improvement_item.add", "improvement_item.update"} <= actions


def test_removing_an_item_of_a_draft(session: Session, published: dict[str, Any]) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    with tenant_context(world["tenant"].id):
        first = services.items_of(session, plan.id)[0]
        services.remove_item(session, plan, first)
        assert [i.criterion_key for i in services.items_of(session, plan.id)] == ["records", "recruitment"]


# --- the year's progress ------------------------------------------------------------------------------------------


def test_plans_of_year_counts_items_done_and_overdue_in_one_query(
    session: Session, published: dict[str, Any], engine: Any
) -> None:
    world = with_plans(session, published)
    fill_items(session, world, world["plan_one"], deadline=dt.date(2025, 6, 30))
    with tenant_context(world["tenant"].id):
        items = services.items_of(session, world["plan_one"].id)
        services.update_item(session, world["plan_one"], items[0], {"status": "done"}, version=items[0].version)
        services.update_item(session, world["plan_one"], items[1], {"status": "in_progress"}, version=items[1].version)
        session.flush()
        with count_queries(engine, only=("SELECT",)) as statements:
            progress = queries.plans_of_year(session, 2025, today=dt.date(2025, 7, 1))
        assert len(statements) == 1
        assert queries.plans_of_year(session, 2024, today=dt.date(2025, 7, 1)) == []
        before_deadline = {p.branch_id: p for p in queries.plans_of_year(session, 2025, today=dt.date(2025, 6, 30))}
    by_branch = {p.branch_id: p for p in progress}
    one = by_branch[world["one"].id]
    assert (one.items_total, one.items_done, one.items_overdue) == (3, 1, 2)
    assert one.branch_name == "预算科党支部" and one.state is PlanState.DRAFT and one.outcome is None
    direct = by_branch[world["direct"].id]
    assert (direct.items_total, direct.items_done, direct.items_overdue) == (3, 0, 0)  # no deadlines yet
    assert before_deadline[world["one"].id].items_overdue == 0
    assert [p.branch_name for p in progress] == sorted(p.branch_name for p in progress)


def test_plans_of_year_within_a_scope(session: Session, published: dict[str, Any]) -> None:
    from fivestar.orgs.models import Organisation

    world = with_plans(session, published)
    with tenant_context(world["tenant"].id):
        scoped = queries.plans_of_year(
            session, 2025, dt.date(2025, 1, 1), scope=Organisation.path.startswith(world["party"].path)
        )
    assert [p.branch_id for p in scoped] == [world["one"].id]


def test_a_plan_item_has_no_cross_tenant_twin(session: Session, published: dict[str, Any]) -> None:
    world = with_plans(session, published)
    with tenant_context(world["tenant"].id):
        assert session.scalar(select(PlanItem.tenant_id).limit(1)) == world["tenant"].id
        assert session.scalar(select(ImprovementPlan.tenant_id).limit(1)) == world["tenant"].id


def test_an_item_is_done_on_the_districts_date_not_utcs(session: Session, published: dict[str, Any]) -> None:
    """17:30 UTC on 1 March is 01:30 on 2 March in Beijing: the item was done on the 2nd, where the branch works."""
    from fivestar.timekeeping import clock

    world = with_plans(session, published)
    plan = world["plan_one"]
    assert world["tenant"].timezone == "Asia/Shanghai"
    with tenant_context(world["tenant"].id):
        item = services.items_of(session, plan.id)[0]
        with clock.frozen(dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.UTC)):
            services.update_item(session, plan, item, {"status": "done"}, version=item.version)
        assert item.completed_on == dt.date(2026, 3, 2)
