"""The sweep: plan every tenant's rows, then claim and perform the ones that are due.

Each due row is *claimed* through the one lease (fivestar.kernel.lease: `pending` → `running`, an
attempt counted, a fresh lease token) committed before its effect, so two workers never both start it.
The effect and the row's `done` are one transaction, and `done` is written only while the lease holds:
a worker killed in between leaves nothing half done — the row stays `running`, a later sweep gives it
back after `stuck_after`, and after `max_attempts` claims it is `failed` (a task that kills its worker
does not kill the next one forever); a worker taken for dead that finishes late rolls its effect back.
The effect itself is unique in the database (one member round per tenant and period, one branch round
per tenant and year), so even a row run twice opens one round.

Tenant scoping: only the listing and claiming look across tenants (`cross_tenant`); each effect runs
as its own tenant, outside that opt-out, so the services' queries stay scoped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds.opening import open_branch_round
from fivestar.enums import TenantStatus
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel import lease
from fivestar.member_rounds import opening as member_round_opening
from fivestar.reminders.sending import ReminderSkipped, send_reminder
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.scheduling.planner import plan_tenant, rules_for, take_write_lock
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

STUCK_AFTER = dt.timedelta(minutes=10)
#: Who did it, in the round's "opened by" and in the audit trail.
SCHEDULE_ACTOR = audit.Actor("system", None, "系统（按日程自动）")
_REASON = "scheduled items sweep"


@dataclass
class SweepReport:
    """What one sweep did, for the task's log line and for tests."""

    planned: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    reclaimed: int = 0
    skipped: int = 0  # claimed by another worker first
    lost: int = 0  # taken back from this worker while it worked (it looked dead): nothing of it kept
    outcomes: list[str] = field(default_factory=list)


#: Due items as a queue of the one lease (fivestar.kernel.lease): claimed from `pending` once `due_at`
#: has come, held in `running`. No backoff: a failed item is due again at the next sweep, which
#: tries rows never tried before first (`_due_ids`).
DUE_QUEUE = lease.JobQueue(
    name="due_items",
    model=DueItem,
    ready=(DueState.PENDING,),
    leased=DueState.RUNNING,
    failed=DueState.FAILED,
    due="due_at",
)


class _SkippedError(Exception):
    """The rules no longer ask for this item: finish it without an effect."""


def run_due(
    session_factory: Callable[[], Session],
    *,
    now: dt.datetime | None = None,
    limit: int = 50,
    stuck_after: dt.timedelta = STUCK_AFTER,
    base_url: str = "http://127.0.0.1:5000",
) -> SweepReport:
    """Plan every active tenant, then perform up to `limit` due items. `now` is for tests."""
    report = SweepReport()
    moment = now or clock.now()
    report.planned = plan_all(session_factory, moment)
    report.reclaimed = _reclaim_stuck(session_factory, moment, stuck_after)
    for item_id in _due_ids(session_factory, moment, limit):
        claimed = _claim(session_factory, item_id, moment)
        if claimed is None:
            report.skipped += 1
            continue
        report.claimed += 1
        _perform(session_factory, claimed, moment, report, base_url)
    if report.claimed or report.planned or report.reclaimed:
        log.info("scheduled items sweep: %s", report)
    return report


def plan_all(session_factory: Callable[[], Session], moment: dt.datetime) -> int:
    with session_factory() as session:
        with cross_tenant(_REASON):
            tenants = list(session.scalars(select(Tenant).where(Tenant.status == TenantStatus.ACTIVE)))
        added = 0
        for tenant in tenants:
            try:
                added += plan_tenant(session, tenant, moment)
                session.commit()
            except Exception:
                session.rollback()
                log.exception("planning the due items of tenant %s failed", tenant.slug)
        return added


def _reclaim_stuck(session_factory: Callable[[], Session], moment: dt.datetime, stuck_after: dt.timedelta) -> int:
    note = "执行中断（工作进程未完成），已多次重试仍失败 / interrupted too often, gave up"
    with session_factory() as session, cross_tenant(_REASON):
        taken = lease.reclaim_expired(
            session, DUE_QUEUE, moment, stuck_after, retry={"claimed_at": None},
            failed={"finished_at": moment, "outcome": note},
        )
        session.commit()
    exhausted = sum(row.exhausted for row in taken)
    if exhausted:
        log.error("%d scheduled item(s) failed after killing their worker too often", exhausted)
    return len(taken)


def _due_ids(session_factory: Callable[[], Session], moment: dt.datetime, limit: int) -> list[int]:
    """The due rows, those never tried first: a row given back after killing its worker would
    otherwise be claimed first by every sweep and kill it again before the rows behind it ran."""
    with session_factory() as session, cross_tenant(_REASON):
        return list(session.scalars(
            select(DueItem.id)
            .where(lease.claimable(DUE_QUEUE, moment))
            .order_by(DueItem.attempts, DueItem.due_at, DueItem.id)
            .limit(limit)
        ))


