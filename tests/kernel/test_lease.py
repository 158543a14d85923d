"""The one lease (fivestar.kernel.lease), hammered on SQLite and PostgreSQL.

The four queues (outbox, due items, report jobs, export deliveries) have their own tests of what they
do; this module proves the primitive they share decides who does a job, whatever happens around it:

- many workers — threads, each with its own sessions and connections — claiming the same rows at once:
  every job is done exactly once;
- a killed worker: its lease expires and is taken back, and its late completion (or heartbeat, or
  failure) is refused because its lease token no longer matches;
- clock jumps (fivestar.timekeeping.clock's frozen and offset clocks): a forward jump takes live
  leases back and still nothing is done twice; a backward jump takes nothing back and claims nothing
  twice;
- a poisoned job: it always fails, its backoff grows, its attempts are bounded, it ends failed and
  stops standing in the way of the jobs behind it — also when it kills its worker every time.

The table is the test's own (`lease_test_jobs`, beside an `lease_test_effects` table that records
every effect, so a double is counted, not assumed away), in a fresh database of each backend.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, Integer, String, delete, func, insert, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from fivestar.db import UTCDateTime, make_engine, make_sessionmaker
from fivestar.exports.queue import EXPORT_QUEUE
from fivestar.kernel import lease
from fivestar.outbox.delivery import OUTBOX_QUEUE
from fivestar.reports.jobs.services import REPORT_QUEUE
from fivestar.scheduling.runner import DUE_QUEUE
from fivestar.timekeeping import clock

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
STUCK = dt.timedelta(minutes=10)


class State(enum.StrEnum):
    READY = "ready"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"


class _Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it from the class


class Job(_Base):
    __tablename__ = "lease_test_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=State.READY)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    next_attempt_at: Mapped[dt.datetime] = mapped_column()
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    lease_token: Mapped[str | None] = mapped_column(String(32))
    done_by: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(String(200))


class Effect(_Base):
    """One row per completed piece of work: the job's effect, written with its `done`."""

    __tablename__ = "lease_test_effects"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("lease_test_jobs.id"))
    worker: Mapped[str] = mapped_column(String(40))


BACKOFF = lease.Backoff(dt.timedelta(seconds=30), dt.timedelta(minutes=8))
QUEUE = lease.JobQueue(
    name="lease_test_jobs",
    model=Job,
    ready=(State.READY,),
    leased=State.LEASED,
    failed=State.FAILED,
    due="next_attempt_at",
    backoff=BACKOFF,
)

Maker = Callable[[], Session]


@pytest.fixture(scope="module")
def jobs_engine(backend: str, fresh_database: Callable[..., str]) -> Iterator[Engine]:
    engine = make_engine(fresh_database(backend, migrate=False), **({"pool_size": 12} if backend != "sqlite" else {}))
    _Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def maker(jobs_engine: Engine) -> Iterator[Maker]:
    factory = make_sessionmaker(jobs_engine)
    with factory() as session:
        session.execute(delete(Effect))
        session.execute(delete(Job))
        session.commit()
    yield factory


@pytest.fixture
def clock_offset() -> Iterator[list[dt.timedelta]]:
    """A process-wide clock offset the test moves (threads do not see a frozen clock: it is a context
    variable); the platform clock is given back afterwards."""
    offset = [dt.timedelta(0)]
    before = clock._offset_source
    clock.set_offset_source(lambda: offset[0])
    try:
        yield offset
    finally:
        clock.set_offset_source(before)


def add_jobs(maker: Maker, count: int, *, at: dt.datetime | None = None, max_attempts: int = 5) -> list[int]:
    due = at or clock.now()
    with maker() as session:
        session.execute(
            insert(Job),
            [
                {"state": State.READY, "attempts": 0, "max_attempts": max_attempts, "next_attempt_at": due}
                for _ in range(count)
            ],
        )
        session.commit()
        return list(session.scalars(select(Job.id).order_by(Job.id)))


def claim(maker: Maker, job_id: int, now: dt.datetime | None = None) -> lease.Lease | None:
    with maker() as session:
        held = lease.claim(session, QUEUE, job_id, now)
        session.commit()
    return held


def complete(maker: Maker, held: lease.Lease, worker: str) -> bool:
    """The effect and `done` in one transaction: kept only while the lease holds."""
    with maker() as session:
        session.add(Effect(job_id=held.id, worker=worker))
        if not lease.finish(session, held, State.DONE, done_by=worker, claimed_at=None):
            session.rollback()
            return False
        session.commit()
    return True


def reclaim(maker: Maker, now: dt.datetime | None = None, stuck_after: dt.timedelta = STUCK) -> list[lease.Expired]:
    with maker() as session:
        taken = lease.reclaim_expired(session, QUEUE, now, stuck_after, claimed_at=None)
        session.commit()
    return taken


