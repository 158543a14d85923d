"""Rounds that open by themselves: planned as rows, claimed once, opened once (CONTRIBUTING.md "Workers").

The sweep (`run_due`) runs here in the test process on the real database, with the platform clock
frozen at chosen instants; `tests/integration/test_workers.py` runs it in a real worker from beat's
tick. Two sweeps racing on a committed database open one round.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound
from fivestar.member_rounds.models import MemberRound
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.scheduling.runner import run_due
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.conftest import SAMPLE_RULES

UTC = dt.UTC
# 2026Q3 ends on 30 September; after the National Day holiday its round opens on Thursday
# 8 October 2026 at 09:00 Beijing time (01:00 UTC).
Q3_OPENS = dt.datetime(2026, 10, 8, 1, 0, tzinfo=UTC)
BRANCH = ("opens = { month = 1, day = 5 }\nauto_open = true\n"
          "self_report_due = { month = 1 }\ncommittee_feedback_due = { month = 3 }")


def auto_rules(*, member: bool = True, branch: str | None = BRANCH) -> str:
    text = SAMPLE_RULES.read_text(encoding="utf-8")
    if member:
        text = text.replace("[schedule.member]\n", "[schedule.member]\nauto_open = true\n")
    if branch is not None:
        text = re.sub(r"\[schedule\.branch\]\n.*?\n\n", f"[schedule.branch]\n{branch}\n\n", text, flags=re.S)
    return text


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    """Sessions on the test's connection: what the sweep commits is rolled back with the test."""
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def district(create_tenant: Any, create_org: Any, create_member: Any) -> Any:
    tenant = create_tenant(rules_toml=auto_rules())
    branch = create_org(tenant, kind="branch", name="自动开启测试党支部")
    for _ in range(3):
        create_member(tenant, branch)
    return tenant


def sweep(factory: Callable[[], Session], at: dt.datetime, **kwargs: Any) -> Any:
    with clock.frozen(at):
        return run_due(factory, now=at, **kwargs)


def items(session: Session, tenant: Any) -> dict[tuple[DueKind, str], DueItem]:
    session.expire_all()
    with tenant_context(tenant.id):
        return {(row.kind, row.key): row for row in session.scalars(select(DueItem))}


def member_rounds(session: Session, tenant: Any) -> list[str]:
    with tenant_context(tenant.id):
        return list(session.scalars(select(MemberRound.period_key)))


