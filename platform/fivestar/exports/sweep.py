"""The exports sweep, sent by every tick (`fivestar.exports.sweep`): plan, ask for reports, send.

1. **Plan.** A delivery row per (active target, finalised round) for `on_finalise` targets — rounds
   finalised at or after the target's `since` — in one INSERT … SELECT … ON CONFLICT DO NOTHING per
   round type; for `on_date` targets whose `next_run_at` has come, the target's next instant is
   moved on with a conditional UPDATE (the claim) and a delivery of the latest round finalised by
   then is added, in the same transaction. The unique key (tenant, target, round type, round) makes
   a second sweep, or two at once, add nothing.
2. **Reports.** A waiting delivery without a report asks the report workers for one
   (`reports.jobs.service.request_report`, as a read-only system principal); a done report moves
   the delivery to `pending`; a failed report counts as a failed attempt (and is asked for again
   after the backoff); an expired one is asked for again.
3. **Send.** Each due delivery is claimed (`pending` → `sending`, attempts + 1) with a conditional
   UPDATE committed before anything leaves the server, so two workers never send the same one; then
   `transports.send`; then `sent`, only while the claim holds. A failure waits `backoff(attempts)`
   (the outbox's: 1, 2, 4 … minutes, at most an hour) and after `max_attempts` the delivery is
   `failed` and every active tenant administrator gets an in-app notice and an e-mail through the
   outbox — once (the transition is a conditional UPDATE, and the messages' dedupe keys name the
   delivery and its resend count). A worker that died while sending is found by `claimed_at` and
   its delivery given back (counted as an attempt).

Every transaction here starts with a write (or only reads), which also keeps SQLite's WAL mode from
refusing a read-then-write upgrade when sweeps run side by side. Listing, claiming and the planning
INSERT look across tenants (`cross_tenant`, with the tenant joined explicitly); everything else —
the report request, the alert — runs as the delivery's tenant.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Result, String, and_, exists, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Account, RoleGrant
from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.config import Settings
from fivestar.db import UTCDateTime
from fivestar.enums import Role, TenantStatus
from fivestar.errors import NotFoundError, ServiceError
from fivestar.exports import transports
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget, ExportTrigger
from fivestar.exports.services import METHOD_LABELS, describe_destination, next_on_date, round_label
from fivestar.i18n import _
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.notify.encryption import decrypt
from fivestar.notify.errors import DecryptionError
from fivestar.outbox.delivery import SmtpSender, backoff
from fivestar.outbox.models import Channel
from fivestar.outbox.services import Outgoing, normalise_recipient, queue_many
from fivestar.reports.jobs import content, service
from fivestar.reports.jobs.kinds import KINDS, kind_label
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

#: The task name: the contract with `workers/exports.py` and the tick's fan-out.
SWEEP_TASK = "fivestar.exports.sweep"
#: Who asks for the reports and who is named in their audit events.
EXPORT_ACTOR = audit.Actor("system", None, "系统（上报上级）")
MAX_ATTEMPTS = 8
ERROR_MAX = 1000
#: Sending stops claiming new deliveries after this long; the next tick goes on (the task's hard
#: time limit is 15 minutes, and a send may take its transport's timeout).
BUDGET = dt.timedelta(minutes=5)
_REASON = "exports sweep"


@dataclass
class ExportSweepReport:
    """What one sweep did, for the task's log line and for tests."""

    planned: int = 0  # deliveries created
    requested: int = 0  # reports asked for
    ready: int = 0  # deliveries whose report is done
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0
    skipped: int = 0  # claimed by another sweep first
    alerted: int = 0  # messages handed to the outbox for the administrators (it skips repeated keys)
    errors: list[str] = field(default_factory=list)


