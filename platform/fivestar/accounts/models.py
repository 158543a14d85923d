"""People who log in: the hosting operators, tenant accounts with their roles, and sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fivestar.db import Base, utcnow
from fivestar.enums import Role, db_enum
from fivestar.tenancy import TenantOwned


class Operator(Base):
    """A hosting operator (平台运营方): manages tenants, belongs to none."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()


class Account(TenantOwned, Base):
    """A login within one tenant, optionally linked to the member it belongs to."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60))
    display_name: Mapped[str] = mapped_column(String(60))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    member_id: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()
    # Bumped by every ORM UPDATE: the edit form carries it (fivestar.kernel.versioning). Signing in
    # stamps `last_login_at` with a plain UPDATE that leaves it alone (accounts.sessions).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="account", lazy="selectin", cascade="all, delete-orphan", order_by="RoleGrant.id"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "username"),
        ForeignKeyConstraint(["tenant_id", "member_id"], ["members.tenant_id", "members.id"]),
        Index("uq_accounts_tenant_member", "tenant_id", "member_id", unique=True),
    )


class RoleGrant(TenantOwned, Base):
    """One role of an account; organisation-scoped roles name their organisation."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[Role] = mapped_column(db_enum(Role, "role"))
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(
        back_populates="grants",
        primaryjoin="RoleGrant.account_id == Account.id",
        foreign_keys="RoleGrant.account_id",
    )

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "account_id"], ["accounts.tenant_id", "accounts.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "organisation_id"], ["organisations.tenant_id", "organisations.id"]),
        UniqueConstraint("account_id", "role", "organisation_id"),
        CheckConstraint(
            "(role IN ('org_staff', 'branch_secretary', 'branch_committee')) = (organisation_id IS NOT NULL)",
            name="scope",
        ),
    )


class AuthSession(Base):
    """A server-side login session. The cookie carries only a random token whose hash is stored here.

    Logging out, changing a password or changing roles revokes rows, so a copied cookie stops
    working at once (a signed Flask cookie alone would survive logout: flask-login#480).
    """

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "account_id"], ["accounts.tenant_id", "accounts.id"], ondelete="CASCADE"),
        CheckConstraint(
            "(operator_id IS NOT NULL AND account_id IS NULL AND tenant_id IS NULL) OR "
            "(operator_id IS NULL AND account_id IS NOT NULL AND tenant_id IS NOT NULL)",
            name="principal",
        ),
        Index("ix_auth_sessions_account", "tenant_id", "account_id"),
    )


class Invitation(TenantOwned, Base):
    """A single-use link that lets an invited account set its password."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "account_id"], ["accounts.tenant_id", "accounts.id"], ondelete="CASCADE"),
    )
