"""Helpers for the report-job tests: a member round with results, a job row, and a session factory
that works inside the test's rolled-back connection (each service "transaction" is a savepoint)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import openpyxl
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from fivestar.db import make_sessionmaker
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportJob, ReportKind
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock


def factory(connection: Connection) -> Callable[[], Session]:
    """Sessions on the test's connection: what the service commits is a released savepoint, and
    everything is rolled back with the test."""
    maker = make_sessionmaker(connection.engine)
    return lambda: maker(bind=connection, join_transaction_mode="create_savepoint")


def add_job(session: Session, world: dict[str, Any], kind: ReportKind, fmt: ReportFormat = ReportFormat.XLSX,
            *, round_id: int | None = None, state: JobState = JobState.QUEUED) -> ReportJob:
    """A job row as `request_report` writes it (without the message)."""
    with tenant_context(world["tenant"].id):
        job = ReportJob(
            tenant_id=world["tenant"].id,
            kind=kind,
            format=fmt,
            parameters={"round_id": round_id if round_id is not None else world["round"].id},
            title="测试报表",
            state=state,
            progress=0,
            attempts=0,
            max_attempts=3,
            requested_by_id=world["admin"].id,
            requested_by="工委工作人员",
            requested_at=clock.now(),
            queued_at=clock.now(),
        )
        session.add(job)
        session.flush()
    return job


def workbook(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data), read_only=True)


def sheet_rows(book: Any, name: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in book[name].iter_rows(values_only=True)]


def about(book: Any) -> dict[str, Any]:
    """The 说明 sheet as {label: value}: where the report comes from."""
    return {row[0]: row[1] for row in sheet_rows(book, "说明") if row and row[0]}


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)
