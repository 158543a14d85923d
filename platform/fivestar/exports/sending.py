"""Sending export deliveries (step 3 of the exports sweep), under the one lease (fivestar.kernel.lease).

Each due delivery is claimed (`pending` → `sending`, an attempt counted, a fresh lease token) and the
claim committed before anything leaves the server, so two workers never send the same one; then
`transports.send`; then `sent`, only while the lease holds. A failure waits the backoff and after
`max_attempts` the delivery is `failed` and the administrators are alerted, in the transaction that
failed it (`alerts`). A worker that died while sending is found by its old `claimed_at` and its
delivery taken back (its attempt counted); its late "sent" no longer matches its token.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from fivestar.config import Settings
from fivestar.enums import TenantStatus
from fivestar.errors import NotFoundError
from fivestar.exports import transports
from fivestar.exports.alerts import alert_failed
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget
from fivestar.exports.queue import ERROR_MAX, EXPORT_QUEUE, ExportSweepReport
from fivestar.exports.queue import SWEEP_REASON as _REASON
from fivestar.i18n import _
from fivestar.kernel import lease
from fivestar.notify.encryption import decrypt
from fivestar.notify.errors import DecryptionError
from fivestar.outbox.delivery import SmtpSender
from fivestar.reports.jobs import content, services
from fivestar.reports.jobs.models import ReportJob
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

_Claim = lease.Lease


def _claim(session_factory: Callable[[], Session], delivery_id: int, moment: dt.datetime) -> _Claim | None:
    with session_factory() as session, cross_tenant(_REASON):
        held = lease.claim(session, EXPORT_QUEUE, delivery_id, moment)
        session.commit()
    return held


class _NotNowError(Exception):
    """The delivery cannot go now for a reason that is no attempt: give the claim back."""

    def __init__(self, *, report_gone: bool) -> None:
        super().__init__()
        self.report_gone = report_gone


def _prepare(
    session_factory: Callable[[], Session], settings: Settings, claim: _Claim
) -> tuple[transports.Parcel, transports.Destination]:
    """What to send and where, read as the delivery's tenant in a read-only transaction."""
    with session_factory() as session, tenant_context(claim.tenant):
        delivery = session.scalar(select(ExportDelivery).where(ExportDelivery.id == claim.id))
        target = session.scalar(select(ExportTarget).where(ExportTarget.id == delivery.target_id)) if delivery else None
        if delivery is None or target is None or not target.active:
            raise _NotNowError(report_gone=False)
        tenant = session.get(Tenant, claim.tenant)
        job = (
            session.scalar(select(ReportJob).where(ReportJob.id == delivery.report_job_id))
            if delivery.report_job_id is not None
            else None
        )
        if tenant is None or job is None:
            raise _NotNowError(report_gone=True)
        try:
            path = services.download_path(settings, job)
        except NotFoundError:
            raise _NotNowError(report_gone=True) from None
        try:
            destination = transports.Destination(
                method=target.method,
                address=target.destination,
                remote_dir=target.remote_dir,
                username=target.username,
                host_key=target.host_key,
                secret=decrypt(settings, target.secret_encrypted) if target.secret_encrypted else None,
                private_key=(decrypt(settings, target.private_key_encrypted) if target.private_key_encrypted else None),
            )
        except DecryptionError:
            raise transports.PermanentSendError(
                _("无法解密保存的密钥：服务器密钥（FIVESTAR_SECRET_KEY）已更换，请重新填写该上报设置的密钥")
            ) from None
        finished = job.finished_at or job.requested_at
        parcel = transports.Parcel(
            delivery_id=delivery.id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            tenant_name=tenant.name,
            title=job.title,
            report=f"{job.kind.value}.{job.format.value}",
            round_type=delivery.round_type,
            round_key=delivery.round_key,
            path=path,
            filename=job.filename or f"report-{job.id}.{job.format.value}",
            mimetype=content.mimetype(job.format),
            generated_at=_local(finished, tenant.timezone),
            audit_head=job.audit_head or "",
        )
        session.rollback()
    return parcel, destination


