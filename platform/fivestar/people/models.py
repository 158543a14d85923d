"""Party members as a branch office keeps them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fivestar.db import Base, utcnow
from fivestar.enums import Gender, MemberStatus, Position, Standing, db_enum
from fivestar.orgs.models import Organisation
from fivestar.tenancy import TenantOwned


class Member(TenantOwned, Base):
    """A party member (党员). `member_no` is the office's own number and the import's key."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(Integer)
    member_no: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    gender: Mapped[Gender] = mapped_column(db_enum(Gender, "gender"))
    phone: Mapped[str | None] = mapped_column(String(32))
    joined_on: Mapped[dt.date | None] = mapped_column(Date)
    standing: Mapped[Standing] = mapped_column(db_enum(Standing, "standing"), default=Standing.FULL)
    position: Mapped[Position] = mapped_column(db_enum(Position, "position"), default=Position.MEMBER)
    status: Mapped[MemberStatus] = mapped_column(db_enum(MemberStatus, "member_status"), default=MemberStatus.ACTIVE)
    left_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    branch: Mapped[Organisation] = relationship(
        primaryjoin="Member.branch_id == Organisation.id", foreign_keys="Member.branch_id", lazy="raise_on_sql"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "member_no"),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        Index("ix_members_tenant_branch_status", "tenant_id", "branch_id", "status"),
        Index("ix_members_tenant_name", "tenant_id", "name"),
    )

    @property
    def is_active(self) -> bool:
        return self.status is MemberStatus.ACTIVE
