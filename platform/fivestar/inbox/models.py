"""`notices`: what an account finds in its inbox.

A notice is written by the outbox's delivery (channel `inapp`), never directly by a feature, so the
in-app channel has the same once-only guarantee, retries and delivery log as e-mail and webhooks:
`(tenant_id, outbox_message_id)` is unique, and a redelivered message adds nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.tenancy import TenantOwned


class Notice(TenantOwned, Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    outbox_message_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("tenant_id", "outbox_message_id"),
        ForeignKeyConstraint(["tenant_id", "account_id"], ["accounts.tenant_id", "accounts.id"], ondelete="CASCADE"),
        Index("ix_notices_inbox", "tenant_id", "account_id", "read_at"),
    )
