"""The organisation tree of a tenant: 工委 → 机关党委/党总支 → 党支部 (and 离退休支部)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fivestar.db import Base, utcnow
from fivestar.enums import OrgKind, db_enum
from fivestar.tenancy import TenantOwned


class Organisation(TenantOwned, Base):
    """A node of the tree.

    `path` is the materialised list of ancestor ids (`/1/4/17/`, the node's own id last) so a
    subtree is one indexed `LIKE '/1/4/%'` and permission checks need no recursion.
    """

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[OrgKind] = mapped_column(db_enum(OrgKind, "org_kind"))
    name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(String(400), default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped by every UPDATE: the edit form carries it (fivestar.kernel.versioning).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    parent: Mapped[Organisation | None] = relationship(
        remote_side="Organisation.id",
        primaryjoin="Organisation.parent_id == Organisation.id",
        foreign_keys="Organisation.parent_id",
        lazy="raise_on_sql",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "code"),
        ForeignKeyConstraint(
            ["tenant_id", "parent_id"], ["organisations.tenant_id", "organisations.id"], ondelete="RESTRICT"
        ),
        Index("ix_organisations_tenant_path", "tenant_id", "path"),
        Index("ix_organisations_tenant_parent", "tenant_id", "parent_id"),
    )

    @property
    def depth(self) -> int:
        return self.path.strip("/").count("/")

    @property
    def ancestor_ids(self) -> list[int]:
        return [int(part) for part in self.path.strip("/").split("/") if part]

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name!r}>"