def job(maker: Maker, job_id: int) -> Job:
    with maker() as session:
        found = session.get(Job, job_id)
        assert found is not None
        session.expunge(found)
        return found


def effects(maker: Maker) -> Counter[int]:
    with maker() as session:
        return Counter(session.scalars(select(Effect.job_id)))


def states(maker: Maker) -> Counter[str]:
    with maker() as session:
        return Counter(session.scalars(select(Job.state)))


# --- many workers at once ------------------------------------------------------------------------------


@dataclass
class Tally:
    claimed: int = 0
    done: int = 0
    lost: int = 0
    skipped: int = 0
    reclaimed: int = 0
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def sweep(
    maker: Maker, worker: str, tally: Tally, *, limit: int = 10, stuck_after: dt.timedelta = STUCK, pause: float = 0.0
) -> int:
    """One worker's sweep, as the queues run it: take back expired leases, list, claim, work, finish."""
    tally.add(reclaimed=len(reclaim(maker, stuck_after=stuck_after)))
    with maker() as session:
        ids = list(
            session.scalars(
                select(Job.id).where(lease.claimable(QUEUE)).order_by(Job.next_attempt_at, Job.id).limit(limit)
            )
        )
        session.rollback()
    random.shuffle(ids)  # workers collide on the same rows in different orders
    for job_id in ids:
        held = claim(maker, job_id)
        if held is None:
            tally.add(skipped=1)
            continue
        tally.add(claimed=1)
        if pause:
            time.sleep(random.uniform(0, pause))
        if complete(maker, held, worker):
            tally.add(done=1)
        else:
            tally.add(lost=1)
    return len(ids)


def run_workers(
    maker: Maker,
    count: int,
    tally: Tally,
    *,
    stuck_after: dt.timedelta = STUCK,
    pause: float = 0.0,
    on_progress: Callable[[], None] | None = None,
) -> None:
    start = threading.Barrier(count)

    def worker(name: str) -> None:
        try:
            start.wait(timeout=30)
            idle = 0
            while idle < 3:
                listed = sweep(maker, name, tally, stuck_after=stuck_after, pause=pause)
                if on_progress is not None:
                    on_progress()
                idle = idle + 1 if listed == 0 else 0
        except BaseException as error:  # noqa: BLE001 - surfaced by the assertion below
            tally.errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads)
    assert tally.errors == []


def test_many_workers_do_every_job_exactly_once(maker: Maker) -> None:
    jobs = add_jobs(maker, 150)
    tally = Tally()
    run_workers(maker, 6, tally)
    assert effects(maker) == Counter(dict.fromkeys(jobs, 1))  # every job's effect once, none twice
    assert states(maker) == {State.DONE: len(jobs)}
    assert tally.claimed == tally.done == len(jobs)
    assert tally.lost == 0 and tally.reclaimed == 0
    with maker() as session:
        assert set(session.scalars(select(Job.attempts))) == {1}
        assert set(session.scalars(select(Job.lease_token))) == {None}


