"""Planning export deliveries (step 1 of the exports sweep): a row per (target, round) to send.

`on_finalise` targets get a delivery per round finalised at or after the target's `since`, in one
INSERT … SELECT … ON CONFLICT DO NOTHING per round type; `on_date` targets whose `next_run_at` has come
have their next instant moved on with a conditional UPDATE (the claim) and a delivery of the latest
round finalised by then added, in the same transaction. The unique key (tenant, target, round type,
round) makes a second sweep, or two at once, add nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import String, exists, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.db import UTCDateTime
from fivestar.enums import TenantStatus
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget, ExportTrigger
from fivestar.exports.queue import MAX_ATTEMPTS
from fivestar.exports.queue import SWEEP_REASON as _REASON
from fivestar.exports.queue import rowcount as _rowcount
from fivestar.exports.services import next_on_date
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.reports.jobs.kinds import KINDS
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import Tenant

log = logging.getLogger(__name__)


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


_DELIVERY_COLUMNS = (
    "tenant_id",
    "target_id",
    "trigger",
    "round_type",
    "round_id",
    "round_key",
    "state",
    "attempts",
    "max_attempts",
    "next_attempt_at",
    "resends",
    "created_at",
)
_UNIQUE = ["tenant_id", "target_id", "round_type", "round_id"]


def _finalised(round_type: str) -> tuple[Any, Any, Any, Any]:
    """(round id, key as text, when finalised, finalised condition) of a round type."""
    if round_type == "branch":
        return (
            BranchRound.id,
            sql_cast(BranchRound.year, String(16)),
            BranchRound.finalised_at,
            BranchRound.state == BranchRoundState.FINALISED,
        )
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
            select(
                ExportTarget.id,
                ExportTarget.tenant_id,
                ExportTarget.next_run_at,
                ExportTarget.on_month,
                ExportTarget.on_day,
                ExportTarget.report_kind,
                Tenant.timezone,
            )
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
            won = _rowcount(
                session.execute(
                    update(ExportTarget)
                    .where(
                        ExportTarget.id == row.id,
                        ExportTarget.next_run_at == row.next_run_at,
                        ExportTarget.active.is_(True),
                        ExportTarget.trigger == ExportTrigger.ON_DATE,
                    )
                    .values(next_run_at=following)
                    .execution_options(synchronize_session=False)
                )
            )
            if not won:
                session.rollback()  # another sweep took this instant, or the target changed
                continue
            round_type = KINDS[row.report_kind].round_type
            latest = _latest_finalised(session, round_type, row.next_run_at)
            if latest is None:
                log.info(
                    "export target %s of tenant %s: no round finalised by %s; nothing to send",
                    row.id,
                    row.tenant_id,
                    row.next_run_at.isoformat(),
                )
            else:
                round_id, round_key = latest
                values = {
                    "tenant_id": row.tenant_id,
                    "target_id": row.id,
                    "trigger": ExportTrigger.ON_DATE,
                    "round_type": round_type,
                    "round_id": round_id,
                    "round_key": round_key,
                    "state": ExportState.WAITING,
                    "attempts": 0,
                    "max_attempts": MAX_ATTEMPTS,
                    "next_attempt_at": moment,
                    "resends": 0,
                    "created_at": moment,
                }
                added += _rowcount(
                    session.execute(
                        _insert(session)(ExportDelivery)
                        .values(values)
                        .on_conflict_do_nothing(index_elements=_UNIQUE)
                        .execution_options(preserve_rowcount=True)
                    )
                )
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


__all__ = ["plan_on_date", "plan_on_finalise"]
