"""The export sweep's planning (fivestar.exports.sweep): one delivery per (target, round) however often
it runs and one report job per wanted report; switched-off targets and suspended districts plan
nothing, and a target switched off after planning holds its delivery until it is on again; another
district's rounds stay out of sight; the on-date trigger sends the latest finalised round at its
instant, also in a zone with daylight saving and after a rename.

The sweep runs here in the test process with the platform clock frozen; the report workers are not
started: a test finishes the report job itself (a file and `done`). Messages to the broker are
recorded instead of sent (`enqueued`), so no report message is left in a shared Redis.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.exports import services
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget, ExportTrigger
from fivestar.kernel import task_names
from fivestar.reports.jobs.models import ReportJob
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.timekeeping import clock
from tests.export_support import LoopbackReceiver
from tests.integration.export_sweep_support import (
    CLOSED,
    REPORT_QUEUE,
    T0,
    UTC,
    closed_member_round,
    deliveries,
    finalised_branch_round,
    https_target,
    make_target,
    ready,
    sweep,
    target_input,
)

# --- planning: one delivery per target and round, never two ------------------------------------------------


def test_a_finalised_round_makes_one_delivery_per_target_and_never_two(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    before = closed_member_round(session, tenant, "2025Q4", at=T0 - dt.timedelta(days=1))  # before the targets
    mail = make_target(session, xsettings, tenant)
    https = https_target(session, xsettings, tenant, receiver, report_format="pdf")
    branch = make_target(session, xsettings, tenant, name="支部星级报工委", report_kind="branch_levels")
    off = make_target(session, xsettings, tenant, name="已停用", active=False)
    member_round = closed_member_round(session, tenant, "2026Q1")
    branch_round = finalised_branch_round(session, tenant, 2025)
    first = sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1))
    second = sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=2))
    rows = deliveries(session, tenant)
    assert sorted((row.target_id, row.round_type, row.round_id) for row in rows) == sorted(
        [
            (mail.id, "member", member_round.id),
            (https.id, "member", member_round.id),
            (branch.id, "branch", branch_round.id),
        ]
    )
    assert ("member", before.id) not in {(row.round_type, row.round_id) for row in rows}  # finalised before
    assert off.id not in {row.target_id for row in rows}
    assert (first.planned, first.requested, second.planned, second.requested) == (3, 3, 0, 0)
    assert {row.round_key for row in rows} == {"2026Q1", "2025"}
    assert all(row.state is ExportState.WAITING and row.report_job_id is not None for row in rows)
    with tenant_context(tenant.id):
        jobs = {job.id: job for job in session.scalars(select(ReportJob))}
    assert {(jobs[row.report_job_id].kind.value, jobs[row.report_job_id].format.value) for row in rows} == {
        ("member_results", "xlsx"),
        ("member_results", "pdf"),
        ("branch_levels", "xlsx"),
    }
    assert all(jobs[row.report_job_id].requested_by == "系统（上报上级）" for row in rows)
    # the report messages went to the reports queue only after the sweep's commits, once per job
    assert sorted(args[1] for name, args, queue in enqueued if name == task_names.REPORTS_GENERATE) == sorted(jobs)
    assert {queue for _name, _args, queue in enqueued} == {REPORT_QUEUE}


def test_two_targets_wanting_the_same_report_share_one_job(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    make_target(session, xsettings, district["tenant"])
    make_target(session, xsettings, district["tenant"], name="抄送", destination="chaosong@example.gov.cn")
    closed_member_round(session, tenant)
    sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1))
    rows = deliveries(session, tenant)
    assert len(rows) == 2 and rows[0].report_job_id == rows[1].report_job_id is not None


def test_switching_a_target_on_again_does_not_send_the_past(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    target = make_target(session, xsettings, tenant, active=False)
    closed_member_round(session, tenant)
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1)).planned == 0
    with tenant_context(tenant.id), clock.frozen(CLOSED + dt.timedelta(days=1)):
        services.set_active(session, tenant.timezone, target, True, version=target.version)
        session.flush()
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(days=1, minutes=1)).planned == 0
    assert deliveries(session, tenant) == []


def test_a_suspended_district_plans_nothing(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    enqueued: list[Any],
) -> None:
    from fivestar.enums import TenantStatus

    tenant = district["tenant"]
    make_target(session, xsettings, tenant)
    closed_member_round(session, tenant)
    tenant.status = TenantStatus.SUSPENDED
    session.flush()
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1)).planned == 0


# --- on a date --------------------------------------------------------------------------------------------


def test_on_date_sends_the_latest_finalised_round_at_its_instant(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    closed_member_round(session, tenant, "2026Q3", at=dt.datetime(2026, 10, 30, 2, 0, tzinfo=UTC))
    q4 = closed_member_round(session, tenant, "2026Q4", at=dt.datetime(2027, 1, 25, 2, 0, tzinfo=UTC))
    target = https_target(
        session,
        xsettings,
        tenant,
        receiver,
        at=dt.datetime(2027, 1, 10, 2, 0, tzinfo=UTC),
        trigger="on_date",
        on_date="03-01",
    )
    instant = dt.datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert target.next_run_at == instant
    assert sweep(factory, xsettings, instant - dt.timedelta(seconds=1)).planned == 0
    report = sweep(factory, xsettings, instant)
    assert report.planned == 1 and report.requested == 1
    (row,) = deliveries(session, tenant)
    assert (row.round_id, row.round_key, row.trigger) == (q4.id, "2026Q4", ExportTrigger.ON_DATE)
    session.expire_all()
    with tenant_context(tenant.id):
        assert session.get(ExportTarget, target.id).next_run_at == dt.datetime(2028, 3, 1, 1, 0, tzinfo=UTC)
    # a round finalised after the instant waits for next year's date (or an on-finalise target)
    closed_member_round(session, tenant, "2027Q1", at=dt.datetime(2027, 4, 20, 2, 0, tzinfo=UTC))
    assert sweep(factory, xsettings, dt.datetime(2027, 6, 1, tzinfo=UTC)).planned == 0
    assert len(deliveries(session, tenant)) == 1


def test_on_date_in_a_zone_with_daylight_saving(xsettings: Any) -> None:
    after = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert services.next_on_date(7, 1, "Europe/Berlin", after) == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert services.next_on_date(1, 15, "Europe/Berlin", after) == dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    # the instant itself is not "after" it: the next one is a year later
    instant = dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    assert services.next_on_date(1, 15, "Europe/Berlin", instant) == dt.datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


# --- another district, a target switched off after planning, an on-date target renamed -----------------


def test_deliveries_of_another_tenant_stay_out_of_sight(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    two_tenants: dict[str, Any],
    enqueued: list[Any],
) -> None:
    a, b = two_tenants["a"]["tenant"], two_tenants["b"]["tenant"]
    make_target(session, xsettings, a)
    closed_member_round(session, b)
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1)).planned == 0  # B's round is not A's
    closed_member_round(session, a)
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=2)).planned == 1
    assert deliveries(session, b) == [] and len(deliveries(session, a)) == 1
    with cross_tenant("test"):
        assert (
            session.scalar(select(func.count()).select_from(ExportDelivery).where(ExportDelivery.tenant_id == b.id))
            == 0
        )


def test_a_switched_off_targets_deliveries_wait_until_it_is_on_again(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    target = https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    ready(session, factory, xsettings, tenant, now)
    with tenant_context(tenant.id), clock.frozen(now):
        services.set_active(session, tenant.timezone, target, False, version=target.version)
        session.flush()
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=1))
    assert (report.ready, report.claimed) == (0, 0) and receiver.requests == []
    with tenant_context(tenant.id), clock.frozen(now + dt.timedelta(hours=1)):
        services.set_active(session, tenant.timezone, target, True, version=target.version)
        session.flush()
    report = sweep(factory, xsettings, now + dt.timedelta(hours=1, minutes=1))
    assert (report.ready, report.sent) == (1, 1) and len(receiver.requests) == 1


def test_renaming_an_on_date_target_after_its_instant_does_not_skip_the_year(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    closed_member_round(session, tenant)
    target = make_target(session, xsettings, tenant, at=CLOSED, trigger="on_date", on_date="06-01")
    instant = dt.datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    with tenant_context(tenant.id), clock.frozen(instant + dt.timedelta(seconds=30)):
        services.update_target(
            session,
            xsettings,
            tenant.timezone,
            target,
            target_input(name="改名了", trigger="on_date", on_date="06-01"),
            version=target.version,
        )
        session.flush()
        assert target.next_run_at == instant  # still due: the sweep has not come yet
    assert sweep(factory, xsettings, instant + dt.timedelta(minutes=1)).planned == 1
    with tenant_context(tenant.id), clock.frozen(instant + dt.timedelta(hours=1)):
        services.update_target(
            session,
            xsettings,
            tenant.timezone,
            target,
            target_input(name="改名了", trigger="on_date", on_date="07-01"),
            version=target.version,
        )
        session.flush()
        assert target.next_run_at == dt.datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
