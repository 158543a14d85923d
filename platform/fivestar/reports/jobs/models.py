"""`report_jobs`: one row per report a tenant asked for, and the truth about it.

The row, not the broker message, says what happens (CONTRIBUTING.md "Workers"): a worker *claims* it with a
conditional UPDATE (`queued` → `running`, attempts + 1, a fresh file key and lease token: the one lease of
fivestar.kernel.lease), writes the file, and marks it `done` only while its claim still holds (same
lease token). So a redelivered message finds
nothing to claim, and a worker that was written off as dead and comes back cannot overwrite the
result of the attempt that replaced it. Progress and a heartbeat are written in their own short
transactions while the file grows; a `running` row whose heartbeat stopped belongs to a dead worker
and the sweep gives it back (or fails it after `max_attempts`).

The file lives under the data folder, `reports/<tenant id>/<file_key>`, named by a random key (never
by anything a person typed); `filename` is only what the browser is told to save it as.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.tenancy import TenantOwned


class ReportKind(enum.StrEnum):
    MEMBER_RESULTS = "member_results"  # a member round's results, every member (党员星级评定结果)
    FIVE_STAR = "five_star"  # a member round's five-star members of the branches that reported
    NOTICE_LISTS = "notice_lists"  # a member round's public-notice lists, branch by branch
    BRANCH_LEVELS = "branch_levels"  # a branch round's levels, grouped by organisation


class ReportFormat(enum.StrEnum):
    XLSX = "xlsx"
    PDF = "pdf"


class JobState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker (a message was sent after the request committed)
    RUNNING = "running"  # claimed by a worker; `progress` and `heartbeat_at` move while it writes
    DONE = "done"  # the file is there until `expires_at`
    FAILED = "failed"  # `failure_reason` says why, in Chinese
    EXPIRED = "expired"  # kept past `expires_at`: the file was deleted by the sweep


class ReportJob(TenantOwned, Base):
    __tablename__ = "report_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReportKind] = mapped_column(db_enum(ReportKind, "report_kind"))
    format: Mapped[ReportFormat] = mapped_column(db_enum(ReportFormat, "report_format"))
    # What the report is about, e.g. {"round_id": 7}; checked against the tenant when asked for.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    title: Mapped[str] = mapped_column(String(200))  # what the list shows: 2026年第一季度 · 党员星级评定结果
    state: Mapped[JobState] = mapped_column(db_enum(JobState, "report_job_state"), default=JobState.QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent, 0..100
    rows: Mapped[int | None] = mapped_column(Integer)  # rows written, once done
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)  # the account; None for the system
    requested_by: Mapped[str] = mapped_column(String(120))  # its name as shown then
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # last time a message was sent
    started_at: Mapped[dt.datetime | None] = mapped_column()  # the current attempt's claim
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()  # the running worker's last sign of life
    lease_token: Mapped[str | None] = mapped_column(String(32))  # the holder's (fivestar.kernel.lease)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column()  # the file (and the row's use) ends then
    file_key: Mapped[str | None] = mapped_column(String(64))  # random; set at each claim
    file_size: Mapped[int | None] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(200))  # the download's name
    # The tenant's audit chain head (`N:HASH`) printed on the report when it was made; exports send
    # it beside the file (fivestar.audit.chain).
    audit_head: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "requested_by_id"], ["accounts.tenant_id", "accounts.id"]),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
        Index("ix_report_jobs_list", "tenant_id", "requested_at"),
        # the sweep: running rows by heartbeat, queued rows by when they were sent, finished by expiry
        Index("ix_report_jobs_sweep", "state", "heartbeat_at"),
        Index("ix_report_jobs_expiry", "state", "expires_at"),
    )
