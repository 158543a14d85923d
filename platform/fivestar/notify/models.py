"""The group robots of a tenant: one row per robot, its address and secret encrypted (`encryption`)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.i18n import _l
from fivestar.tenancy import TenantOwned


class WebhookKind(enum.StrEnum):
    WECOM = "wecom"  # 企业微信群机器人
    DINGTALK = "dingtalk"  # 钉钉自定义机器人


KIND_LABELS = {WebhookKind.WECOM: _l("企业微信"), WebhookKind.DINGTALK: _l("钉钉")}


class Webhook(TenantOwned, Base):
    """One group robot of a tenant: for the whole district (`organisation_id` NULL) or one organisation."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[WebhookKind] = mapped_column(db_enum(WebhookKind, "webhook_kind"))
    url_encrypted: Mapped[str] = mapped_column(Text)  # Fernet token of the whole URL (it holds the key)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)  # DingTalk 加签 secret, Fernet token
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "organisation_id"], ["organisations.tenant_id", "organisations.id"]),
        Index("ix_webhooks_tenant_organisation", "tenant_id", "organisation_id"),
    )

    def __repr__(self) -> str:  # never the URL
        return f"<Webhook {self.id} {self.kind} {self.name!r}>"
