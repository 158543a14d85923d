"""`export_targets` and `export_deliveries`: where a district's reports go, and what was sent.

A target's secrets (the HMAC key of an HTTPS endpoint, the password or private key of an SFTP
account) are Fernet tokens made with `fivestar.notify.encryption.encrypt`; pages, audit events and
logs never see them.

A delivery is the row that says what happens (CONTRIBUTING.md "Workers"): `(tenant_id, target_id, round_type,
round_id)` is unique, so planning a round for a target twice — a second sweep, two workers at once
— adds nothing, and each round reaches each target once. Its `state` moves

    waiting ──report done──▶ pending ──claimed──▶ sending ──▶ sent
       ▲                        ▲                    │
       └─ report expired ───────┴──── retry ◀────────┴──▶ failed (after max_attempts; alert)

`waiting`: the report is being made (`report_job_id`, a job of fivestar.reports.jobs) or still has
to be asked for (NULL). `sending` is a claim taken with a conditional UPDATE before anything leaves
the server; a worker that died holding it is found by `claimed_at` and given back.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.reports.jobs.models import ReportFormat, ReportKind
from fivestar.tenancy import TenantOwned


class ExportMethod(enum.StrEnum):
    EMAIL = "email"  # the file attached to an e-mail, through the outbox's SMTP settings
    HTTPS = "https"  # a POST of the file, signed with HMAC-SHA256 (transports.py)
    SFTP = "sftp"  # the file written to a folder of an SFTP account, under a temporary name first


class ExportTrigger(enum.StrEnum):
    ON_FINALISE = "on_finalise"  # when a round of the report's type is finalised (after `since`)
    ON_DATE = "on_date"  # each year on on_month/on_day at ON_DATE_TIME, tenant time: the latest round


class ExportState(enum.StrEnum):
    WAITING = "waiting"  # for the report file (asked for, or still to be asked for)
    PENDING = "pending"  # the file is there; to be sent at next_attempt_at
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"
    FAILED = "failed"  # gave up after max_attempts; the administrators were alerted


class ExportTarget(TenantOwned, Base):
    __tablename__ = "export_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    report_kind: Mapped[ReportKind] = mapped_column(db_enum(ReportKind, "report_kind"))
    report_format: Mapped[ReportFormat] = mapped_column(db_enum(ReportFormat, "report_format"))
    method: Mapped[ExportMethod] = mapped_column(db_enum(ExportMethod, "export_method"))
    # e-mail: the address; https: the URL; sftp: `host` or `host:port`
    destination: Mapped[str] = mapped_column(String(500))
    remote_dir: Mapped[str | None] = mapped_column(String(300))  # sftp: the folder ("." = login folder)
    username: Mapped[str | None] = mapped_column(String(100))  # sftp: the account
    # sftp: the server's public key ("ssh-ed25519 AAAA…"), checked at every connection
    host_key: Mapped[str | None] = mapped_column(Text)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)  # https: HMAC key; sftp: password
    private_key_encrypted: Mapped[str | None] = mapped_column(Text)  # sftp: an unencrypted private key
    trigger: Mapped[ExportTrigger] = mapped_column(db_enum(ExportTrigger, "export_trigger"))
    on_month: Mapped[int | None] = mapped_column(Integer)
    on_day: Mapped[int | None] = mapped_column(Integer)
    # on_date: the next instant (UTC), computed in the tenant's time zone; the sweep advances it
    next_run_at: Mapped[dt.datetime | None] = mapped_column()
    # on_finalise: rounds finalised from this instant on are sent (set when the target is created,
    # switched on again or given another report or trigger: saving a target never sends the past)
    since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("on_month IS NULL OR on_month BETWEEN 1 AND 12", name="on_month"),
        CheckConstraint("on_day IS NULL OR on_day BETWEEN 1 AND 31", name="on_day"),
        Index("ix_export_targets_due", "trigger", "active", "next_run_at"),
    )

    def __repr__(self) -> str:  # never a secret
        return f"<ExportTarget {self.id} {self.method} {self.name!r}>"


class ExportDelivery(TenantOwned, Base):
    __tablename__ = "export_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[ExportTrigger] = mapped_column(db_enum(ExportTrigger, "export_trigger"))
    round_type: Mapped[str] = mapped_column(String(8))  # "member" or "branch" (reports.jobs.kinds.RoundType)
    round_id: Mapped[int] = mapped_column(Integer)
    round_key: Mapped[str] = mapped_column(String(16))  # the member round's period (2026Q1) or the year
    report_job_id: Mapped[int | None] = mapped_column(Integer)  # fivestar.reports.jobs.ReportJob.id
    state: Mapped[ExportState] = mapped_column(db_enum(ExportState, "export_state"), default=ExportState.WAITING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    lease_token: Mapped[str | None] = mapped_column(String(32))  # the holder's (fivestar.kernel.lease)
    last_error: Mapped[str | None] = mapped_column(Text)
    resends: Mapped[int] = mapped_column(Integer, default=0)  # "重新发送" clicks: a new failure alerts again
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    sent_to: Mapped[str | None] = mapped_column(String(600))  # where it went (the destination then)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # Each round goes to each target once, whoever plans it and however often.
        UniqueConstraint("tenant_id", "target_id", "round_type", "round_id"),
        ForeignKeyConstraint(
            ["tenant_id", "target_id"], ["export_targets.tenant_id", "export_targets.id"], ondelete="CASCADE"
        ),
        CheckConstraint("round_type IN ('member', 'branch')", name="round_type"),
        Index("ix_export_deliveries_due", "state", "next_attempt_at"),
        Index("ix_export_deliveries_log", "tenant_id", "created_at"),
    )
