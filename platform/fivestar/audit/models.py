"""The append-only record of every change (README "The audit trail").

Nothing updates or deletes an event: the ORM refuses it here and database triggers refuse it in
the migration. Every event is a link of a hash chain (`fivestar.audit.chain`): one chain per tenant
and one for the platform's own events (`chain_id` 0), positions `seq` 1, 2, 3… dense and unique per
chain, `hash` = SHA-256 over the previous link's hash and the event's canonical bytes. The chain's
head (its last position and hash) is a row of `audit_chain_heads`, advanced by a conditional
UPDATE in the same transaction as the events, so two writers can never fork the chain.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from fivestar.db import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column()
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column()
    after: Mapped[dict[str, Any] | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)
    # The hash chain: the tenant's id (0 for platform events), the position in it and the link.
    chain_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_tenant_time", "tenant_id", "occurred_at"),
        Index("ix_audit_events_object", "tenant_id", "object_type", "object_id"),
        UniqueConstraint("chain_id", "seq"),
    )


class AuditChainHead(Base):
    """The last link of one chain: where the next event goes and what it hashes over.

    Not tenant-owned on purpose (chain 0 is the platform's). Only `fivestar.audit.chain` writes it.
    """

    __tablename__ = "audit_chain_heads"

    chain_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditImmutableError(RuntimeError):
    pass


def _refuse(_mapper: Mapper[Any], _connection: Any, target: AuditEvent) -> None:
    raise AuditImmutableError(f"audit event {target.id} is append-only")


event.listen(AuditEvent, "before_update", _refuse)
event.listen(AuditEvent, "before_delete", _refuse)