def _local(moment: dt.datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M") + f"（{timezone}）"


def send_due(
    session_factory: Callable[[], Session],
    settings: Settings,
    moment: dt.datetime,
    limit: int,
    budget: dt.timedelta,
    report: ExportSweepReport,
) -> None:
    with session_factory() as session, cross_tenant(_REASON):
        due = list(
            session.scalars(
                select(ExportDelivery.id)
                .join(
                    ExportTarget,
                    and_(
                        ExportTarget.tenant_id == ExportDelivery.tenant_id, ExportTarget.id == ExportDelivery.target_id
                    ),
                )
                .join(Tenant, Tenant.id == ExportDelivery.tenant_id)
                .where(
                    ExportDelivery.state == ExportState.PENDING,
                    ExportDelivery.next_attempt_at <= moment,
                    ExportTarget.active.is_(True),
                    Tenant.status == TenantStatus.ACTIVE,
                )
                .order_by(ExportDelivery.next_attempt_at, ExportDelivery.id)
                .limit(limit)
            )
        )
    if not due:
        return
    started = time.monotonic()
    smtp = SmtpSender(settings)
    try:
        for delivery_id in due:
            if time.monotonic() - started > budget.total_seconds():
                break  # the next tick goes on
            claim = _claim(session_factory, delivery_id, moment)
            if claim is None:
                report.skipped += 1
                continue
            report.claimed += 1
            try:
                parcel, destination = _prepare(session_factory, settings, claim)
                sent_to = transports.send(settings, parcel, destination, smtp=smtp)
            except _NotNowError as not_now:
                _give_back(session_factory, claim, report_gone=not_now.report_gone)
                continue
            except transports.PermanentSendError as exc:
                _record_failure(session_factory, settings, claim, str(exc), report, final=True)
                continue
            except transports.SendError as exc:
                _record_failure(session_factory, settings, claim, str(exc), report)
                continue
            except Exception as exc:
                log.exception("export delivery %s failed unexpectedly", claim.id)
                _record_failure(session_factory, settings, claim, f"{type(exc).__name__}: {exc}", report)
                continue
            _mark_sent(session_factory, claim, sent_to, report)
    finally:
        smtp.close()


def _give_back(session_factory: Callable[[], Session], claim: _Claim, *, report_gone: bool) -> None:
    """Not an attempt: the target was switched off meanwhile (it waits), or the report's file is
    no longer kept (it is asked for again)."""
    with session_factory() as session, tenant_context(claim.tenant):
        if report_gone:
            lease.give_back(
                session,
                claim,
                state=ExportState.WAITING,
                claimed_at=None,
                report_job_id=None,
                next_attempt_at=clock.now(),
            )
        else:
            lease.give_back(session, claim, claimed_at=None)
        session.commit()


def _mark_sent(session_factory: Callable[[], Session], claim: _Claim, sent_to: str, report: ExportSweepReport) -> None:
    with session_factory() as session, tenant_context(claim.tenant):
        won = lease.finish(
            session,
            claim,
            ExportState.SENT,
            sent_at=clock.now(),
            sent_to=sent_to[:600],
            claimed_at=None,
            last_error=None,
        )
        session.commit()
    if won:
        report.sent += 1
    else:  # reclaimed while sending: the file went, and the receiver recognises the repetition
        log.warning("export delivery %s was sent after its claim had been taken back", claim.id)


def _record_failure(
    session_factory: Callable[[], Session],
    settings: Settings,
    claim: _Claim,
    error: str,
    report: ExportSweepReport,
    *,
    final: bool = False,
) -> None:
    with session_factory() as session, tenant_context(claim.tenant):
        outcome = lease.fail_attempt(
            session, claim, clock.now(), final=final, claimed_at=None, last_error=error[:ERROR_MAX]
        )
        if outcome is lease.Outcome.FAILED:
            report.alerted += alert_failed(session, settings, claim.tenant, claim.id, error)
        session.commit()
    report.errors.append(error[:200])
    if outcome is lease.Outcome.FAILED:
        report.failed += 1
        log.warning(
            "export delivery %s of tenant %s failed after %d attempts: %s",
            claim.id,
            claim.tenant_id,
            claim.attempts,
            error,
        )
    elif outcome is lease.Outcome.RETRY:
        report.retried += 1


def reclaim_stuck(
    session_factory: Callable[[], Session],
    settings: Settings,
    moment: dt.datetime,
    stuck_after: dt.timedelta,
    report: ExportSweepReport,
) -> None:
    """Deliveries whose sweep died while sending: back to pending (the claim counted as an
    attempt), or failed — with the alert — once they have used their attempts."""
    with session_factory() as session, cross_tenant(_REASON):
        stuck = lease.expired(session, EXPORT_QUEUE, clock.now(), stuck_after)
    note = _("发送中断（工作进程未完成），将重试")
    for row in stuck:
        tenant_id = int(row.tenant_id or 0)
        with session_factory() as session, tenant_context(tenant_id):
            won = lease.reclaim(session, EXPORT_QUEUE, row, moment, claimed_at=None, last_error=note)
            if won and row.exhausted:
                report.alerted += alert_failed(session, settings, tenant_id, row.id, note)
            session.commit()
        if won:
            report.reclaimed += 1
            report.failed += int(row.exhausted)


__all__ = ["reclaim_stuck", "send_due"]
