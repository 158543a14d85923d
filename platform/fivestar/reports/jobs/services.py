"""Asking for a report, producing it in a worker, and the sweep that keeps the jobs honest.

**Asking** (`request_report`, in the web request's transaction): the job row and its audit event are
written; the message to the `reports` queue is sent only after the transaction commits
(`broker.enqueue_after_commit`), so a worker never looks for a row that does not exist yet. Asking
again for a report that is still queued or running gives that job back instead of a second one.

**Producing** (`run_job`, in the worker, as the job's tenant). Messages are delivered at least once
(`task_acks_late`), so running it twice must change nothing:

1. *claim* — through the one lease (fivestar.kernel.lease): `UPDATE … SET state='running',
   attempts=attempts+1, lease_token=<new>, file_key=<new> WHERE id=:id AND state='queued'`, committed at
   once. A second delivery of a job that is running, done, failed or expired matches no row and returns
   without touching anything.
2. *write* — the file goes to `reports/<tenant>/.<key>.part` in the data folder; every
   `progress_every` rows the percentage and a heartbeat are written in their own short transaction,
   conditional on the claim (same lease token). If the claim is gone — the sweep gave the job to another
   worker because this one looked dead — writing stops and the partial file is removed.
3. *finish* — the file is synced and renamed to its key, then `state='done'` (with size, rows and
   `expires_at`) is written, again only while the claim holds. A refusal the person can act on
   (the round is gone, a PDF too long) or an unexpected error ends in `failed` with the reason in
   Chinese; there is no automatic retry of errors (the same data would fail the same way) —
   asking again is one click.

**The sweep** (`sweep`, every tick, across tenants; effects per row, each its own transaction):

- a `running` job whose heartbeat is older than `stuck_after` lost its worker (killed, out of
  memory, machine gone): it goes back to `queued` with a new message, or, once it has been claimed
  `max_attempts` times, ends `failed` — a report that kills its worker does not kill one forever;
- a `queued` job whose message was sent more than `requeue_after` ago is sent again (a broker
  outage at request time delays a report but never loses it; a duplicate message finds it claimed);
- a finished job past `expires_at` (`FIVESTAR_REPORT_KEEP_DAYS` after it finished) has its file
  deleted and becomes `expired`.

Listing and claiming across tenants use `cross_tenant`; everything `run_job` reads runs as the job's
tenant (the task sets it), so the report's own queries stay scoped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import CursorResult, Result, select, text, update
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.principal import Principal
from fivestar.audit.chain import pinned_head
from fivestar.branch_rounds.models import BranchRound
from fivestar.broker import enqueue, enqueue_after_commit
from fivestar.config import Settings
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import lease, task_names
from fivestar.member_rounds.models import MemberRound
from fivestar.reports.jobs import content
from fivestar.reports.jobs.kinds import KINDS
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportJob, ReportKind
from fivestar.tenancy import cross_tenant, require_tenant_id
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)


#: Rows between two progress writes (each is one short transaction).
PROGRESS_EVERY = 2000
#: A running job whose worker has not written a heartbeat for this long is taken to be dead. The
#: heartbeat comes every PROGRESS_EVERY rows — seconds apart — and the Celery hard time limit
#: (15 minutes) ends any attempt long before a report could be merely slow for this long. The
#: sweep task passes `FIVESTAR_REPORT_STUCK_SECONDS` (Settings.report_stuck_seconds, default the same).
STUCK_AFTER = dt.timedelta(minutes=5)
#: A queued job whose message went out this long ago without a worker claiming it is sent again.
REQUEUE_AFTER = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 3
LIST_LIMIT = 50
FAILURE_MAX = 1000
_KEY = re.compile(r"^[0-9a-f]{48}$")
_REASON = "report jobs sweep"
ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class ReportGoneError(NotFoundError):
    """The report's file is no longer kept (expired, or never made): 410 for the download."""

    status = 410


# --- files -------------------------------------------------------------------------------------------


def reports_root(settings: Settings) -> Path:
    return settings.resolved_data_dir / "reports"


def tenant_folder(settings: Settings, tenant_id: int) -> Path:
    return reports_root(settings) / str(int(tenant_id))