def _rowcount(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def run_exports(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    limit: int = 50,
    stuck_after: dt.timedelta | None = None,
    report_queue: str = service.REPORTS_QUEUE,
    budget: dt.timedelta = BUDGET,
) -> ExportSweepReport:
    """One sweep over every tenant; `now` is for tests (defaults to the platform clock)."""
    report = ExportSweepReport()
    moment = now or clock.now()
    stuck = stuck_after if stuck_after is not None else dt.timedelta(seconds=settings.claim_timeout_seconds)
    report.planned += plan_on_finalise(session_factory, moment)
    report.planned += plan_on_date(session_factory, moment, limit)
    _reclaim_stuck(session_factory, settings, moment, stuck, report)
    _advance_waiting(session_factory, settings, moment, limit, report_queue, report)
    _send_due(session_factory, settings, moment, limit, budget, report)
    if report.planned or report.claimed or report.requested or report.ready or report.reclaimed:
        log.info("exports sweep: %s", report)
    return report


# --- 1. planning ---------------------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


_DELIVERY_COLUMNS = ("tenant_id", "target_id", "trigger", "round_type", "round_id", "round_key", "state",
                     "attempts", "max_attempts", "next_attempt_at", "resends", "created_at")
_UNIQUE = ["tenant_id", "target_id", "round_type", "round_id"]


def _finalised(round_type: str) -> tuple[Any, Any, Any, Any]:
    """(round id, key as text, when finalised, finalised condition) of a round type."""
    if round_type == "branch":
        return (BranchRound.id, sql_cast(BranchRound.year, String(16)), BranchRound.finalised_at,
                BranchRound.state == BranchRoundState.FINALISED)
    return MemberRound.id, MemberRound.period_key, MemberRound.closed_at, MemberRound.state == RoundState.CLOSED


def plan_on_finalise(session_factory: Callable[[], Session], moment: dt.datetime) -> int:
    """Deliveries for every (active on-finalise target, round finalised since the target's `since`)
    of every active tenant: set-based, one statement per round type. The tenant is joined explicitly
    (the statement is an INSERT, outside the ORM's tenant scoping), so a target only ever meets
    rounds of its own tenant — and the composite foreign key would refuse anything else."""
    added = 0
    for round_type in ("member", "branch"):
        kinds = [kind for kind, spec in KINDS.items() if spec.round_type == round_type]
        round_id, round_key, finalised_at, finalised = _finalised(round_type)
        round_table = round_id.class_
        already = exists().where(
            ExportDelivery.tenant_id == ExportTarget.tenant_id,
            ExportDelivery.target_id == ExportTarget.id,
            ExportDelivery.round_type == round_type,
            ExportDelivery.round_id == round_id,
        )
        source = (
            select(
                ExportTarget.tenant_id,
                ExportTarget.id,
                literal(ExportTrigger.ON_FINALISE.value, String(32)),
                literal(round_type, String(8)),
                round_id,
                round_key,
                literal(ExportState.WAITING.value, String(32)),
                literal(0),
                literal(MAX_ATTEMPTS),
                literal(moment, UTCDateTime()),
                literal(0),
                literal(moment, UTCDateTime()),
            )
            .join(Tenant, Tenant.id == ExportTarget.tenant_id)
            .join(round_table, round_table.tenant_id == ExportTarget.tenant_id)
            .where(
                Tenant.status == TenantStatus.ACTIVE,
                ExportTarget.active.is_(True),
                ExportTarget.trigger == ExportTrigger.ON_FINALISE,
                ExportTarget.report_kind.in_(kinds),
                finalised,
                finalised_at >= ExportTarget.since,
                ~already,
            )
        )
        with session_factory() as session, cross_tenant(_REASON):
            statement = (
                _insert(session)(ExportDelivery.__table__)
                .from_select(list(_DELIVERY_COLUMNS), source)
                .on_conflict_do_nothing(index_elements=_UNIQUE)
                .execution_options(preserve_rowcount=True)  # SQLAlchemy 2.1 counts INSERTs only when asked
            )
            added += _rowcount(session.execute(statement))
            session.commit()
    return added


def plan_on_date(session_factory: Callable[[], Session], moment: dt.datetime, limit: int) -> int:
    """For each on-date target whose instant has come: move its next instant on (the claim: a
    conditional UPDATE on the instant it had) and add a delivery of the latest round finalised by
    that instant — one transaction, so the date is never used up without its delivery."""
    with session_factory() as session, cross_tenant(_REASON):
        due = session.execute(
            select(ExportTarget.id, ExportTarget.tenant_id, ExportTarget.next_run_at, ExportTarget.on_month,
                   ExportTarget.on_day, ExportTarget.report_kind, Tenant.timezone)
            .join(Tenant, Tenant.id == ExportTarget.tenant_id)
            .where(
                Tenant.status == TenantStatus.ACTIVE,
                ExportTarget.active.is_(True),
                ExportTarget.trigger == ExportTrigger.ON_DATE,
                ExportTarget.next_run_at <= moment,
            )
            .order_by(ExportTarget.next_run_at, ExportTarget.id)
            .limit(limit)
        ).all()
    added = 0
    for row in due:
        if not row.on_month or not row.on_day:
            continue
        following = next_on_date(row.on_month, row.on_day, row.timezone, moment)
        with session_factory() as session, tenant_context(row.tenant_id):
            won = _rowcount(session.execute(
                update(ExportTarget)
                .where(ExportTarget.id == row.id, ExportTarget.next_run_at == row.next_run_at,
                       ExportTarget.active.is_(True), ExportTarget.trigger == ExportTrigger.ON_DATE)
                .values(next_run_at=following)
                .execution_options(synchronize_session=False)
            ))
            if not won:
                session.rollback()  # another sweep took this instant, or the target changed
                continue
            round_type = KINDS[row.report_kind].round_type
            latest = _latest_finalised(session, round_type, row.next_run_at)
            if latest is None:
                log.info("export target %s of tenant %s: no round finalised by %s; nothing to send",
                         row.id, row.tenant_id, row.next_run_at.isoformat())
            else:
                round_id, round_key = latest
                values = {"tenant_id": row.tenant_id, "target_id": row.id, "trigger": ExportTrigger.ON_DATE,
                          "round_type": round_type, "round_id": round_id, "round_key": round_key,
                          "state": ExportState.WAITING, "attempts": 0, "max_attempts": MAX_ATTEMPTS,
                          "next_attempt_at": moment, "resends": 0, "created_at": moment}
                added += _rowcount(session.execute(
                    _insert(session)(ExportDelivery).values(values).on_conflict_do_nothing(index_elements=_UNIQUE)
                    .execution_options(preserve_rowcount=True)
                ))
            session.commit()
    return added


def _latest_finalised(session: Session, round_type: str, by: dt.datetime) -> tuple[int, str] | None:
    """The current tenant's latest round of `round_type` finalised by `by`: the latest period (or
    year), not the one closed last — a late straggler does not replace the newest results."""
    if round_type == "branch":
        found = session.execute(
            select(BranchRound.id, BranchRound.year)
            .where(BranchRound.state == BranchRoundState.FINALISED, BranchRound.finalised_at <= by)
            .order_by(BranchRound.year.desc(), BranchRound.id.desc())
            .limit(1)
        ).first()
        return (found.id, str(found.year)) if found else None
    member = session.execute(
        select(MemberRound.id, MemberRound.period_key)
        .where(MemberRound.state == RoundState.CLOSED, MemberRound.closed_at <= by)
        .order_by(MemberRound.period_end.desc(), MemberRound.id.desc())
        .limit(1)
    ).first()
    return (member.id, member.period_key) if member else None


# --- 2. reports ----------------------------------------------------------------------------------------


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
            requested = service.request_report(
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
            report.alerted += _alert(session, settings, row.tenant_id, row.id, reason)
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
        values["next_attempt_at"] = now + backoff(attempts)
    with session_factory() as session, tenant_context(row.tenant_id):
        won = _rowcount(session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == row.id, ExportDelivery.state == ExportState.WAITING,
                   ExportDelivery.report_job_id == row.report_job_id, ExportDelivery.attempts == row.attempts)
            .values(**values)
            .execution_options(synchronize_session=False)
        ))
        if won and exhausted:
            report.alerted += _alert(session, settings, row.tenant_id, row.id, reason)
        session.commit()
    if won:
        if exhausted:
            report.failed += 1
        else:
            report.retried += 1
        report.errors.append(reason[:200])


