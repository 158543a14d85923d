"""One lease for every job queue: claim, heartbeat, finish, retry with backoff, reclaim (CONTRIBUTING "Workers").

Work that a request or the calendar wants done later is a row (an outbox message, a due item, a report
job, an export delivery). Workers run side by side and die without warning, and the broker delivers
messages at least once, so who does a row is decided by the database, never by a message:

* **claim** — `UPDATE … SET state=<leased>, lease_token=<new random>, attempts=attempts+1, <alive>=now
  WHERE id=:id AND state IN <ready> [AND <due> <= now]`. Exactly one of any number of concurrent
  claimers matches the row; the others get None and move on. The claim is committed before the work
  starts. Every claim counts as an attempt, so a job that kills its worker uses its attempts up.
* **held** — every later write of the worker (`heartbeat`, `finish`, `fail_attempt`, `give_back`) is
  conditional on `state=<leased> AND lease_token=<its token>`. Once the row has been reclaimed and
  claimed again, the old worker's writes match nothing: its late completion is refused, and it can
  tell (the functions return False / `Outcome.LOST`) so it can discard what it made.
* **heartbeat** — a long job moves its `<alive>` column while it works; a short one's claim time is its
  only sign of life.
* **reclaim** — a leased row whose `<alive>` is older than `stuck_after` belonged to a worker that died:
  it goes back to a ready state (its attempt already counted) or, once it has used `max_attempts`,
  to the failed state. Each row is taken back with its own conditional UPDATE on the token it had, so
  the caller's side effect for it (a file deleted, a message resent, an alert) happens once.
* **backoff** — a failed attempt waits `backoff(attempts)` before the row is due again (queues with a
  due column); after `max_attempts` the row ends failed and no longer stands in the way of others.

Clock jumps. Times are compared only with the caller's `now` (fivestar.timekeeping.clock). A forward
jump makes live leases look expired: they are reclaimed, and the token refuses their holders' late
results, so each job still completes once. A backward jump makes leases look younger: nothing is
reclaimed early, and a claim is a state change, so no row is ever held twice.

The module knows columns, not features: each queue describes its table once as a `JobQueue`. Functions
take the caller's session and never commit — the caller decides what shares the transaction (the
outbox writes an in-app notice in the transaction that marks its message sent; a due item's effect and
its `done` are one transaction) and commits. Tenant scoping is the caller's too (`cross_tenant` for the
sweeps that look across tenants, `tenant_context` for one row).
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, and_, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from fivestar.timekeeping import clock

__all__ = [
    "Backoff",
    "Expired",
    "JobQueue",
    "Lease",
    "Outcome",
    "claim",
    "claimable",
    "expired",
    "fail_attempt",
    "finish",
    "give_back",
    "heartbeat",
    "held",
    "lock_for_write",
    "new_token",
    "reclaim",
    "reclaim_expired",
]

TOKEN_BYTES = 16  # 32 hex characters: `lease_token` is String(32)


@dataclass(frozen=True)
class Backoff:
    """Wait before attempt n + 1 after n failed ones: base, 2 × base, 4 × base, … capped at `cap`."""

    base: dt.timedelta
    cap: dt.timedelta

    def after(self, attempts: int) -> dt.timedelta:
        exponent = max(attempts - 1, 0)
        if exponent >= 32:
            return self.cap
        return min(self.base * (1 << exponent), self.cap)


@dataclass(frozen=True)
class JobQueue:
    """How one table is a queue. Column names are attributes of `model`.

    `ready` are the states a worker may claim (the first is where a retried or reclaimed row goes),
    `leased` the state while a worker holds it, `failed` the end of a row that used its attempts up.
    `alive` is the column that says when the holder last showed it was alive (the claim time for
    short jobs, a heartbeat for long ones). `due`, if set, must be at or before `now` to claim; with a
    `backoff` a failed attempt moves it on (without one, a failed row is due again at the next sweep
    and `due` is never written). Every table has `id`, `state`, `attempts`, `max_attempts` and
    `lease_token`.
    """

    name: str
    model: type[Any]
    ready: tuple[enum.Enum, ...]
    leased: enum.Enum
    failed: enum.Enum
    alive: str = "claimed_at"
    claimed_at: str | None = "claimed_at"  # stamped at the claim (None: no such column)
    due: str | None = None
    backoff: Backoff | None = None

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        return cast("InstrumentedAttribute[Any]", getattr(self.model, name))

    @property
    def retry_state(self) -> enum.Enum:
        return self.ready[0]


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one row: valid while the row is leased with this token."""

    queue: JobQueue
    id: int
    token: str
    attempts: int  # including this one
    max_attempts: int
    tenant_id: int | None
    claimed_at: dt.datetime

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts

    @property
    def tenant(self) -> int:
        """The row's tenant, for `tenant_context` (a queue of a tenant-owned table)."""
        if self.tenant_id is None:
            raise TypeError(f"{self.queue.name} rows have no tenant")
        return self.tenant_id


