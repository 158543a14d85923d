"""The exports sweep, sent by every tick (`fivestar.exports.sweep`): plan, ask for reports, send.

1. **Plan** (`planning.py`). A delivery row per (active target, finalised round) for `on_finalise` targets — rounds
   finalised at or after the target's `since` — in one INSERT … SELECT … ON CONFLICT DO NOTHING per
   round type; for `on_date` targets whose `next_run_at` has come, the target's next instant is
   moved on with a conditional UPDATE (the claim) and a delivery of the latest round finalised by
   then is added, in the same transaction. The unique key (tenant, target, round type, round) makes
   a second sweep, or two at once, add nothing.
2. **Reports.** A waiting delivery without a report asks the report workers for one
   (`reports.jobs.services.request_report`, as a read-only system principal); a done report moves
   the delivery to `pending`; a failed report counts as a failed attempt (and is asked for again
   after the backoff); an expired one is asked for again.
3. **Send** (`sending.py`). Each due delivery is claimed through the one lease (fivestar.kernel.lease:
   `pending` → `sending`, an attempt counted, a fresh lease token) committed before anything leaves the
   server, so two workers never send the same one; then `transports.send`; then `sent`, only while the
   lease holds. A failure waits the backoff (the outbox's: 1, 2, 4 … minutes, at most an hour) and after
   `max_attempts` the delivery is `failed` and every active tenant administrator gets an in-app notice
   and an e-mail through the outbox — once (`alerts.py`: the transition is a conditional UPDATE, and the
   messages' dedupe keys name the delivery and its resend count). A worker that died while sending is
   found by `claimed_at` and its delivery taken back (counted as an attempt).

Every transaction here starts with a write (or only reads), which also keeps SQLite's WAL mode from
refusing a read-then-write upgrade when sweeps run side by side. Listing, claiming and the planning
INSERT look across tenants (`cross_tenant`, with the tenant joined explicitly); everything else —
the report request, the alert — runs as the delivery's tenant.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds.models import BranchRound
from fivestar.config import Settings
from fivestar.enums import TenantStatus
from fivestar.errors import NotFoundError, ServiceError
from fivestar.exports.alerts import alert_failed
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget
from fivestar.exports.planning import plan_on_date, plan_on_finalise
from fivestar.exports.queue import ERROR_MAX, EXPORT_ACTOR, RETRY_BACKOFF, ExportSweepReport
from fivestar.exports.queue import SWEEP_REASON as _REASON
from fivestar.exports.queue import rowcount as _rowcount
from fivestar.exports.sending import reclaim_stuck, send_due
from fivestar.i18n import _
from fivestar.kernel import task_names
from fivestar.member_rounds.models import MemberRound
from fivestar.reports.jobs import content, services
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

#: Sending stops claiming new deliveries after this long; the next tick goes on (the task's hard
#: time limit is 15 minutes, and a send may take its transport's timeout).
BUDGET = dt.timedelta(minutes=5)


def run_exports(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    limit: int = 50,
    stuck_after: dt.timedelta | None = None,
    report_queue: str = task_names.REPORTS_QUEUE,
    budget: dt.timedelta = BUDGET,
) -> ExportSweepReport:
    """One sweep over every tenant; `now` is for tests (defaults to the platform clock)."""
    report = ExportSweepReport()
    moment = now or clock.now()
    stuck = stuck_after if stuck_after is not None else dt.timedelta(seconds=settings.claim_timeout_seconds)
    report.planned += plan_on_finalise(session_factory, moment)
    report.planned += plan_on_date(session_factory, moment, limit)
    reclaim_stuck(session_factory, settings, moment, stuck, report)
    _advance_waiting(session_factory, settings, moment, limit, report_queue, report)
    send_due(session_factory, settings, moment, limit, budget, report)
    if report.planned or report.claimed or report.requested or report.ready or report.reclaimed:
        log.info("exports sweep: %s", report)
    return report


# --- 2. reports (planning is `planning.py`, sending `sending.py`) ------------------------------------


def _advance_waiting(session_factory: Callable[[], Session], settings: Settings, moment: dt.datetime,
                     limit: int, report_queue: str, report: ExportSweepReport) -> None:
    with session_factory() as session, cross_tenant(_REASON):
        waiting = session.execute(
            select(ExportDelivery.id, ExportDelivery.tenant_id, ExportDelivery.report_job_id,
                   ExportDelivery.attempts, ExportDelivery.max_attempts)
            .join(ExportTarget, and_(ExportTarget.tenant_id == ExportDelivery.tenant_id,
                                     ExportTarget.id == ExportDelivery.target_id))
            .join(Tenant, Tenant.id == ExportDelivery.tenant_id)
            .where(ExportDelivery.state == ExportState.WAITING, ExportDelivery.next_attempt_at <= moment,
                   ExportTarget.active.is_(True), Tenant.status == TenantStatus.ACTIVE)
            .order_by(ExportDelivery.next_attempt_at, ExportDelivery.id)
            .limit(limit)
        ).all()
        job_ids = [row.report_job_id for row in waiting if row.report_job_id is not None]
        jobs = {
            job.id: (job.state, job.failure_reason, job.tenant_id)
            for job in session.execute(
                select(ReportJob.id, ReportJob.state, ReportJob.failure_reason, ReportJob.tenant_id)
                .where(ReportJob.id.in_(job_ids))
            )
        } if job_ids else {}
    for row in waiting:
        job = jobs.get(row.report_job_id) if row.report_job_id is not None else None
        if job is not None and job[2] != row.tenant_id:
            job = None  # never another tenant's report (the id would have to be forged in the database)
        if job is None or job[0] is JobState.EXPIRED:
            _request(session_factory, settings, row, report_queue, report)
        elif job[0] is JobState.FAILED:
            reason = _("报表生成失败：%(reason)s", reason=job[1] or _("原因不明"))
            _report_failed(session_factory, settings, row, reason, report)
        elif job[0] is JobState.DONE:
            with session_factory() as session, tenant_context(row.tenant_id):
                moved = _rowcount(session.execute(
                    update(ExportDelivery)
                    .where(ExportDelivery.id == row.id, ExportDelivery.state == ExportState.WAITING,
                           ExportDelivery.report_job_id == row.report_job_id)
                    .values(state=ExportState.PENDING, next_attempt_at=moment)
                    .execution_options(synchronize_session=False)
                ))
                session.commit()
            report.ready += moved
        # queued or running: the report workers (and their sweep) see to it


def _request(session_factory: Callable[[], Session], settings: Settings, row: Any, report_queue: str,
             report: ExportSweepReport) -> None:
    """Ask for the delivery's report as a read-only system principal, and link it — one
    transaction that starts by taking the row (a conditional UPDATE on the job it had), so two
    sweeps never both ask; the report's message leaves only after the commit."""
    had = (ExportDelivery.report_job_id.is_(None) if row.report_job_id is None
           else ExportDelivery.report_job_id == row.report_job_id)
    with session_factory() as session, tenant_context(row.tenant_id), audit.acting_as(EXPORT_ACTOR):
        won = _rowcount(session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == row.id, ExportDelivery.state == ExportState.WAITING, had)
            .values(report_job_id=None)
            .execution_options(synchronize_session=False)
        ))
        if not won:
            session.rollback()
            report.skipped += 1
            return
        delivery = session.scalar(select(ExportDelivery).where(ExportDelivery.id == row.id))
        target = session.scalar(select(ExportTarget).where(ExportTarget.id == delivery.target_id)) if delivery else None
        tenant = session.get(Tenant, row.tenant_id)
        if delivery is None or target is None or tenant is None:  # pragma: no cover - the UPDATE just matched
            session.rollback()
            return
        subject: MemberRound | BranchRound | None
        if delivery.round_type == "branch":
            subject = session.scalar(select(BranchRound).where(BranchRound.id == delivery.round_id))
        else:
            subject = session.scalar(select(MemberRound).where(MemberRound.id == delivery.round_id))
        try:
            if subject is None:
                raise NotFoundError(_("要上报的评定轮次已不存在"))
            requested = services.request_report(
                session,
                settings,
                tenant=tenant,
                principal=content.reader(tenant.id, EXPORT_ACTOR.name),
                kind=target.report_kind.value,
                fmt=target.report_format.value,
                subject=subject,
                queue=report_queue,
            )
        except ServiceError as refused:
            # Nothing a retry can change (the round is gone, the kind no longer fits it).
            session.rollback()
            _fail_now(session_factory, settings, row, refused.message, report)
            return
        session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == row.id)
            .values(report_job_id=requested.job.id)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    report.requested += 1


