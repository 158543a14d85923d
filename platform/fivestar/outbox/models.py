"""One outbox for every outbound message: e-mail, in-app notices and group-robot webhooks.

A message is written in the same transaction as the change that causes it, then delivered by a
worker: once, retried with backoff, its state visible to the tenant administrator.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.tenancy import TenantOwned


class Channel(enum.StrEnum):
    EMAIL = "email"  # SMTP, to `recipient`
    INAPP = "inapp"  # a notice in the account's inbox (`account_id`)
    WEBHOOK = "webhook"  # a group robot (`webhook_id`: fivestar.notify.models.Webhook)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(TenantOwned, Base):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(db_enum(Channel, "outbox_channel"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int | None] = mapped_column(Integer)  # INAPP: whose inbox
    webhook_id: Mapped[int | None] = mapped_column(Integer)  # WEBHOOK: which robot
    link: Mapped[str | None] = mapped_column(String(300))  # INAPP: where the notice leads (a path)
    state: Mapped[DeliveryState] = mapped_column(
        db_enum(DeliveryState, "delivery_state"), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column()
    lease_token: Mapped[str | None] = mapped_column(String(32))  # the holder's (fivestar.kernel.lease)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
    )