@dataclass(frozen=True)
class Expired:
    """A leased row whose holder stopped showing signs of life (from `expired`)."""

    id: int
    token: str | None  # None: claimed before leases had tokens (kept working after the upgrade)
    attempts: int
    max_attempts: int
    tenant_id: int | None
    extra: Mapping[str, Any]
    cutoff: dt.datetime  # seen older than this; `reclaim` checks it still is

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts


class Outcome(enum.StrEnum):
    """What `fail_attempt` did."""

    RETRY = "retry"  # back to ready, due after the backoff
    FAILED = "failed"  # attempts used up (or the failure was final)
    LOST = "lost"  # the lease was no longer ours: nothing written


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def _rowcount(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else clock.now()


def _update(session: Session, queue: JobQueue, where: ColumnElement[bool], values: Mapping[str, Any]) -> int:
    return _rowcount(
        session.execute(update(queue.model).where(where).values(**values).execution_options(synchronize_session=False))
    )


def claimable(queue: JobQueue, now: dt.datetime | None = None) -> ColumnElement[bool]:
    """The rows a worker may claim at `now` — for the queue's own listing (with its joins and order)."""
    condition: ColumnElement[bool] = queue.column("state").in_(queue.ready)
    if queue.due is not None:
        condition = and_(condition, queue.column(queue.due) <= _now(now))
    return condition


def held(lease: Lease) -> ColumnElement[bool]:
    """The row while `lease` still holds it: every write of the holder is conditional on this."""
    queue = lease.queue
    return and_(
        queue.column("id") == lease.id,
        queue.column("state") == queue.leased,
        queue.column("lease_token") == lease.token,
    )


def claim(
    session: Session,
    queue: JobQueue,
    job_id: int,
    now: dt.datetime | None = None,
    *,
    values: Mapping[str, Any] | None = None,
) -> Lease | None:
    """Take row `job_id` for this worker, or None when it is not claimable (another worker was first,
    it is finished, or not due yet). `values` are written with the claim. The caller commits before
    doing the work."""
    moment = _now(now)
    token = new_token()
    written: dict[str, Any] = {
        "state": queue.leased,
        "lease_token": token,
        "attempts": queue.column("attempts") + 1,
        queue.alive: moment,
    }
    if queue.claimed_at is not None:
        written[queue.claimed_at] = moment
    written.update(values or {})
    won = _update(session, queue, and_(queue.column("id") == job_id, claimable(queue, moment)), written)
    if won != 1:
        return None
    tenant = getattr(queue.model, "tenant_id", None)
    columns = [queue.column("attempts"), queue.column("max_attempts")]
    if tenant is not None:
        columns.append(tenant)
    row = session.execute(
        select(*columns).where(queue.column("id") == job_id, queue.column("lease_token") == token)
    ).one()
    return Lease(
        queue=queue,
        id=job_id,
        token=token,
        attempts=int(row[0]),
        max_attempts=int(row[1]),
        tenant_id=int(row[2]) if tenant is not None else None,
        claimed_at=moment,
    )


def heartbeat(session: Session, lease: Lease, now: dt.datetime | None = None, **values: Any) -> bool:
    """Show the holder is alive (and write `values`, e.g. progress); False when the lease is lost."""
    return _update(session, lease.queue, held(lease), {lease.queue.alive: _now(now), **values}) == 1


def finish(session: Session, lease: Lease, state: enum.Enum, **values: Any) -> bool:
    """End the job in `state` (done, sent, failed by a refusal …) while the lease holds; False when the
    lease was lost — then nothing was written, and the caller rolls back whatever shared the transaction."""
    return _update(session, lease.queue, held(lease), {"state": state, "lease_token": None, **values}) == 1


def fail_attempt(
    session: Session,
    lease: Lease,
    now: dt.datetime | None = None,
    *,
    final: bool = False,
    retry: Mapping[str, Any] | None = None,
    failed: Mapping[str, Any] | None = None,
    **values: Any,
) -> Outcome:
    """This attempt failed: retry after the backoff, or — when `final` or the attempts are used up —
    end failed. `values` are written either way, `retry`/`failed` only in that case."""
    queue = lease.queue
    give_up = final or lease.last_attempt
    written: dict[str, Any] = {"lease_token": None, **values}
    if give_up:
        written.update(state=queue.failed, **(failed or {}))
    else:
        written.update(state=queue.retry_state, **(retry or {}))
        if queue.due is not None and queue.backoff is not None:
            written[queue.due] = _now(now) + queue.backoff.after(lease.attempts)
    if _update(session, queue, held(lease), written) != 1:
        return Outcome.LOST
    return Outcome.FAILED if give_up else Outcome.RETRY


def give_back(session: Session, lease: Lease, *, state: enum.Enum | None = None, **values: Any) -> bool:
    """Return the row unworked, for a reason that is no attempt (its attempt is not counted)."""
    written = {
        "state": state if state is not None else lease.queue.retry_state,
        "lease_token": None,
        "attempts": lease.attempts - 1,
        **values,
    }
    return _update(session, lease.queue, held(lease), written) == 1


def expired(
    session: Session,
    queue: JobQueue,
    now: dt.datetime | None,
    stuck_after: dt.timedelta,
    *,
    limit: int | None = None,
    extra: tuple[str, ...] = (),
) -> list[Expired]:
    """Leased rows whose holder showed no sign of life for `stuck_after` (oldest id first), with the
    `extra` columns the caller needs for its side effects."""
    cutoff = _now(now) - stuck_after
    tenant = getattr(queue.model, "tenant_id", None)
    columns = [
        queue.column("id"),
        queue.column("lease_token"),
        queue.column("attempts"),
        queue.column("max_attempts"),
        *(queue.column(name) for name in extra),
    ]
    if tenant is not None:
        columns.append(tenant)
    query = (
        select(*columns)
        .where(queue.column("state") == queue.leased, queue.column(queue.alive) < cutoff)
        .order_by(queue.column("id"))
    )
    if limit is not None:
        query = query.limit(limit)
    found: list[Expired] = []
    for row in session.execute(query):
        found.append(
            Expired(
                id=int(row[0]),
                token=row[1],
                attempts=int(row[2]),
                max_attempts=int(row[3]),
                tenant_id=int(row[-1]) if tenant is not None else None,
                extra=dict(zip(extra, row[4 : 4 + len(extra)], strict=True)),
                cutoff=cutoff,
            )
        )
    return found


def reclaim(
    session: Session,
    queue: JobQueue,
    row: Expired,
    now: dt.datetime | None = None,
    *,
    retry: Mapping[str, Any] | None = None,
    failed: Mapping[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Take back one expired lease (from `expired`): ready again, due at once — or failed once its
    attempts are used up (`row.exhausted`). Conditional on the token it had: False when its holder
    finished, showed a sign of life, or another reclaim was first, in the meantime."""
    token = queue.column("lease_token")
    where = and_(
        queue.column("id") == row.id,
        queue.column("state") == queue.leased,
        token.is_(None) if row.token is None else token == row.token,
        queue.column(queue.alive) < row.cutoff,  # a heartbeat since the listing: alive after all
    )
    written: dict[str, Any] = {"lease_token": None, **values}
    if row.exhausted:
        written.update(state=queue.failed, **(failed or {}))
    else:
        written.update(state=queue.retry_state, **(retry or {}))
        if queue.due is not None and queue.backoff is not None:
            written[queue.due] = _now(now)
    return _update(session, queue, where, written) == 1


def lock_for_write(session: Session, queue: JobQueue) -> None:
    """On SQLite, start the transaction as a writer before reading what it will then write.

    In WAL mode a reader whose snapshot another writer has moved since cannot become a writer and
    fails at once with "database is locked", whatever the busy timeout; a statement that could write,
    even one that matches nothing, takes the write lock first and waits for it. (Every other function
    here starts with its write.) PostgreSQL needs nothing: its row locks and the conditional UPDATEs do.
    """
    if session.get_bind().dialect.name == "sqlite":
        table = queue.model.__table__.name
        session.execute(text(f"UPDATE {table} SET id = id WHERE 0"))  # noqa: S608 - a mapped table's name


def reclaim_expired(
    session: Session,
    queue: JobQueue,
    now: dt.datetime | None,
    stuck_after: dt.timedelta,
    *,
    limit: int | None = None,
    retry: Mapping[str, Any] | None = None,
    failed: Mapping[str, Any] | None = None,
    **values: Any,
) -> list[Expired]:
    """Take back every expired lease in one transaction (the caller's; it commits); returns the rows
    taken back — `row.exhausted` says which ended failed."""
    lock_for_write(session, queue)
    taken: list[Expired] = []
    for row in expired(session, queue, now, stuck_after, limit=limit):
        if reclaim(session, queue, row, now, retry=retry, failed=failed, **values):
            taken.append(row)
    return taken
