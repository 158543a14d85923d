"""The results workbook read ahead on a second thread (PostgreSQL): the same cells as reading in
line, and a writer that stops early leaves no thread behind and a session that still works.

The district is the export benchmark's own (bench/export.py `build`, committed to a fresh database),
because reading ahead needs a session bound to an engine: the suite's usual session shares one
connection with every other session of its factory, and there `write_results` reads in line. So
does SQLite (fivestar.read_ahead says why).
"""

from __future__ import annotations

import io
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.db import make_engine, make_sessionmaker
from fivestar.member_rounds import workbooks
from fivestar.member_rounds.models import Evaluation, MemberRound
from fivestar.read_ahead import worth_reading_ahead
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import Tenant

BENCH = Path(__file__).resolve().parents[2] / "bench"
MEMBERS = 1_200
BATCH = 50  # 24 batches


@pytest.fixture(scope="module")
def scored(fresh_database: Callable[[str], str]) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH))
    try:
        import export as bench_export  # bench/export.py

        url = fresh_database("postgresql")
        built = bench_export.build(url, MEMBERS)
    finally:
        sys.path.remove(str(BENCH))
    return {"url": url, **built}


def _results_sheet(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("xl/worksheets/sheet2.xml")  # sheet1 is the about-sheet (its time differs)


def _write(session: Session, scored: dict[str, Any], progress: Callable[[int], None] | None = None) -> bytes:
    out = io.BytesIO()
    with tenant_context(scored["tenant"]):
        tenant = session.get(Tenant, scored["tenant"])
        member_round = session.get(MemberRound, scored["round"])
        assert tenant is not None and member_round is not None
        written = workbooks.write_results(session, out, tenant, member_round, batch=BATCH, progress=progress)
    assert written == MEMBERS
    return out.getvalue()


def _reader_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "fivestar-read-ahead"]


def test_only_engine_bound_postgresql_sessions_read_ahead(
    scored: dict[str, Any], fresh_database: Callable[[str], str]
) -> None:
    sqlite = make_engine(fresh_database("sqlite"))
    postgresql = make_engine(scored["url"])
    try:
        with make_sessionmaker(sqlite)() as session:
            assert not worth_reading_ahead(session)
        with make_sessionmaker(postgresql)() as session:
            assert worth_reading_ahead(session)
        with postgresql.connect() as connection, Session(bind=connection) as session:
            assert not worth_reading_ahead(session)  # one connection for every session of its factory
    finally:
        sqlite.dispose()
        postgresql.dispose()


def test_reading_ahead_writes_the_same_cells_as_reading_in_line(scored: dict[str, Any]) -> None:
    engine = make_engine(scored["url"])
    try:
        reading_seen: list[bool] = []
        with make_sessionmaker(engine)() as session:
            assert worth_reading_ahead(session)
            ahead = _write(session, scored, lambda rows: reading_seen.append(bool(_reader_threads())))
        with engine.connect() as connection, Session(bind=connection) as session:
            in_line = _write(session, scored)
    finally:
        engine.dispose()
    assert len(reading_seen) == MEMBERS // BATCH and any(reading_seen)
    assert _results_sheet(ahead) == _results_sheet(in_line)
    assert not _reader_threads()


class _WriterFailedError(Exception):
    pass


def test_a_writer_that_stops_early_joins_the_reader_and_keeps_its_session(scored: dict[str, Any]) -> None:
    engine = make_engine(scored["url"])
    calls: list[int] = []

    def fail_at_the_third_batch(rows: int) -> None:
        calls.append(rows)
        if len(calls) == 3:
            raise _WriterFailedError

    try:
        with make_sessionmaker(engine)() as session:
            with pytest.raises(_WriterFailedError):
                _write(session, scored, fail_at_the_third_batch)
            assert not _reader_threads()
            assert calls == [BATCH, 2 * BATCH, 3 * BATCH]
            session.rollback()  # as run_job does; the session is this thread's again
            with tenant_context(scored["tenant"]):
                count = session.scalar(select(func.count()).select_from(Evaluation))
            assert count == MEMBERS
    finally:
        engine.dispose()
