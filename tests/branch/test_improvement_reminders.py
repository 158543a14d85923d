"""Plan items are reminded through the real calendar (scheduling) and outbox: the rules' lead days
before an item's deadline (7 and 1 by default, at the reminder hour, 09:00 Beijing), to the secretary
of the branch, once; an item done meanwhile is not reminded again; the work list shows what is due."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import Role
from fivestar.improvement import services, worklist
from fivestar.outbox.models import Channel
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.scheduling.views import describe_items
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.branch.improvement_support import fill_items, with_plans
from tests.integration.test_reminders import outbox, sweep

UTC = dt.UTC


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def plan_published(session: Session, published: dict[str, Any]) -> dict[str, Any]:
    """Branch `one`'s 2025 plan published on 1 May 2025, its three items due on 30 June 2025."""
    world = with_plans(session, published)
    with clock.frozen(dt.datetime(2025, 5, 1, 2, 0, tzinfo=UTC)):
        fill_items(session, world, world["plan_one"], deadline=dt.date(2025, 6, 30))
        with tenant_context(world["tenant"].id):
            services.publish(session, world["plan_one"], version=world["plan_one"].version)
    session.commit()
    return world


def test_items_are_reminded_at_the_rules_lead_days_through_the_outbox(
    session: Session, factory: Callable[[], Session], plan_published: dict[str, Any]
) -> None:
    world = plan_published
    with tenant_context(world["tenant"].id):
        tenant, rid, secretary_id = world["tenant"], world["published_round"].id, world["secretary"].id
    sweep(factory, dt.datetime(2025, 6, 1, 2, 0, tzinfo=UTC))
    with tenant_context(tenant.id):
        rows = {r.key: r.due_at for r in session.scalars(select(DueItem).where(DueItem.kind == DueKind.REMINDER))}
        assert rows == {
            f"p{rid}:item:20250630:7": dt.datetime(2025, 6, 23, 1, 0, tzinfo=UTC),
            f"p{rid}:item:20250630:1": dt.datetime(2025, 6, 29, 1, 0, tzinfo=UTC),
        }
        items = list(session.scalars(select(DueItem).order_by(DueItem.due_at)))
        assert list(describe_items(session, items).values()) == [
            "2025 年整改提升计划 · 整改提升计划事项 · 6月30日到期 · 提前 7 天",
            "2025 年整改提升计划 · 整改提升计划事项 · 6月30日到期 · 提前 1 天",
        ]
    sweep(factory, dt.datetime(2025, 6, 23, 1, 0, tzinfo=UTC))
    messages = outbox(session, tenant)
    assert [m.channel for m in messages] == [Channel.INAPP]  # the secretary has no e-mail address
    assert messages[0].account_id == secretary_id  # the branch's secretary, not the other branch's
    assert "2025 年整改提升计划的事项将于 6月30日 到期（还有 7 天）" in messages[0].subject
    assert "预算科党支部（3 项）" in messages[0].body_text
    sweep(factory, dt.datetime(2025, 6, 23, 1, 30, tzinfo=UTC))  # a rerun adds nothing
    assert len(outbox(session, tenant)) == 1

    # Every item done before the 1-day reminder: nobody is reminded again.
    with tenant_context(tenant.id):
        for item in services.items_of(session, world["plan_one"].id):
            services.update_item(session, world["plan_one"], item, {"status": "done"}, version=item.version)
    session.commit()
    sweep(factory, dt.datetime(2025, 6, 29, 1, 0, tzinfo=UTC))
    assert len(outbox(session, tenant)) == 1
    with tenant_context(tenant.id):
        last = session.scalar(select(DueItem).where(DueItem.key == f"p{rid}:item:20250630:1"))
    assert last is not None and last.state is DueState.DONE and "已无人需要提醒" in (last.outcome or "")


def _principal(world: dict[str, Any], role: Role, org: Any = None, account: str = "secretary") -> Principal:
    with tenant_context(world["tenant"].id):
        return _made(world, role, org, account)


def _made(world: dict[str, Any], role: Role, org: Any, account: str) -> Principal:
    return Principal(
        session_token="t",
        display_name=str(role),
        tenant_id=world["tenant"].id,
        account_id=world[account].id,
        grants=(Grant(role, org.id if org is not None else None, org.path if org is not None else None),),
    )


def test_the_work_list_of_a_secretary_and_of_the_committee(
    session: Session, plan_published: dict[str, Any], engine: Any
) -> None:
    from tests.support import count_queries

    world = plan_published
    secretary = _principal(world, Role.BRANCH_SECRETARY, world["one"])
    other = _principal(world, Role.BRANCH_SECRETARY, world["direct"], "direct_secretary")
    committee = _principal(world, Role.COMMITTEE_MEMBER, None, "committee")
    member = _principal(world, Role.MEMBER, None, "member")
    with tenant_context(world["tenant"].id):
        early = worklist.pending(session, secretary, dt.datetime(2025, 5, 2, 2, 0, tzinfo=UTC))
        assert early == []  # the items are due in June, beyond the 7 lead days
        with count_queries(engine, only=("SELECT",)) as statements:
            due = worklist.pending(session, secretary, dt.datetime(2025, 7, 2, 2, 0, tzinfo=UTC))
        assert len(statements) <= 4
        [item] = due
        assert (item.kind, item.title, item.count, item.params) == (
            "plan.item_due",
            "整改事项已逾期",
            3,
            {"plan_id": world["plan_one"].id},
        )
        assert item.due == dt.datetime(2025, 6, 30, 15, 59, tzinfo=UTC) and item.is_overdue(
            dt.datetime(2025, 7, 2, tzinfo=UTC)
        )
        [draft] = worklist.pending(session, other, dt.datetime(2025, 7, 2, 2, 0, tzinfo=UTC))
        assert draft.kind == "plan.publish" and draft.params == {"plan_id": world["plan_direct"].id}
        assert worklist.pending(session, committee, dt.datetime(2025, 11, 30, 2, 0, tzinfo=UTC)) == []
        [review] = worklist.pending(session, committee, dt.datetime(2025, 12, 1, 2, 0, tzinfo=UTC))
        assert (review.kind, review.count, review.params) == ("plan.acceptance_due", 1, {"year": 2025})
        assert review.due == dt.datetime(2025, 12, 31, 15, 59, tzinfo=UTC)
        assert worklist.pending(session, member, dt.datetime(2025, 12, 1, 2, 0, tzinfo=UTC)) == []
