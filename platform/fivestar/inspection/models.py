"""What the inspectors keep: each spot check (随机抽查) with the seed that made it.

A draw is repeatable by anyone: the seed, the round and the sizes are stored, and the drawn ids are
kept too, so a later change of the population (a branch added to the round) is visible as a
difference between the stored draw and a repetition (services.draw).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.tenancy import TenantOwned


class SpotCheck(TenantOwned, Base):
    """One draw of branches and members of one member round or one branch round."""

    __tablename__ = "spot_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_round_id: Mapped[int | None] = mapped_column(Integer)
    branch_round_id: Mapped[int | None] = mapped_column(Integer)
    drawn_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    drawn_by: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    branch_count: Mapped[int] = mapped_column(Integer)  # asked for
    member_count: Mapped[int] = mapped_column(Integer)
    branch_population: Mapped[int] = mapped_column(Integer)  # how many there were to draw from
    member_population: Mapped[int] = mapped_column(Integer)
    branch_ids: Mapped[list[Any]] = mapped_column(JSON)  # organisation ids, in draw order
    member_ids: Mapped[list[Any]] = mapped_column(JSON)  # member ids, in draw order

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "member_round_id"], ["member_rounds.tenant_id", "member_rounds.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_round_id"], ["branch_rounds.tenant_id", "branch_rounds.id"]),
        ForeignKeyConstraint(["tenant_id", "account_id"], ["accounts.tenant_id", "accounts.id"]),
        CheckConstraint("(member_round_id IS NULL) <> (branch_round_id IS NULL)", name="one_round"),
        CheckConstraint("branch_count >= 0 AND member_count >= 0", name="counts"),
        Index("ix_spot_checks_tenant_drawn", "tenant_id", "drawn_at"),
    )

    @property
    def round_kind(self) -> str:
        return "member" if self.member_round_id is not None else "branch"
