"""One code, 1,000 simultaneous submissions: exactly one ballot — on SQLite and PostgreSQL, with a
real thread pool against the services (each attempt its own session and connection, committed like
a request). And the ballots table itself has no column that could name a voter, a code or a time.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from fivestar.branch_rounds import ballot_casting
from fivestar.branch_rounds.models import (
    Ballot,
    BallotBoxEntry,
    BallotCode,
)
from fivestar.db import make_engine, make_sessionmaker
from fivestar.errors import ConflictError
from fivestar.tenancy import tenant_context
from tests.branch.ballot_support import BOX_SECRET, seed_meeting

ATTEMPTS = 1000
NOW = dt.datetime(2026, 1, 6, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def race(maker: sessionmaker[Session], tenant_id: int, code: str, *, attempts: int, workers: int) -> Counter[str]:
    """`attempts` submissions of one code from `workers` threads, the first wave released together."""
    gate = threading.Barrier(workers)

    def attempt(index: int) -> str:
        if index < workers:
            gate.wait(timeout=60)
        with maker() as session, tenant_context(tenant_id):
            try:
                ballot_casting.cast_ballot(session, tenant_id, code, {"level": str(index % 6)}, secret_key=BOX_SECRET)
                session.commit()
            except ConflictError:
                session.rollback()
                return "refused"
            except Exception as error:  # noqa: BLE001 - anything else is the failure we count
                session.rollback()
                return f"error: {type(error).__name__}: {str(error)[:120]}"
            return "cast"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return Counter(pool.map(attempt, range(attempts)))


def test_a_thousand_simultaneous_submissions_of_one_code_give_one_ballot(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    workers = 40 if backend == "sqlite" else 24
    engine = make_engine(fresh_database(backend), pool_size=workers, max_overflow=0, pool_timeout=120)
    try:
        maker = make_sessionmaker(engine)
        tenant_id, codes = seed_meeting(maker, members=3)
        outcome = race(maker, tenant_id, codes[0], attempts=ATTEMPTS, workers=workers)
        assert outcome == Counter({"cast": 1, "refused": ATTEMPTS - 1}), outcome.most_common(3)
        with maker() as session, tenant_context(tenant_id):
            assert session.scalar(select(func.count()).select_from(BallotBoxEntry)) == 1
            assert session.scalar(select(func.count()).select_from(BallotCode).where(BallotCode.used.is_(True))) == 1
            # the other codes still work, once each
            for code in codes[1:]:
                ballot_casting.cast_ballot(session, tenant_id, code, {"level": "4"}, secret_key=BOX_SECRET)
            session.commit()
            assert session.scalar(select(func.count()).select_from(BallotBoxEntry)) == 3
    finally:
        engine.dispose()


FORBIDDEN = re.compile(r"code|voter|account|member|person|user|_at$|time|date|ip|addr|agent|session", re.IGNORECASE)


def test_the_ballots_table_names_no_voter_code_or_time(engine: Engine) -> None:
    columns = {c["name"] for c in inspect(engine).get_columns("ballots")}
    assert columns == {"id", "tenant_id", "meeting_id", "group", "level", "ratings"}
    box = {c["name"] for c in inspect(engine).get_columns("ballot_box")}
    assert box == {"id", "tenant_id", "meeting_id", "sealed"}
    assert not [name for name in columns | box if FORBIDDEN.search(name)]
    # each points at its meeting (and tenant) only: not at a code, an account or a member
    for table in ("ballots", "ballot_box"):
        referred = {fk["referred_table"] for fk in inspect(engine).get_foreign_keys(table)}
        assert referred <= {"ballot_meetings", "tenants"}


def test_ballot_keys_are_random(session: Session, deliberating: dict[str, Any]) -> None:
    from tests.branch.ballot_support import as_tenant, cast, close, codes_of, issue, setup_meeting

    setup_meeting(session, deliberating, members=8, public=0, deputies=0)
    for code in codes_of(issue(session, deliberating), "members"):
        cast(session, deliberating, code, level=3)
    close(session, deliberating)
    with as_tenant(deliberating):
        keys = list(session.scalars(select(Ballot.id)))
    assert len(set(keys)) == 8 and all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)
