"""The demo's fast calendar: one row holding how far the platform clock runs ahead."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Integer
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow


class DemoClock(Base):
    __tablename__ = "demo_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("offset_seconds >= 0", name="ahead"),
    )