def _paths(settings: Settings, tenant_id: int, key: str) -> tuple[Path, Path]:
    """(finished file, partial file) of a key; keys are made here, never taken from a request."""
    if not _KEY.match(key):
        raise ValueError("not a report file key")
    folder = tenant_folder(settings, tenant_id)
    return folder / key, folder / f".{key}.part"


def _discard(settings: Settings, tenant_id: int, key: str | None, *, finished: bool = True) -> None:
    if not key:
        return
    final, partial = _paths(settings, tenant_id, key)
    for path in (partial, final) if finished else (partial,):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove report file %s of tenant %s", path.name, tenant_id, exc_info=True)


def download_path(settings: Settings, job: ReportJob) -> Path:
    """The finished file of a done job; ReportGoneError when there is none (any more)."""
    if job.state is JobState.EXPIRED:
        raise ReportGoneError(_("此报表已超过保留期限并已删除，请重新生成。"))
    if job.state is not JobState.DONE or not job.file_key:
        raise NotFoundError(_("此报表尚未生成完成。"))
    path, _partial = _paths(settings, job.tenant_id, job.file_key)
    if not path.is_file():
        log.error("report file of job %s (tenant %s) is missing on disk", job.id, job.tenant_id)
        raise ReportGoneError(_("报表文件已不存在，请重新生成。"))
    return path


# --- asking ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requested:
    job: ReportJob
    created: bool  # False: the same report was already queued or running, and that job is returned


def request_report(
    session: Session,
    settings: Settings,
    *,
    tenant: Tenant,
    principal: Principal,
    kind: str | None,
    fmt: str | None,
    subject: MemberRound | BranchRound,
    queue: str = task_names.REPORTS_QUEUE,
) -> Requested:
    """Record that `principal` asks for a report about `subject` (a round of `tenant`); its message
    is sent once the caller commits. The caller has authorized the person for tenant-wide reading."""
    try:
        report_kind = ReportKind((kind or "").strip())
    except ValueError:
        raise ServiceError(_("请选择要生成的报表"), field="kind") from None
    try:
        report_format = ReportFormat((fmt or "").strip())
    except ValueError:
        raise ServiceError(_("请选择文件格式（Excel 或 PDF）"), field="format") from None
    spec = KINDS[report_kind]
    round_type = "branch" if isinstance(subject, BranchRound) else "member"
    if spec.round_type != round_type:
        raise ServiceError(_("这种报表不适用于此评定轮次"), field="kind")
    if report_format not in spec.formats:
        raise ServiceError(_("这种报表没有该文件格式"), field="format")
    parameters: dict[str, Any] = {"round_id": subject.id}
    pending = session.scalars(
        select(ReportJob)
        .where(ReportJob.kind == report_kind, ReportJob.format == report_format, ReportJob.state.in_(ACTIVE_STATES))
        .order_by(ReportJob.id.desc())
    )
    for job in pending:
        if job.parameters == parameters:
            return Requested(job, created=False)
    now = clock.now()
    job = ReportJob(
        tenant_id=tenant.id,
        kind=report_kind,
        format=report_format,
        parameters=parameters,
        title=content.title_for(report_kind, subject)[:200],
        state=JobState.QUEUED,
        progress=0,
        attempts=0,
        max_attempts=MAX_ATTEMPTS,
        requested_by_id=principal.account_id,
        requested_by=(principal.display_name or principal.username or "")[:120],
        requested_at=now,
        queued_at=now,
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        "report.request",
        job,
        after=audit.snapshot(job, ["kind", "format", "parameters", "title", "requested_by"]),
    )
    enqueue_after_commit(session, settings, task_names.REPORTS_GENERATE, tenant.id, job.id, queue=queue)
    return Requested(job, created=True)


# --- reading ---------------------------------------------------------------------------------------------


def recent_jobs(session: Session, limit: int = LIST_LIMIT) -> list[ReportJob]:
    """The tenant's latest jobs, newest first (one query)."""
    return list(session.scalars(select(ReportJob).order_by(ReportJob.requested_at.desc(), ReportJob.id.desc())
                                .limit(limit)))


def load_job(session: Session, job_id: int) -> ReportJob:
    job = session.scalar(select(ReportJob).where(ReportJob.id == job_id))
    if job is None:
        raise NotFoundError(_("报表不存在"))
    return job


