"""Tenants (district working committees) and their versioned rule sets."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import TenantStatus, db_enum
from fivestar.tenancy import TenantOwned
from fivestar.timekeeping import DEFAULT_TIMEZONE

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"


class Tenant(Base):
    """A district working committee (区直机关工委). Platform-level: not itself tenant-owned."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    status: Mapped[TenantStatus] = mapped_column(db_enum(TenantStatus, "tenant_status"), default=TenantStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("locale IN ('zh', 'en')", name="locale"),)

    @property
    def is_active(self) -> bool:
        return self.status is TenantStatus.ACTIVE


class RuleSetVersion(TenantOwned, Base):
    """One immutable version of a tenant's rule set. A round pins the version it opened with."""

    __tablename__ = "rule_set_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    source_toml: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (
        UniqueConstraint("tenant_id", "version"),
        UniqueConstraint("tenant_id", "id"),
    )


__all__ = ["SLUG_PATTERN", "RuleSetVersion", "Tenant"]