# --- 3. sending ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    id: int
    tenant_id: int
    attempts: int  # including this one
    max_attempts: int
    claimed_at: dt.datetime


def _owned(claim: _Claim) -> Any:
    """Only the sweep holding the claim may settle the delivery (a reclaimed row is not ours)."""
    return and_(ExportDelivery.id == claim.id, ExportDelivery.state == ExportState.SENDING,
                ExportDelivery.attempts == claim.attempts, ExportDelivery.claimed_at == claim.claimed_at)


def _claim(session_factory: Callable[[], Session], delivery_id: int, moment: dt.datetime) -> _Claim | None:
    claimed_at = clock.now()
    with session_factory() as session, cross_tenant(_REASON):
        won = _rowcount(session.execute(
            update(ExportDelivery)
            .where(ExportDelivery.id == delivery_id, ExportDelivery.state == ExportState.PENDING,
                   ExportDelivery.next_attempt_at <= moment)
            .values(state=ExportState.SENDING, claimed_at=claimed_at, attempts=ExportDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        ))
        if not won:
            session.rollback()
            return None
        row = session.execute(
            select(ExportDelivery.tenant_id, ExportDelivery.attempts, ExportDelivery.max_attempts)
            .where(ExportDelivery.id == delivery_id)
        ).one()
        session.commit()
    return _Claim(delivery_id, row.tenant_id, row.attempts, row.max_attempts, claimed_at)


class _NotNowError(Exception):
    """The delivery cannot go now for a reason that is no attempt: give the claim back."""

    def __init__(self, *, report_gone: bool) -> None:
        super().__init__()
        self.report_gone = report_gone


def _prepare(session_factory: Callable[[], Session], settings: Settings,
             claim: _Claim) -> tuple[transports.Parcel, transports.Destination]:
    """What to send and where, read as the delivery's tenant in a read-only transaction."""
    with session_factory() as session, tenant_context(claim.tenant_id):
        delivery = session.scalar(select(ExportDelivery).where(ExportDelivery.id == claim.id))
        target = session.scalar(select(ExportTarget).where(ExportTarget.id == delivery.target_id)) if delivery else None
        if delivery is None or target is None or not target.active:
            raise _NotNowError(report_gone=False)
        tenant = session.get(Tenant, claim.tenant_id)
        job = (session.scalar(select(ReportJob).where(ReportJob.id == delivery.report_job_id))
               if delivery.report_job_id is not None else None)
        if tenant is None or job is None:
            raise _NotNowError(report_gone=True)
        try:
            path = service.download_path(settings, job)
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
                private_key=(decrypt(settings, target.private_key_encrypted)
                             if target.private_key_encrypted else None),
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


def _send_due(session_factory: Callable[[], Session], settings: Settings, moment: dt.datetime, limit: int,
              budget: dt.timedelta, report: ExportSweepReport) -> None:
    with session_factory() as session, cross_tenant(_REASON):
        due = list(session.scalars(
            select(ExportDelivery.id)
            .join(ExportTarget, and_(ExportTarget.tenant_id == ExportDelivery.tenant_id,
                                     ExportTarget.id == ExportDelivery.target_id))
            .join(Tenant, Tenant.id == ExportDelivery.tenant_id)
            .where(ExportDelivery.state == ExportState.PENDING, ExportDelivery.next_attempt_at <= moment,
                   ExportTarget.active.is_(True), Tenant.status == TenantStatus.ACTIVE)
            .order_by(ExportDelivery.next_attempt_at, ExportDelivery.id)
            .limit(limit)
        ))
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
    values: dict[str, Any] = {"state": ExportState.PENDING, "attempts": claim.attempts - 1, "claimed_at": None}
    if report_gone:
        values.update(state=ExportState.WAITING, report_job_id=None, next_attempt_at=clock.now())
    with session_factory() as session, tenant_context(claim.tenant_id):
        session.execute(update(ExportDelivery).where(_owned(claim)).values(**values)
                        .execution_options(synchronize_session=False))
        session.commit()


def _mark_sent(session_factory: Callable[[], Session], claim: _Claim, sent_to: str, report: ExportSweepReport) -> None:
    with session_factory() as session, tenant_context(claim.tenant_id):
        won = _rowcount(session.execute(
            update(ExportDelivery)
            .where(_owned(claim))
            .values(state=ExportState.SENT, sent_at=clock.now(), sent_to=sent_to[:600], claimed_at=None,
                    last_error=None)
            .execution_options(synchronize_session=False)
        ))
        session.commit()
    if won:
        report.sent += 1
    else:  # reclaimed while sending: the file went, and the receiver recognises the repetition
        log.warning("export delivery %s was sent after its claim had been taken back", claim.id)


def _record_failure(session_factory: Callable[[], Session], settings: Settings, claim: _Claim, error: str,
                    report: ExportSweepReport, *, final: bool = False) -> None:
    exhausted = final or claim.attempts >= claim.max_attempts
    values: dict[str, Any] = {"claimed_at": None, "last_error": error[:ERROR_MAX]}
    if exhausted:
        values["state"] = ExportState.FAILED
    else:
        values["state"] = ExportState.PENDING
        values["next_attempt_at"] = clock.now() + backoff(claim.attempts)
    with session_factory() as session, tenant_context(claim.tenant_id):
        won = _rowcount(session.execute(
            update(ExportDelivery).where(_owned(claim)).values(**values).execution_options(synchronize_session=False)
        ))
        if won and exhausted:
            report.alerted += _alert(session, settings, claim.tenant_id, claim.id, error)
        session.commit()
    report.errors.append(error[:200])
    if not won:
        return
    if exhausted:
        report.failed += 1
        log.warning("export delivery %s of tenant %s failed after %d attempts: %s", claim.id, claim.tenant_id,
                    claim.attempts, error)
    else:
        report.retried += 1


def _reclaim_stuck(session_factory: Callable[[], Session], settings: Settings, moment: dt.datetime,
                   stuck_after: dt.timedelta, report: ExportSweepReport) -> None:
    """Deliveries whose sweep died while sending: back to pending (the claim counted as an
    attempt), or failed — with the alert — once they have used their attempts."""
    cutoff = clock.now() - stuck_after
    with session_factory() as session, cross_tenant(_REASON):
        stuck = session.execute(
            select(ExportDelivery.id, ExportDelivery.tenant_id, ExportDelivery.attempts, ExportDelivery.max_attempts,
                   ExportDelivery.claimed_at)
            .where(ExportDelivery.state == ExportState.SENDING, ExportDelivery.claimed_at < cutoff)
            .order_by(ExportDelivery.id)
        ).all()
    note = _("发送中断（工作进程未完成），将重试")
    for row in stuck:
        claim = _Claim(row.id, row.tenant_id, row.attempts, row.max_attempts, row.claimed_at)
        exhausted = row.attempts >= row.max_attempts
        values: dict[str, Any] = {"claimed_at": None, "last_error": note,
                                  "state": ExportState.FAILED if exhausted else ExportState.PENDING}
        if not exhausted:
            values["next_attempt_at"] = moment
        with session_factory() as session, tenant_context(row.tenant_id):
            won = _rowcount(session.execute(
                update(ExportDelivery).where(_owned(claim)).values(**values)
                .execution_options(synchronize_session=False)
            ))
            if won and exhausted:
                report.alerted += _alert(session, settings, row.tenant_id, row.id, note)
            session.commit()
        if won:
            report.reclaimed += 1
            report.failed += int(exhausted)


# --- the alert -----------------------------------------------------------------------------------------


def _alert(session: Session, settings: Settings, tenant_id: int, delivery_id: int, error: str) -> int:
    """Tell every active tenant administrator, in the inbox and by e-mail (through the outbox), that
    a delivery failed for good. Runs in the transaction that marked it failed; the dedupe keys name
    the delivery and its resend count, so a repeated transition (which the conditional UPDATE
    already prevents) would still write nothing twice."""
    delivery = session.scalar(select(ExportDelivery).where(ExportDelivery.id == delivery_id))
    tenant = session.get(Tenant, tenant_id)
    if delivery is None or tenant is None:  # pragma: no cover - the caller just updated the row
        return 0
    target = session.scalar(select(ExportTarget).where(ExportTarget.id == delivery.target_id))
    if target is None:  # pragma: no cover - deleted together with its deliveries
        return 0
    admins = session.execute(
        select(Account.id, Account.display_name, Account.email)
        .join(RoleGrant, and_(RoleGrant.tenant_id == Account.tenant_id, RoleGrant.account_id == Account.id))
        .where(RoleGrant.role == Role.TENANT_ADMIN, Account.active.is_(True))
        .distinct()
        .order_by(Account.id)
    ).all()
    what = f"{round_label(delivery.round_type, delivery.round_key)} · {kind_label(target.report_kind)}"
    subject = _("【五星争创】上报失败：%(target)s", target=target.name)
    path = f"/t/{tenant.slug}/exports/"
    detail = _(
        "“%(what)s”未能上报到“%(target)s”（%(method)s：%(where)s），已尝试 %(attempts)d 次。最后一次的错误：%(error)s",
        what=what, target=target.name, method=str(METHOD_LABELS[target.method]),
        where=describe_destination(target),
        attempts=delivery.attempts, error=error,
    )
    advice = _("请到“上报上级”页面检查设置，修正后点“重新发送”。")
    key = f"export-failed:{delivery.id}:{delivery.resends}"
    messages: list[Outgoing] = []
    for admin in admins:
        body = f"{admin.display_name}，您好：\n\n{detail}\n\n{advice}\n\n{tenant.name}"
        messages.append(Outgoing(Channel.INAPP, admin.display_name, subject, body, f"{key}:a:{admin.id}",
                                 account_id=admin.id, link=path))
        if admin.email:
            try:
                address = normalise_recipient(admin.email)
            except ServiceError:
                continue
            link = settings.base_url.rstrip("/") + path
            messages.append(Outgoing(Channel.EMAIL, address, subject, f"{body}\n\n{link}\n", f"{key}:e:{admin.id}"))
    if not messages:
        log.warning("export delivery %s of tenant %s failed and the tenant has no active administrator",
                    delivery_id, tenant_id)
        return 0
    queue_many(session, tenant_id, messages)
    return len(messages)


__all__ = ["EXPORT_ACTOR", "SWEEP_TASK", "ExportSweepReport", "plan_on_date", "plan_on_finalise", "run_exports"]