# --- producing -------------------------------------------------------------------------------------------


def _rowcount(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


class _ClaimLostError(Exception):
    """The job is no longer this attempt's (the sweep gave it to another worker)."""


#: Report jobs as a queue of the one lease (fivestar.kernel.lease): claimed from `queued`, held in
#: `running` with a heartbeat while the file grows. Errors are not retried (the same data would fail
#: the same way); only a job whose worker died goes back to the queue.
REPORT_QUEUE = lease.JobQueue(
    name="report_jobs",
    model=ReportJob,
    ready=(JobState.QUEUED,),
    leased=JobState.RUNNING,
    failed=JobState.FAILED,
    alive="heartbeat_at",
    claimed_at="started_at",
)


@dataclass(frozen=True)
class _Claim:
    lease: lease.Lease
    key: str  # the file's random name, new at each claim

    @property
    def job_id(self) -> int:
        return self.lease.id


def _claim(session_factory: Callable[[], Session], job_id: int) -> _Claim | None:
    key = secrets.token_hex(24)
    with session_factory() as session:
        held = lease.claim(session, REPORT_QUEUE, job_id, clock.now(),
                           values={"file_key": key, "progress": 0, "failure_reason": None})
        session.commit()
    return _Claim(held, key) if held is not None else None


class _Progress:
    """Called by the writers with the rows written so far; every `every` rows it records the
    percentage and a heartbeat in a transaction of its own, and stops the work if the claim is gone."""

    def __init__(self, session_factory: Callable[[], Session], claim: _Claim, total: int, every: int) -> None:
        self.session_factory = session_factory
        self.claim = claim
        self.total = total
        self.every = max(1, every)
        self.last = 0

    def __call__(self, rows: int) -> None:
        if rows - self.last < self.every:
            return
        self.last = rows
        percent = min(99, rows * 100 // self.total) if self.total > 0 else 0
        with self.session_factory() as session:
            alive = lease.heartbeat(session, self.claim.lease, clock.now(), progress=percent)
            session.commit()
        if not alive:
            raise _ClaimLostError


def _finish(session_factory: Callable[[], Session], claim: _Claim, state: JobState, **values: Any) -> bool:
    with session_factory() as session:
        held = lease.finish(session, claim.lease, state, **values)
        session.commit()
    return held


def _fail(session_factory: Callable[[], Session], settings: Settings, claim: _Claim, reason: str) -> bool:
    now = clock.now()
    return _finish(session_factory, claim, JobState.FAILED, failure_reason=reason[:FAILURE_MAX], finished_at=now,
                   expires_at=now + dt.timedelta(days=settings.report_keep_days), file_key=None)


def _sqlite_statistics(session_factory: Callable[[], Session]) -> None:
    """Give SQLite's planner statistics, once, before the first large read (PostgreSQL keeps its own).

    SQLite gathers none by itself. Without them it prefers the single-column `tenant_id` index of a
    tenant-owned table to a composite one, so the results export read every score row of the tenant
    once per batch of members (100,000 members: over 100 s instead of about 30 s, bench/export.py).
    A full ANALYZE takes about a second at that size; it runs only while the database has no
    statistics at all (the index choice it fixes does not flip as the tables grow). An approximate
    one (`analysis_limit`) is not enough: it takes the tenant index for a selective one.
    """
    with session_factory() as session:
        if session.get_bind().dialect.name != "sqlite":
            return
        has_table = session.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first()
        if has_table is not None and session.execute(text("SELECT 1 FROM sqlite_stat1 LIMIT 1")).first():
            return
        session.execute(text("ANALYZE"))
        session.commit()


def run_job(
    session_factory: Callable[[], Session],
    settings: Settings,
    job_id: int,
    *,
    progress_every: int = PROGRESS_EVERY,
) -> str:
    """Produce job `job_id` of the current tenant if it is queued; returns what happened: `done`,
    `failed`, `skipped` (nothing to claim: a redelivery) or `lost` (the claim was taken over)."""
    tenant_id = require_tenant_id()
    claim = _claim(session_factory, job_id)
    if claim is None:
        log.info("report job %s of tenant %s: nothing to claim (already taken, done or gone)", job_id, tenant_id)
        return "skipped"
    final, partial = _paths(settings, tenant_id, claim.key)
    _sqlite_statistics(session_factory)
    session = session_factory()
    try:
        tenant = session.get(Tenant, tenant_id)
        job = session.get(ReportJob, job_id)
        if tenant is None or job is None:  # pragma: no cover - the claim just matched the row
            raise NotFoundError(_("报表不存在"))
        # The report prints the tenant's audit chain head; read once, so every page and the job
        # row (which exports send beside the file) carry the same one.
        with pinned_head(session, tenant_id) as head:
            made = content.plan(session, tenant, job)
            progress = _Progress(session_factory, claim, made.total, progress_every)
            partial.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "xb") as out:
                rows = made.write(out, progress)
                out.flush()
                os.fsync(out.fileno())
        session.rollback()  # end the streaming reads before the last write
        size = partial.stat().st_size
        os.replace(partial, final)
        now = clock.now()
        done = _finish(session_factory, claim, JobState.DONE, progress=100, rows=rows, file_size=size,
                       filename=made.filename[:200], audit_head=str(head), finished_at=now, heartbeat_at=now,
                       expires_at=now + dt.timedelta(days=settings.report_keep_days))
        if not done:
            _discard(settings, tenant_id, claim.key)
            log.warning("report job %s of tenant %s: claim lost at the end; file discarded", job_id, tenant_id)
            return "lost"
        log.info("report job %s of tenant %s done: %d rows, %d bytes", job_id, tenant_id, rows, size)
        return "done"
    except _ClaimLostError:
        session.rollback()
        _discard(settings, tenant_id, claim.key)
        log.warning("report job %s of tenant %s: claim lost while writing; stopped", job_id, tenant_id)
        return "lost"
    except ServiceError as refused:
        session.rollback()
        _discard(settings, tenant_id, claim.key)
        _fail(session_factory, settings, claim, refused.message)
        log.info("report job %s of tenant %s refused: %s", job_id, tenant_id, refused.message)
        return "failed"
    except SoftTimeLimitExceeded:
        session.rollback()
        _discard(settings, tenant_id, claim.key)
        _fail(session_factory, settings, claim, _("生成时间超过限制，已停止。请缩小范围或改为生成 Excel 后重试。"))
        log.error("report job %s of tenant %s hit the soft time limit", job_id, tenant_id)
        return "failed"
    except Exception as error:
        session.rollback()
        _discard(settings, tenant_id, claim.key)
        log.exception("report job %s of tenant %s failed", job_id, tenant_id)
        _fail(
            session_factory,
            settings,
            claim,
            _("生成报表时出错（%(error)s），请重新生成；如仍失败请联系管理员。", error=type(error).__name__),
        )
        return "failed"
    finally:
        session.close()


# --- the sweep -------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What one sweep did, for the task's log line and for tests."""

    requeued: int = 0  # running jobs whose worker died, given back
    failed: int = 0  # … or failed after max_attempts
    resent: int = 0  # queued jobs whose message was sent again
    expired: int = 0  # files deleted after the keeping period
    errors: list[str] = field(default_factory=list)


def _send(settings: Settings, tenant_id: int, job_id: int, queue: str, report: SweepReport) -> None:
    try:
        enqueue(settings, task_names.REPORTS_GENERATE, tenant_id, job_id, queue=queue)
    except Exception as error:
        log.warning("could not enqueue report job %s; the next sweep tries again", job_id, exc_info=True)
        report.errors.append(f"{type(error).__name__}: {error}"[:200])


def sweep(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    stuck_after: dt.timedelta = STUCK_AFTER,
    requeue_after: dt.timedelta = REQUEUE_AFTER,
    queue: str = task_names.REPORTS_QUEUE,
    limit: int = 200,
) -> SweepReport:
    """Give back or fail the jobs of dead workers, resend lost messages, expire old files."""
    report = SweepReport()
    moment = now or clock.now()
    _reclaim_stuck(session_factory, settings, moment, stuck_after, queue, limit, report)
    _resend_lost(session_factory, settings, moment, moment - requeue_after, queue, limit, report)
    _expire(session_factory, settings, moment, limit, report)
    if report.requeued or report.failed or report.resent or report.expired:
        log.info("report jobs sweep: %s", report)
    return report


def _reclaim_stuck(session_factory: Callable[[], Session], settings: Settings, moment: dt.datetime,
                   stuck_after: dt.timedelta, queue: str, limit: int, report: SweepReport) -> None:
    """Each job of a dead worker in its own transaction; its partial file and new message after that."""
    with session_factory() as session, cross_tenant(_REASON):
        stuck = lease.expired(session, REPORT_QUEUE, moment, stuck_after, limit=limit, extra=("file_key",))
    for row in stuck:
        now = clock.now()
        with session_factory() as session, cross_tenant(_REASON):
            won = lease.reclaim(
                session, REPORT_QUEUE, row, now,
                file_key=None,
                retry={"queued_at": now, "progress": 0, "started_at": None, "heartbeat_at": None},
                failed={
                    "failure_reason": _(
                        "生成过程中断了 %(n)d 次（工作进程退出或超时），已停止。请重新生成；如仍失败请联系管理员。",
                        n=row.attempts,
                    ),
                    "finished_at": now,
                    "expires_at": now + dt.timedelta(days=settings.report_keep_days),
                },
            )
            session.commit()
        if not won:
            continue  # it finished (or was taken) meanwhile
        _discard(settings, int(row.tenant_id or 0), row.extra["file_key"])
        if row.exhausted:
            report.failed += 1
            log.error("report job %s of tenant %s failed after %d interrupted attempts", row.id, row.tenant_id,
                      row.attempts)
        else:
            report.requeued += 1
            _send(settings, int(row.tenant_id or 0), row.id, queue, report)


def _resend_lost(session_factory: Callable[[], Session], settings: Settings, moment: dt.datetime,
                 cutoff: dt.datetime, queue: str, limit: int, report: SweepReport) -> None:
    with session_factory() as session, cross_tenant(_REASON):
        waiting = session.execute(
            select(ReportJob.id, ReportJob.tenant_id, ReportJob.queued_at)
            .where(ReportJob.state == JobState.QUEUED, ReportJob.queued_at < cutoff)
            .order_by(ReportJob.id)
            .limit(limit)
        ).all()
    for row in waiting:
        with session_factory() as session, cross_tenant(_REASON):
            won = _rowcount(session.execute(
                update(ReportJob)
                .where(ReportJob.id == row.id, ReportJob.state == JobState.QUEUED, ReportJob.queued_at == row.queued_at)
                .values(queued_at=moment)
                .execution_options(synchronize_session=False)
            ))
            session.commit()
        if won:
            report.resent += 1
            _send(settings, row.tenant_id, row.id, queue, report)


def _expire(session_factory: Callable[[], Session], settings: Settings, moment: dt.datetime, limit: int,
            report: SweepReport) -> None:
    with session_factory() as session, cross_tenant(_REASON):
        old = session.execute(
            select(ReportJob.id, ReportJob.tenant_id, ReportJob.state, ReportJob.file_key)
            .where(ReportJob.state.in_((JobState.DONE, JobState.FAILED)), ReportJob.expires_at <= moment)
            .order_by(ReportJob.id)
            .limit(limit)
        ).all()
    for row in old:
        # The file first: a crash in between leaves a done row without its file (the download says
        # so and the next sweep finishes the job), never a file nobody will delete.
        if row.file_key:
            final, partial = _paths(settings, row.tenant_id, row.file_key)
            try:
                final.unlink(missing_ok=True)
                partial.unlink(missing_ok=True)
            except OSError as error:
                log.warning("could not delete expired report file of job %s", row.id, exc_info=True)
                report.errors.append(f"{type(error).__name__}: {error}"[:200])
                continue
        with session_factory() as session, cross_tenant(_REASON):
            won = _rowcount(session.execute(
                update(ReportJob)
                .where(ReportJob.id == row.id, ReportJob.state == row.state)
                .values(state=JobState.EXPIRED, file_key=None)
                .execution_options(synchronize_session=False)
            ))
            session.commit()
        report.expired += won


__all__ = [
    "REPORT_QUEUE",
    "ReportGoneError",
    "Requested",
    "SweepReport",
    "download_path",
    "load_job",
    "recent_jobs",
    "reports_root",
    "request_report",
    "run_job",
    "sweep",
    "tenant_folder",
]
