"""Tables of standing: the level history, the committee's adjustments (增星摘星) and the events that
prompt them.

`LevelHistory` is the one record of levels: a row for every level a branch or a member received,
from a finalised branch round (定星), a closed member round, or an adjustment. The current level of a
subject is its latest row; nothing else stores a "current level". Rows are only ever added.

An `Adjustment` is the committee's decision between rounds to raise or lower one subject's level,
with its cause, reason, approving meeting and evidence files (`AdjustmentFile`). A `StandingEvent`
is a veto event against a branch, or a sanction or honour of a member, recorded mid-year: it never
changes a level; it is a prompt the committee resolves by an adjustment or by dismissing it.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.tenancy import TenantOwned


class SourceKind(enum.StrEnum):
    """Where a level came from."""

    BRANCH_ROUND = "branch_round"  # 定星 of the year's branch round, on finalising
    MEMBER_ROUND = "member_round"  # a member round's results, on closing
    ADJUSTMENT = "adjustment"  # 增星摘星 by the committee between rounds


class Cause(enum.StrEnum):
    """Why the committee adjusts a level."""

    VETO = "veto"  # a veto event of the rules (一票否决 item) against a branch
    SANCTION = "sanction"  # a member's sanction (处分, 问责 …)
    HONOUR = "honour"  # an honour (表彰)
    OTHER = "other"


class EventKind(enum.StrEnum):
    """What happened mid-year (a prompt for the committee, never a change by itself)."""

    VETO = "veto"  # against a branch: one of the rules' branch.vetoes
    SANCTION = "sanction"  # a member
    HONOUR = "honour"  # a member


class EventState(enum.StrEnum):
    OPEN = "open"
    ADJUSTED = "adjusted"  # resolved by recording an adjustment
    DISMISSED = "dismissed"  # resolved without one, with a reason


_SUBJECT_CHECK = "(branch_id IS NULL) <> (member_id IS NULL)"


class Adjustment(TenantOwned, Base):
    """增星摘星: the committee raised or lowered one branch's or member's level (cannot be undone; a
    later adjustment corrects it)."""

    __tablename__ = "level_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(Integer)
    from_level: Mapped[int | None] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    cause: Mapped[Cause] = mapped_column(db_enum(Cause, "adjustment_cause"))
    veto_key: Mapped[str | None] = mapped_column(String(60))  # the rules' veto, when cause is VETO
    reason: Mapped[str] = mapped_column(Text)
    meeting_name: Mapped[str] = mapped_column(String(200))
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    event_id: Mapped[int | None] = mapped_column(Integer)  # the prompt it resolves, if any
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        ForeignKeyConstraint(["tenant_id", "member_id"], ["members.tenant_id", "members.id"]),
        ForeignKeyConstraint(["tenant_id", "event_id"], ["standing_events.tenant_id", "standing_events.id"]),
        CheckConstraint(_SUBJECT_CHECK, name="one_subject"),
        CheckConstraint("to_level >= 0 AND to_level <= 5", name="to_level"),
        Index("ix_level_adjustments_branch", "tenant_id", "branch_id"),
        Index("ix_level_adjustments_member", "tenant_id", "member_id"),
    )


class LevelHistory(TenantOwned, Base):
    """One level a branch or a member received: from a round or an adjustment, who, when, why."""

    __tablename__ = "level_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(Integer)
    level: Mapped[int | None] = mapped_column(Integer)  # None: not rated (不予评星 / 不定级), as the round stored
    previous_level: Mapped[int | None] = mapped_column(Integer)  # the subject's level before this row
    source: Mapped[SourceKind] = mapped_column(db_enum(SourceKind, "level_source"))
    branch_round_id: Mapped[int | None] = mapped_column(Integer)
    member_round_id: Mapped[int | None] = mapped_column(Integer)
    adjustment_id: Mapped[int | None] = mapped_column(Integer)
    period: Mapped[str | None] = mapped_column(String(16))  # the round's year or period key
    effective_at: Mapped[dt.datetime] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        # A round writes each subject's level once, whoever finalises twice.
        UniqueConstraint("branch_round_id", "branch_id"),
        UniqueConstraint("member_round_id", "member_id"),
        UniqueConstraint("adjustment_id"),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        ForeignKeyConstraint(["tenant_id", "member_id"], ["members.tenant_id", "members.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_round_id"], ["branch_rounds.tenant_id", "branch_rounds.id"]),
        ForeignKeyConstraint(["tenant_id", "member_round_id"], ["member_rounds.tenant_id", "member_rounds.id"]),
        ForeignKeyConstraint(["tenant_id", "adjustment_id"], ["level_adjustments.tenant_id", "level_adjustments.id"]),
        CheckConstraint(_SUBJECT_CHECK, name="one_subject"),
        CheckConstraint(
            "(source = 'branch_round' AND branch_round_id IS NOT NULL AND branch_id IS NOT NULL) OR "
            "(source = 'member_round' AND member_round_id IS NOT NULL AND member_id IS NOT NULL) OR "
            "(source = 'adjustment' AND adjustment_id IS NOT NULL)",
            name="one_source",
        ),
        CheckConstraint("level IS NULL OR (level >= 0 AND level <= 5)", name="level"),
        Index("ix_level_history_branch", "tenant_id", "branch_id", "effective_at"),
        Index("ix_level_history_member", "tenant_id", "member_id", "effective_at"),
    )


class AdjustmentFile(TenantOwned, Base):
    """An evidence file of an adjustment (a decision, a notice of sanction or honour); bytes on disk."""

    __tablename__ = "adjustment_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    adjustment_id: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(120), unique=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "adjustment_id"], ["level_adjustments.tenant_id", "level_adjustments.id"]),
        Index("ix_adjustment_files_adjustment", "adjustment_id"),
    )


class StandingEvent(TenantOwned, Base):
    """A veto event against a branch, or a member's sanction or honour, recorded mid-year: a prompt
    for the committee to consider an adjustment. It changes no level by itself."""

    __tablename__ = "standing_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[EventKind] = mapped_column(db_enum(EventKind, "standing_event_kind"))
    veto_key: Mapped[str | None] = mapped_column(String(60))
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(120))
    state: Mapped[EventState] = mapped_column(db_enum(EventState, "standing_event_state"), default=EventState.OPEN)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        ForeignKeyConstraint(["tenant_id", "member_id"], ["members.tenant_id", "members.id"]),
        CheckConstraint(_SUBJECT_CHECK, name="one_subject"),
        CheckConstraint(
            "(kind = 'veto' AND branch_id IS NOT NULL AND veto_key IS NOT NULL) OR "
            "(kind <> 'veto' AND member_id IS NOT NULL)",
            name="kind_subject",
        ),
        Index("ix_standing_events_state", "tenant_id", "state"),
    )