def _fail_now(session_factory: Callable[[], Session], settings: Settings, row: Any, reason: str,
              report: ExportSweepReport) -> None:
    with session_factory() as session, tenant_context(row.tenant_id):
        won = _rowcount(session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == row.id, ExportDelivery.state == ExportState.WAITING)
            .values(state=ExportState.FAILED, last_error=reason[:ERROR_MAX], claimed_at=None)
            .execution_options(synchronize_session=False)
        ))
        if won:
            report.alerted += alert_failed(session, settings, row.tenant_id, row.id, reason)
            report.failed += 1
        session.commit()


def _report_failed(session_factory: Callable[[], Session], settings: Settings, row: Any, reason: str,
                   report: ExportSweepReport) -> None:
    """The report could not be made: an attempt of the delivery; after the backoff it is asked for again."""
    attempts = row.attempts + 1
    exhausted = attempts >= row.max_attempts
    now = clock.now()
    values: dict[str, Any] = {"attempts": attempts, "report_job_id": None, "last_error": reason[:ERROR_MAX]}
    if exhausted:
        values["state"] = ExportState.FAILED
    else:
        values["next_attempt_at"] = now + RETRY_BACKOFF.after(attempts)
    with session_factory() as session, tenant_context(row.tenant_id):
        won = _rowcount(session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == row.id, ExportDelivery.state == ExportState.WAITING,
                   ExportDelivery.report_job_id == row.report_job_id, ExportDelivery.attempts == row.attempts)
            .values(**values)
            .execution_options(synchronize_session=False)
        ))
        if won and exhausted:
            report.alerted += alert_failed(session, settings, row.tenant_id, row.id, reason)
        session.commit()
    if won:
        if exhausted:
            report.failed += 1
        else:
            report.retried += 1
        report.errors.append(reason[:200])


__all__ = ["BUDGET", "EXPORT_ACTOR", "ExportSweepReport", "plan_on_date", "plan_on_finalise", "run_exports"]