def test_a_member_round_opens_at_its_instant_and_only_once(
    session: Session, factory: Callable[[], Session], district: Any
) -> None:
    before = sweep(factory, Q3_OPENS - dt.timedelta(minutes=1))
    planned = items(session, district)
    assert planned[(DueKind.OPEN_MEMBER_ROUND, "2026Q4")].state is DueState.PENDING
    assert planned[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")].due_at == Q3_OPENS
    assert member_rounds(session, district) == []
    assert before.done == 0

    report = sweep(factory, Q3_OPENS)
    assert member_rounds(session, district) == ["2026Q3"]
    row = items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")]
    assert row.state is DueState.DONE and row.attempts == 1
    assert "2026Q3" in (row.outcome or "") and "3 名党员" in (row.outcome or "")
    assert report.done >= 1
    with tenant_context(district.id):
        opened = session.scalar(select(MemberRound).where(MemberRound.period_key == "2026Q3"))
        assert opened is not None and opened.opened_by == "系统（按日程自动）"
        assert opened.opened_at == Q3_OPENS

    # A second beat, a retry, a redelivered tick: nothing more opens, nothing is planned twice.
    for minutes in (0, 1, 60):
        sweep(factory, Q3_OPENS + dt.timedelta(minutes=minutes))
    assert member_rounds(session, district) == ["2026Q3"]
    assert len([key for key in items(session, district) if key[0] is DueKind.OPEN_MEMBER_ROUND]) == 2


def test_a_round_the_committee_opened_by_hand_is_left_alone(
    session: Session, factory: Callable[[], Session], district: Any
) -> None:
    from fivestar.member_rounds.opening import open_round

    sweep(factory, Q3_OPENS - dt.timedelta(hours=1))  # planned
    with clock.frozen(Q3_OPENS - dt.timedelta(minutes=30)), tenant_context(district.id):
        open_round(session, district, period_key="2026Q3")
        session.flush()
    sweep(factory, Q3_OPENS)
    row = items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")]
    assert row.state is DueState.DONE
    assert (row.outcome or "").startswith("无需执行")
    assert member_rounds(session, district) == ["2026Q3"]


def test_nothing_is_planned_for_rules_that_do_not_ask_or_a_suspended_district(
    session: Session, factory: Callable[[], Session], create_tenant: Any
) -> None:
    from fivestar.tenants.services import suspend_tenant

    manual = create_tenant(rules_toml=auto_rules(member=False, branch=None))
    suspended = create_tenant(rules_toml=auto_rules())
    suspend_tenant(session, suspended, "测试停用")
    session.flush()
    sweep(factory, Q3_OPENS)
    assert items(session, manual) == {}
    assert items(session, suspended) == {}
    assert member_rounds(session, suspended) == []


def test_rules_switched_to_manual_after_planning_skip_the_item(
    session: Session, factory: Callable[[], Session], district: Any
) -> None:
    from fivestar.tenants.services import add_rules_version

    sweep(factory, Q3_OPENS - dt.timedelta(hours=1))
    with tenant_context(district.id):
        add_rules_version(session, district, auto_rules(member=False), note="改为手动开启")
        session.flush()
    sweep(factory, Q3_OPENS)
    row = items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")]
    assert row.state is DueState.DONE and "手动" in (row.outcome or "")
    assert member_rounds(session, district) == []


def test_the_branch_round_opens_on_the_first_working_day_of_its_date(
    session: Session, factory: Callable[[], Session], district: Any
) -> None:
    # 5 January 2027 is a Tuesday: 09:00 Beijing time is 01:00 UTC.
    opens = dt.datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
    sweep(factory, opens - dt.timedelta(days=1))
    assert items(session, district)[(DueKind.OPEN_BRANCH_ROUND, "2026")].due_at == opens
    sweep(factory, opens)
    with tenant_context(district.id):
        years = list(session.scalars(select(BranchRound.year)))
    assert years == [2026]
    assert items(session, district)[(DueKind.OPEN_BRANCH_ROUND, "2026")].state is DueState.DONE


def test_a_refused_opening_fails_with_the_services_reason(
    session: Session, factory: Callable[[], Session], create_tenant: Any
) -> None:
    """Opening on 31 January with self-ratings due that same month: caught up on 2 February, the
    deadline has passed and the service refuses; the row says why, in Chinese."""
    late = create_tenant(rules_toml=auto_rules(member=False, branch=(
        "opens = { month = 1, day = 29 }\nauto_open = true\n"
        "self_report_due = { month = 1 }\ncommittee_feedback_due = { month = 3 }")))
    sweep(factory, dt.datetime(2027, 1, 28, 0, 0, tzinfo=UTC))  # planned while the platform runs
    report = sweep(factory, dt.datetime(2027, 2, 2, 1, 0, tzinfo=UTC))  # it was down until now
    row = items(session, late)[(DueKind.OPEN_BRANCH_ROUND, "2026")]
    assert row.state is DueState.FAILED
    assert "自评上报截止日" in (row.outcome or "")
    assert report.failed >= 1


def test_an_effect_that_crashes_is_retried_then_failed(
    session: Session, factory: Callable[[], Session], district: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fivestar.member_rounds.opening as opening

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("磁盘已满")

    monkeypatch.setattr(opening, "open_round", broken)
    states = []
    for minute in range(4):
        sweep(factory, Q3_OPENS + dt.timedelta(minutes=minute))
        row = items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")]
        states.append((row.state, row.attempts))
    assert states == [(DueState.PENDING, 1), (DueState.PENDING, 2), (DueState.FAILED, 3), (DueState.FAILED, 3)]
    assert "磁盘已满" in (row.outcome or "")
    assert member_rounds(session, district) == []


def test_a_dead_workers_item_is_given_back_and_fails_after_max_attempts(
    session: Session, factory: Callable[[], Session], district: Any
) -> None:
    sweep(factory, Q3_OPENS - dt.timedelta(hours=1))
    with tenant_context(district.id):
        # A worker claimed it and died (SIGKILL): the row stays `running`.
        session.execute(update(DueItem).where(DueItem.key == "2026Q3")
                        .values(state=DueState.RUNNING, claimed_at=Q3_OPENS, attempts=1))
        session.flush()
    sweep(factory, Q3_OPENS + dt.timedelta(minutes=5))  # not yet stuck: left to its worker
    assert items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")].state is DueState.RUNNING
    sweep(factory, Q3_OPENS + dt.timedelta(minutes=11))  # given back and run
    row = items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")]
    assert (row.state, row.attempts) == (DueState.DONE, 2)
    assert member_rounds(session, district) == ["2026Q3"]

    with tenant_context(district.id):
        session.execute(update(DueItem).where(DueItem.key == "2026Q4")
                        .values(state=DueState.RUNNING, claimed_at=Q3_OPENS, attempts=3))
        session.flush()
    sweep(factory, Q3_OPENS + dt.timedelta(minutes=30))
    killer = items(session, district)[(DueKind.OPEN_MEMBER_ROUND, "2026Q4")]
    assert killer.state is DueState.FAILED and "interrupted" in (killer.outcome or "")


# --- racing sweeps on a committed database -----------------------------------------------------------


@pytest.fixture
def committed(backend: str, fresh_database: Callable[[str], str]) -> Iterator[tuple[Callable[[], Session], int]]:
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.enums import Gender, OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenants.services import create_tenant

    engine = make_engine(fresh_database(backend))
    maker = make_sessionmaker(engine)
    with maker() as session:
        tenant = create_tenant(session, slug="auto-race", name="并发开启测试工委", rules_toml=auto_rules())
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="并发测试党支部")
            for n in range(5):
                session.add(Member(tenant_id=tenant.id, branch_id=branch.id, member_no=f"R{n}", name=f"党员{n}",
                                   gender=Gender.MALE, joined_on=dt.date(2010, 1, 1)))
        session.commit()
        tenant_id = tenant.id
    yield maker, tenant_id
    engine.dispose()


def test_racing_sweeps_open_one_round(committed: tuple[Callable[[], Session], int]) -> None:
    maker, tenant_id = committed
    start = threading.Barrier(4)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            start.wait(timeout=10)
            reports.append(sweep(maker, Q3_OPENS + dt.timedelta(seconds=5)))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with maker() as session, tenant_context(tenant_id):
        assert list(session.scalars(select(MemberRound.period_key))) == ["2026Q3"]
        rows = list(session.scalars(select(DueItem).where(DueItem.kind == DueKind.OPEN_MEMBER_ROUND)))
    assert sorted(row.key for row in rows) == ["2026Q3", "2026Q4"]  # planned once each
    q3 = next(row for row in rows if row.key == "2026Q3")
    assert (q3.state, q3.attempts) == (DueState.DONE, 1)  # claimed by exactly one sweep
    assert sum(report.done for report in reports) == 1