def test_exactly_one_of_many_simultaneous_claims_wins(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1)
    start = threading.Barrier(8)
    won: list[lease.Lease] = []
    errors: list[BaseException] = []

    def contender() -> None:
        try:
            start.wait(timeout=30)
            held = claim(maker, job_id)
            if held is not None:
                won.append(held)
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    threads = [threading.Thread(target=contender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(won) == 1
    assert job(maker, job_id).lease_token == won[0].token and job(maker, job_id).attempts == 1


# --- killed workers ------------------------------------------------------------------------------------


def test_a_dead_workers_lease_expires_is_taken_back_and_its_late_completion_refused(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1, at=T0)
    dead = claim(maker, job_id, T0)
    assert dead is not None and dead.attempts == 1
    assert claim(maker, job_id, T0) is None  # held: nobody else gets it
    assert reclaim(maker, T0 + STUCK - dt.timedelta(seconds=1)) == []  # not expired yet
    (taken,) = reclaim(maker, T0 + STUCK + dt.timedelta(seconds=1))
    assert taken.id == job_id and taken.token == dead.token and not taken.exhausted
    row = job(maker, job_id)
    assert (row.state, row.lease_token, row.attempts) == (State.READY, None, 1)  # the dead attempt counted

    later = T0 + STUCK + dt.timedelta(seconds=2)
    alive = claim(maker, job_id, later)
    assert alive is not None and alive.token != dead.token and alive.attempts == 2
    # The dead worker comes back: everything it writes is refused, and it can tell.
    assert complete(maker, dead, "dead") is False
    with maker() as session:
        assert lease.heartbeat(session, dead, later) is False
        assert lease.fail_attempt(session, dead, later) is lease.Outcome.LOST
        assert lease.give_back(session, dead) is False
        session.commit()
    assert complete(maker, alive, "alive") is True
    row = job(maker, job_id)
    assert (row.state, row.done_by, row.attempts) == (State.DONE, "alive", 2)
    assert effects(maker) == {job_id: 1}
    assert reclaim(maker, later + 10 * STUCK) == []  # a finished job is never taken back


def test_a_heartbeat_keeps_a_long_job_and_a_reclaim_racing_it_loses(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1, at=T0)
    held = claim(maker, job_id, T0)
    assert held is not None
    for minute in range(9, 60, 9):  # a heartbeat every nine minutes, each inside the ten
        beat = T0 + dt.timedelta(minutes=minute)
        with maker() as session:
            assert lease.heartbeat(session, held, beat)
            session.commit()
        assert reclaim(maker, beat + STUCK - dt.timedelta(seconds=1)) == []
    # A sweep lists the lease as expired, the worker beats before the sweep takes it: the worker keeps it.
    late = T0 + dt.timedelta(hours=2)
    with maker() as session:
        (listed,) = lease.expired(session, QUEUE, late, STUCK)
        session.rollback()
    with maker() as session:
        assert lease.heartbeat(session, held, late)
        session.commit()
    with maker() as session:
        assert lease.reclaim(session, QUEUE, listed, late) is False
        session.commit()
    assert complete(maker, held, "w")


def test_a_lease_taken_before_tokens_existed_is_still_taken_back(maker: Maker) -> None:
    """Rows a worker held when migration 0007 ran have no token; the sweep still gives them back."""
    (job_id,) = add_jobs(maker, 1, at=T0)
    with maker() as session:
        session.execute(update(Job).where(Job.id == job_id).values(state=State.LEASED, attempts=1, claimed_at=T0))
        session.commit()
    (taken,) = reclaim(maker, T0 + 2 * STUCK)
    assert taken.token is None
    assert job(maker, job_id).state == State.READY


def test_giving_back_does_not_count_an_attempt(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1, at=T0)
    held = claim(maker, job_id, T0)
    assert held is not None
    with maker() as session:
        assert lease.give_back(session, held)
        session.commit()
    row = job(maker, job_id)
    assert (row.state, row.attempts, row.lease_token) == (State.READY, 0, None)


# --- clock jumps ---------------------------------------------------------------------------------------


def test_a_forward_jump_takes_live_leases_back_and_nothing_is_done_twice(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1, at=T0)
    with clock.frozen(T0):
        first = claim(maker, job_id)
    assert first is not None
    with clock.frozen(T0 + dt.timedelta(hours=3)):  # NTP, a VM resumed, an operator's mistake
        assert len(reclaim(maker)) == 1
        second = claim(maker, job_id)
    assert second is not None
    assert complete(maker, first, "first") is False  # alive all along, but no longer the holder
    assert complete(maker, second, "second") is True
    assert effects(maker) == {job_id: 1}


def test_a_backward_jump_takes_nothing_back_and_claims_nothing_twice(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1, at=T0)
    with clock.frozen(T0):
        held = claim(maker, job_id)
    assert held is not None
    with clock.frozen(T0 - dt.timedelta(hours=3)):
        assert reclaim(maker) == []
        assert claim(maker, job_id) is None
    with clock.frozen(T0 + STUCK - dt.timedelta(seconds=1)):
        assert reclaim(maker) == []  # back to normal: the lease still has its full time
    assert complete(maker, held, "w")


def test_workers_through_forward_jumps_still_do_every_job_once(maker: Maker, clock_offset: list[dt.timedelta]) -> None:
    jobs = add_jobs(maker, 120)
    tally = Tally()
    jumps = [dt.timedelta(hours=1), dt.timedelta(hours=3)]

    def jump_now_and_then() -> None:
        with tally.lock:
            if jumps and tally.done >= (len(jobs) // 3) * (3 - len(jumps)):
                clock_offset[0] = jumps.pop(0)

    run_workers(maker, 6, tally, stuck_after=dt.timedelta(minutes=30), pause=0.003, on_progress=jump_now_and_then)
    assert jumps == []
    assert effects(maker) == Counter(dict.fromkeys(jobs, 1))
    assert states(maker) == {State.DONE: len(jobs)}
    assert tally.done == len(jobs) and tally.claimed == tally.done + tally.lost


def test_workers_through_backward_jumps_never_claim_twice(maker: Maker, clock_offset: list[dt.timedelta]) -> None:
    jobs = add_jobs(maker, 120, at=clock.now() - dt.timedelta(days=1))
    tally = Tally()
    jumps = [-dt.timedelta(hours=1), -dt.timedelta(hours=5)]

    def jump_now_and_then() -> None:
        with tally.lock:
            if jumps and tally.done >= (len(jobs) // 3) * (3 - len(jumps)):
                clock_offset[0] = jumps.pop(0)

    run_workers(maker, 6, tally, stuck_after=dt.timedelta(minutes=30), pause=0.003, on_progress=jump_now_and_then)
    assert jumps == []
    assert tally.reclaimed == 0 and tally.lost == 0
    assert tally.claimed == tally.done == len(jobs)  # each job claimed once: no second holder, ever
    assert effects(maker) == Counter(dict.fromkeys(jobs, 1))
    with maker() as session:
        assert set(session.scalars(select(Job.attempts))) == {1}


# --- a poisoned job ------------------------------------------------------------------------------------


def _fail(maker: Maker, held: lease.Lease, now: dt.datetime) -> lease.Outcome:
    with maker() as session:
        outcome = lease.fail_attempt(session, held, now, claimed_at=None, last_error="boom")
        session.commit()
    return outcome


def test_a_poisoned_job_backs_off_ends_failed_and_stops_blocking_the_others(maker: Maker) -> None:
    poisoned, *others = add_jobs(maker, 4, at=T0, max_attempts=4)
    now = T0
    waits: list[dt.timedelta] = []
    outcomes: list[lease.Outcome] = []
    done: list[int] = []
    for _sweep in range(40):
        with maker() as session:  # one at a time, the oldest due first: the poison heads the queue
            due = session.scalar(
                select(Job.id).where(lease.claimable(QUEUE, now)).order_by(Job.next_attempt_at, Job.id).limit(1)
            )
            session.rollback()
        if due is not None:
            held = claim(maker, due, now)
            assert held is not None
            if due == poisoned:
                outcomes.append(_fail(maker, held, now))
                row = job(maker, poisoned)
                if row.state == State.READY:
                    waits.append(row.next_attempt_at - now)
            else:
                assert complete(maker, held, "w")
                done.append(due)
        now += dt.timedelta(seconds=20)
    assert outcomes == [lease.Outcome.RETRY] * 3 + [lease.Outcome.FAILED]  # attempts bounded
    assert waits == [dt.timedelta(seconds=30), dt.timedelta(seconds=60), dt.timedelta(seconds=120)]  # growing
    assert sorted(done) == sorted(others)  # the others went while it waited
    row = job(maker, poisoned)
    assert (row.state, row.attempts, row.lease_token) == (State.FAILED, 4, None)
    with maker() as session:
        assert (
            session.scalar(select(func.count()).select_from(Job).where(lease.claimable(QUEUE, now + 10 * STUCK))) == 0
        )


def test_a_job_that_kills_its_worker_every_time_ends_failed(maker: Maker) -> None:
    poisoned, healthy = add_jobs(maker, 2, at=T0, max_attempts=3)
    now = T0
    for _attempt in range(3):
        assert claim(maker, poisoned, now) is not None  # … and the worker dies
        now += STUCK + dt.timedelta(seconds=1)
        (taken,) = reclaim(maker, now)
        assert taken.id == poisoned
    assert taken.exhausted
    row = job(maker, poisoned)
    assert (row.state, row.attempts) == (State.FAILED, 3)
    assert claim(maker, poisoned, now) is None
    held = claim(maker, healthy, now)
    assert held is not None and complete(maker, held, "w")


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert BACKOFF.after(0) == BACKOFF.after(1) == dt.timedelta(seconds=30)
    assert BACKOFF.after(3) == dt.timedelta(minutes=2)
    assert BACKOFF.after(10) == BACKOFF.after(10_000) == BACKOFF.cap


def test_fail_attempt_final_fails_at_once(maker: Maker) -> None:
    (job_id,) = add_jobs(maker, 1, at=T0, max_attempts=8)
    held = claim(maker, job_id, T0)
    assert held is not None
    with maker() as session:
        assert lease.fail_attempt(session, held, T0, final=True) is lease.Outcome.FAILED
        session.commit()
    assert job(maker, job_id).state == State.FAILED


# --- the four queues describe their tables correctly ------------------------------------------------


@pytest.mark.parametrize("queue", [OUTBOX_QUEUE, DUE_QUEUE, REPORT_QUEUE, EXPORT_QUEUE], ids=lambda queue: queue.name)
def test_every_queue_names_real_columns_and_states(queue: lease.JobQueue) -> None:
    table: Any = queue.model.__table__
    wanted = {"id", "state", "attempts", "max_attempts", "lease_token", queue.alive}
    wanted |= {name for name in (queue.claimed_at, queue.due) if name is not None}
    assert wanted <= set(table.columns.keys())
    assert table.columns["lease_token"].nullable
    states = set(type(queue.leased))
    assert {*queue.ready, queue.leased, queue.failed} <= states
    assert queue.leased not in queue.ready and queue.failed not in queue.ready
