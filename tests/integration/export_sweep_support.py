"""Shared builders of the export sweep's tests (tests/integration/test_export_*.py): a member round
closed and a branch round finalised at a given instant, export targets made through the service, the
sweep run at a frozen instant, a report job finished as a report worker would, and the rows to read
back. Their fixtures (the district, the loopback HTTPS receiver, recorded broker messages) are in
tests/integration/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.exports import services
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget
from fivestar.exports.sweep import run_exports
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.outbox.models import OutboxMessage
from fivestar.reports.jobs import services as report_services
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.export_support import HMAC_KEY, LoopbackReceiver

UTC = dt.UTC
T0 = dt.datetime(2026, 4, 10, 2, 0, tzinfo=UTC)  # 2026Q1 has ended; targets are set up now
CLOSED = dt.datetime(2026, 5, 20, 8, 0, tzinfo=UTC)  # the round is finalised then
REPORT_QUEUE = "exports-test-reports"


def closed_member_round(session: Session, tenant: Any, period: str = "2026Q1", at: dt.datetime = CLOSED) -> Any:
    """A member round of `period`, opened and then closed at `at` (the closing service's own checks
    are another test's business)."""
    from fivestar.member_rounds.opening import open_round

    with tenant_context(tenant.id), clock.frozen(at - dt.timedelta(days=1)):
        open_round(session, tenant, period_key=period)
        session.flush()
        member_round = session.scalar(select(MemberRound).where(MemberRound.period_key == period))
        assert member_round is not None
        with seeding():
            member_round.state = RoundState.CLOSED
        member_round.closed_at = at
        session.flush()
    return member_round


def finalised_branch_round(session: Session, tenant: Any, year: int = 2025, at: dt.datetime = CLOSED) -> Any:
    from fivestar.branch_rounds.opening import open_branch_round

    with tenant_context(tenant.id), clock.frozen(dt.datetime(year + 1, 1, 5, 2, 0, tzinfo=UTC)):
        opened = open_branch_round(
            session, tenant, year=year, self_report_due=dt.date(year + 1, 1, 31), committee_due=dt.date(year + 1, 3, 31)
        )
        session.flush()
        branch_round = session.scalar(select(BranchRound).where(BranchRound.year == year))
        assert branch_round is not None and opened is not None
        with seeding():
            branch_round.state = BranchRoundState.FINALISED
        branch_round.finalised_at = at
        session.flush()
    return branch_round


def target_input(**fields: Any) -> services.TargetInput:
    values: dict[str, Any] = {
        "name": "报区委组织部",
        "report_kind": "member_results",
        "report_format": "xlsx",
        "method": "email",
        "destination": "zuzhibu@example.gov.cn",
        "trigger": "on_finalise",
    }
    values.update(fields)
    return services.TargetInput(**values)


def make_target(session: Session, settings: Any, tenant: Any, at: dt.datetime = T0, **fields: Any) -> ExportTarget:
    with tenant_context(tenant.id), clock.frozen(at):
        target = services.create_target(session, settings, tenant.timezone, target_input(**fields))
        session.flush()
    return target


def https_target(session: Session, settings: Any, tenant: Any, receiver: LoopbackReceiver, **fields: Any) -> Any:
    values = {"name": "报市委（接口）", "method": "https", "destination": receiver.url, "secret": HMAC_KEY, **fields}
    return make_target(session, settings, tenant, **values)


def sweep(factory: Callable[[], Session], settings: Any, at: dt.datetime, **kwargs: Any) -> Any:
    with clock.frozen(at):
        return run_exports(factory, settings, report_queue=REPORT_QUEUE, **kwargs)


def deliveries(session: Session, tenant: Any) -> list[ExportDelivery]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(ExportDelivery).order_by(ExportDelivery.id)))


def finish_job(
    session: Session, settings: Any, tenant: Any, job_id: int, data: bytes, at: dt.datetime = CLOSED
) -> Path:
    """What a report worker does at the end: the file under its key, and `done`."""
    key = secrets.token_hex(24)
    folder = report_services.tenant_folder(settings, tenant.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key
    path.write_bytes(data)
    with tenant_context(tenant.id):
        session.execute(
            update(ReportJob)
            .where(ReportJob.id == job_id)
            .values(
                state=JobState.DONE,
                progress=100,
                file_key=key,
                file_size=len(data),
                rows=3,
                filename="2026年第一季度党员星级评定结果.xlsx",
                finished_at=at,
                expires_at=at + dt.timedelta(days=7),
            )
            .execution_options(synchronize_session=False)
        )
        session.flush()
    return path


def ready(
    session: Session,
    factory: Callable[[], Session],
    settings: Any,
    tenant: Any,
    at: dt.datetime,
    data: bytes = b"PK\x03\x04 report bytes",
) -> tuple[ExportDelivery, Path]:
    """Plan and ask for the report (one sweep), then finish the report job."""
    sweep(factory, settings, at)
    (delivery,) = deliveries(session, tenant)
    assert delivery.state is ExportState.WAITING and delivery.report_job_id is not None
    return delivery, finish_job(session, settings, tenant, delivery.report_job_id, data)


def outbox(session: Session, tenant: Any) -> list[OutboxMessage]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def race(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in `count` threads released at once; their results (any exception fails the test)."""
    start = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=10)
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results
