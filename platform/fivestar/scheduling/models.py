"""`due_items`: one row per thing the calendar will make happen for a tenant.

The row is the schedule (CONTRIBUTING.md "Workers"): beat never holds per-tenant entries, and no message waits
for hours in the broker. `(tenant_id, kind, key)` is unique, so planning the same item twice adds
nothing; the item's *effect* has its own unique key (a round per tenant and period), so running it
twice changes nothing either.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.tenancy import TenantOwned


class DueKind(enum.StrEnum):
    OPEN_MEMBER_ROUND = "open_member_round"  # key: the period, e.g. 2026Q3
    OPEN_BRANCH_ROUND = "open_branch_round"  # key: the rated year, e.g. 2025
    REMINDER = "reminder"  # key: fivestar.reminders.planning.ReminderKey, e.g. m12:self:20261014:3


class DueState(enum.StrEnum):
    PENDING = "pending"  # waiting for due_at
    RUNNING = "running"  # claimed by a worker (given back after a while if the worker died)
    DONE = "done"  # the effect happened (or was already there: `outcome` says which)
    FAILED = "failed"  # refused by the service, or killed its worker `max_attempts` times


class DueItem(TenantOwned, Base):
    __tablename__ = "due_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DueKind] = mapped_column(db_enum(DueKind, "due_kind"))
    key: Mapped[str] = mapped_column(String(60))
    due_at: Mapped[dt.datetime] = mapped_column()  # UTC
    state: Mapped[DueState] = mapped_column(db_enum(DueState, "due_state"), default=DueState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    lease_token: Mapped[str | None] = mapped_column(String(32))  # the holder's (fivestar.kernel.lease)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(Text)  # what happened, in Chinese, for the administrator
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "key"),
        Index("ix_due_items_due", "state", "due_at"),
    )