@dataclass(frozen=True)
class _Claimed:
    lease: lease.Lease
    tenant_id: int
    kind: DueKind
    key: str

    @property
    def id(self) -> int:
        return self.lease.id

    @property
    def attempts(self) -> int:
        return self.lease.attempts

    @property
    def max_attempts(self) -> int:
        return self.lease.max_attempts


def _claim(session_factory: Callable[[], Session], item_id: int, moment: dt.datetime) -> _Claimed | None:
    with session_factory() as session, cross_tenant(_REASON):
        held = lease.claim(session, DUE_QUEUE, item_id, moment)
        if held is None:
            session.rollback()
            return None
        row = session.execute(select(DueItem.tenant_id, DueItem.kind, DueItem.key).where(DueItem.id == item_id)).one()
        session.commit()
    return _Claimed(held, row.tenant_id, row.kind, row.key)


def _perform(session_factory: Callable[[], Session], item: _Claimed, moment: dt.datetime,
             report: SweepReport, base_url: str) -> None:
    session = session_factory()
    try:
        with tenant_context(item.tenant_id), audit.acting_as(SCHEDULE_ACTOR):
            take_write_lock(session)  # the effect reads, then writes (SQLite: see take_write_lock)
            try:
                outcome = _effect(session, item, base_url)
            except _SkippedError as skip:
                session.rollback()
                outcome = str(skip)
            except ConflictError as conflict:  # the effect is already there (opened by hand)
                session.rollback()
                outcome = f"无需执行：{conflict.message}"
            except ServiceError as refused:
                session.rollback()
                if not _finish(session, item, DueState.FAILED, moment, refused.message):
                    session.rollback()
                    report.lost += 1
                    return
                session.commit()
                report.failed += 1
                report.outcomes.append(refused.message)
                log.warning("scheduled %s %s of tenant %s refused: %s", item.kind, item.key, item.tenant_id,
                            refused.message)
                return
            except Exception as error:  # noqa: BLE001 - any failure is recorded on the row and retried
                session.rollback()
                _after_error(session, item, moment, error, report)
                return
            if not _finish(session, item, DueState.DONE, moment, outcome):
                # The item was taken back from this worker meanwhile (it looked dead): its effect goes
                # with the rollback, and the worker now holding the item does it.
                session.rollback()
                report.lost += 1
                log.warning("scheduled %s %s of tenant %s: lease lost; effect rolled back", item.kind, item.key,
                            item.tenant_id)
                return
            session.commit()
            report.done += 1
            report.outcomes.append(outcome)
    finally:
        session.close()


def _finish(session: Session, item: _Claimed, state: DueState, moment: dt.datetime, outcome: str) -> bool:
    return lease.finish(session, item.lease, state, finished_at=moment, outcome=outcome[:2000])


def _after_error(session: Session, item: _Claimed, moment: dt.datetime, error: Exception,
                 report: SweepReport) -> None:
    """An unexpected error: try again at the next sweep, until `max_attempts`."""
    text = f"{type(error).__name__}: {error}"[:2000]
    log.exception("scheduled %s %s of tenant %s failed (attempt %d of %d)", item.kind, item.key,
                  item.tenant_id, item.attempts, item.max_attempts, exc_info=error)
    outcome = lease.fail_attempt(session, item.lease, moment, claimed_at=None, outcome=text,
                                 failed={"finished_at": moment})
    session.commit()
    if outcome is lease.Outcome.FAILED:
        report.failed += 1
    elif outcome is lease.Outcome.RETRY:
        report.retried += 1
    else:
        report.lost += 1


def _effect(session: Session, item: _Claimed, base_url: str) -> str:
    """Perform the item as its tenant; return the outcome (Chinese, for the administrator)."""
    tenant = session.get(Tenant, item.tenant_id)
    if tenant is None or tenant.status is not TenantStatus.ACTIVE:
        raise _SkippedError("单位已停用，未执行")
    version = session.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
    if version is None:
        raise _SkippedError("单位没有评定规则，未执行")
    rules = rules_for(version)
    if item.kind is DueKind.OPEN_MEMBER_ROUND:
        if not rules.schedule.member.auto_open:
            raise _SkippedError("规则已改为手动开启党员评定，未执行")

        opened = member_round_opening.open_round(session, tenant, period_key=item.key)
        return f"已自动开启 {item.key} 期党员评定（{opened.members} 名党员）"
    if item.kind is DueKind.OPEN_BRANCH_ROUND:
        if not rules.schedule.branch.auto_open:
            raise _SkippedError("规则已改为手动开启支部评定，未执行")

        opened_branch = open_branch_round(session, tenant, year=int(item.key))
        return f"已自动开启 {item.key} 年度党支部星级评定（{opened_branch.branches} 个党支部）"
    if item.kind is DueKind.REMINDER:
        try:
            return send_reminder(session, tenant, item.key, base_url=base_url)
        except ReminderSkipped as skipped:
            raise _SkippedError(str(skipped)) from None
    raise _SkippedError(f"未知的计划任务类型 {item.kind}")
