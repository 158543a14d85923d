"""The export sweep when things go wrong: retries with backoff, failing for good with one alert to the
administrators, "send again"; a failed report counts as an attempt, an expired report is made again,
a dead sweep's claim is given back; and sweeps racing on a committed database plan, ask for and send
each delivery exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.errors import ServiceError
from fivestar.exports import services
from fivestar.exports.models import ExportDelivery, ExportState
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.export_support import HMAC_KEY, LoopbackReceiver
from tests.integration.export_sweep_support import (
    CLOSED,
    T0,
    closed_member_round,
    deliveries,
    finish_job,
    https_target,
    make_target,
    outbox,
    race,
    ready,
    sweep,
    target_input,
)

# --- failures: backoff, giving up, one alert, send again ----------------------------------------------------


def test_failures_back_off_then_fail_and_alert_the_administrators_once(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    admin, second = ((a.id, a.display_name) for a in (district["admin"], district["second"]))
    receiver.status = 503
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    delivery, _path = ready(session, factory, xsettings, tenant, now)
    waits = []
    for attempt in range(1, 9):
        report = sweep(factory, xsettings, now)
        assert report.claimed == 1, (attempt, report)
        (row,) = deliveries(session, tenant)
        assert row.attempts == attempt and "HTTP 503" in (row.last_error or "")
        if attempt < 8:
            assert row.state is ExportState.PENDING and report.retried == 1
            assert sweep(factory, xsettings, row.next_attempt_at - dt.timedelta(seconds=1)).claimed == 0
            waits.append(row.next_attempt_at - now)
            now = row.next_attempt_at
    assert waits == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert row.state is ExportState.FAILED and report.failed == 1 and len(receiver.requests) == 8
    messages = outbox(session, tenant)
    assert sorted((m.channel.value, m.account_id or 0, m.recipient) for m in messages) == sorted(
        [
            ("inapp", *admin),
            ("inapp", *second),
            ("email", 0, "admin@example.gov.cn"),
        ]
    )
    assert all(m.dedupe_key.startswith(f"export-failed:{delivery.id}:0:") for m in messages)
    notice = next(m for m in messages if m.account_id == admin[0])
    assert "上报失败" in notice.subject and "HTTP 503" in notice.body_text and "重新发送" in notice.body_text
    assert notice.link == f"/t/{tenant.slug}/exports/"
    # later sweeps: nothing is sent and nobody is alerted again
    sweep(factory, xsettings, now + dt.timedelta(days=1))
    assert len(receiver.requests) == 8 and len(outbox(session, tenant)) == 3
    # the administrator fixes the receiver and sends again: it goes (the report file is still kept)
    receiver.status = 200
    with tenant_context(tenant.id), clock.frozen(now + dt.timedelta(days=1)):
        services.resend(session, row)
        session.flush()
        with pytest.raises(ServiceError, match="只有发送失败"):
            services.resend(session, row)
    report = sweep(factory, xsettings, now + dt.timedelta(days=1, minutes=1))
    assert (report.ready, report.sent) == (1, 1), report
    (row,) = deliveries(session, tenant)
    assert row.state is ExportState.SENT and row.attempts == 1 and row.resends == 1
    assert list(receiver.stored) == [f"fivestar-export-{delivery.id}"]


def test_a_failed_report_is_an_attempt_and_is_asked_for_again(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    make_target(session, xsettings, tenant)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    sweep(factory, xsettings, now)
    (delivery,) = deliveries(session, tenant)
    failed_job = delivery.report_job_id
    with tenant_context(tenant.id):
        session.execute(
            update(ReportJob)
            .where(ReportJob.id == failed_job)
            .values(state=JobState.FAILED, failure_reason="PDF 太长")
            .execution_options(synchronize_session=False)
        )
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=1))
    (row,) = deliveries(session, tenant)
    assert report.retried == 1 and row.attempts == 1 and row.report_job_id is None
    assert "PDF 太长" in (row.last_error or "") and row.state is ExportState.WAITING
    assert sweep(factory, xsettings, row.next_attempt_at - dt.timedelta(seconds=1)).requested == 0
    assert sweep(factory, xsettings, row.next_attempt_at).requested == 1
    (row,) = deliveries(session, tenant)
    assert row.report_job_id not in (None, failed_job)


def test_an_expired_report_is_made_again_before_sending(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    delivery, path = ready(session, factory, xsettings, tenant, now)
    old_job = delivery.report_job_id
    # ready to send, but the file is gone by the time the delivery is claimed
    with tenant_context(tenant.id):
        session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == delivery.id)
            .values(state=ExportState.PENDING, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    path.unlink()
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=1))
    (row,) = deliveries(session, tenant)
    assert receiver.requests == [] and report.claimed == 1 and report.failed == report.retried == 0
    assert row.state is ExportState.WAITING and row.attempts == 0 and row.report_job_id is None
    assert sweep(factory, xsettings, now + dt.timedelta(minutes=2)).requested == 1
    (row,) = deliveries(session, tenant)
    assert row.report_job_id not in (None, old_job)


def test_a_dead_sweeps_delivery_is_given_back_and_counted(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    delivery, _path = ready(session, factory, xsettings, tenant, now)
    with tenant_context(tenant.id):  # a sweep claimed it and died
        session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == delivery.id)
            .values(state=ExportState.SENDING, attempts=1, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
    assert sweep(factory, xsettings, now + dt.timedelta(minutes=5), stuck_after=dt.timedelta(minutes=10)).claimed == 0
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=11), stuck_after=dt.timedelta(minutes=10))
    assert report.reclaimed == 1 and report.sent == 1
    (row,) = deliveries(session, tenant)
    assert row.state is ExportState.SENT and row.attempts == 2 and len(receiver.requests) == 1


# --- concurrency on a committed database ------------------------------------------------------------------


@pytest.fixture
def committed(backend: str, fresh_database: Callable[[str], str]) -> Iterator[tuple[Callable[[], Session], Any]]:
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.enums import Gender, OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenants.services import create_tenant
    from tests.conftest import SAMPLE_RULES

    engine = make_engine(fresh_database(backend))
    maker = make_sessionmaker(engine)
    with maker() as session:
        tenant = create_tenant(
            session, slug="up-race", name="并发上报测试工委", rules_toml=SAMPLE_RULES.read_text("utf-8")
        )
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="并发测试党支部")
            for n in range(3):
                session.add(
                    Member(
                        tenant_id=tenant.id,
                        branch_id=branch.id,
                        member_no=f"R{n}",
                        name=f"党员{n}",
                        gender=Gender.MALE,
                        joined_on=dt.date(2010, 1, 1),
                    )
                )
        session.commit()
    yield maker, tenant
    engine.dispose()


def test_sweeps_racing_plan_ask_and_send_each_delivery_once(
    committed: tuple[Callable[[], Session], Any],
    xsettings: Any,
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    maker, tenant = committed
    receiver.delay = 0.05
    with maker() as session:
        for n in range(3):
            with tenant_context(tenant.id), clock.frozen(T0):
                services.create_target(
                    session,
                    xsettings,
                    tenant.timezone,
                    target_input(
                        name=f"接口{n}",
                        method="https",
                        destination=receiver.url,
                        secret=HMAC_KEY,
                        report_format="xlsx" if n < 2 else "pdf",
                    ),
                )
        closed_member_round(session, tenant)
        session.commit()
    at = CLOSED + dt.timedelta(minutes=1)
    planned = race(3, lambda: sweep(maker, xsettings, at))
    assert sum(report.planned for report in planned) == 3
    assert sum(report.requested for report in planned) == 3
    with maker() as session, tenant_context(tenant.id):
        rows = list(session.scalars(select(ExportDelivery)))
        jobs = list(session.scalars(select(ReportJob)))
        assert len(rows) == 3 and all(row.report_job_id is not None for row in rows)
        assert sorted(job.format.value for job in jobs) == ["pdf", "xlsx"]  # one job per report, shared
        for job in jobs:
            finish_job(session, xsettings, tenant, job.id, f"report {job.id}".encode())
        session.commit()
    sent = race(3, lambda: sweep(maker, xsettings, at + dt.timedelta(minutes=1)))
    assert sum(report.sent for report in sent) == 3
    assert sum(report.claimed for report in sent) == 3
    assert len(receiver.requests) == 3 and all(request.signature_ok for request in receiver.requests)
    assert sorted(request.headers["x-fivestar-delivery"] for request in receiver.requests) == sorted(
        str(row.id) for row in rows
    )
    with maker() as session, tenant_context(tenant.id):
        assert {row.state for row in session.scalars(select(ExportDelivery))} == {ExportState.SENT}
