"""Standing: the level history (the one record of every level a branch or member received), the
committee's adjustments (增星摘星) with their evidence files, and the mid-year events that prompt them.

The history is backfilled from what is already final: every finalised branch round's decided levels
(effective when the round was finalised, by who decided) and every closed member round's evaluation
levels of its active members (effective when the round closed; 不予评星 kept as no level). Each
subject's rows are ordered by when they took effect, and each row's previous level is the one before.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "standing_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "veto",
                "sanction",
                "honour",
                name="standing_event_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("veto_key", sa.String(length=60), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=120), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "adjusted",
                "dismissed",
                name="standing_event_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=120), nullable=True),
        sa.Column("dismiss_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'veto' AND branch_id IS NOT NULL AND veto_key IS NOT NULL) OR "
            "(kind <> 'veto' AND member_id IS NOT NULL)",
            name=op.f("ck_standing_events_kind_subject"),
        ),
        sa.CheckConstraint("(branch_id IS NULL) <> (member_id IS NULL)", name=op.f("ck_standing_events_one_subject")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"],
            ["organisations.tenant_id", "organisations.id"],
            name=op.f("fk_standing_events_tenant_id_branch_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["members.tenant_id", "members.id"],
            name=op.f("fk_standing_events_tenant_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_standing_events_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_standing_events")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_standing_events_tenant_id_id")),
    )
    with op.batch_alter_table("standing_events", schema=None) as batch_op:
        batch_op.create_index("ix_standing_events_state", ["tenant_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_standing_events_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "level_adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("from_level", sa.Integer(), nullable=True),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column(
            "cause",
            sa.Enum(
                "veto",
                "sanction",
                "honour",
                "other",
                name="adjustment_cause",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("veto_key", sa.String(length=60), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("meeting_name", sa.String(length=200), nullable=False),
        sa.Column("meeting_date", sa.Date(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=120), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("(branch_id IS NULL) <> (member_id IS NULL)", name=op.f("ck_level_adjustments_one_subject")),
        sa.CheckConstraint("to_level >= 0 AND to_level <= 5", name=op.f("ck_level_adjustments_to_level")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"],
            ["organisations.tenant_id", "organisations.id"],
            name=op.f("fk_level_adjustments_tenant_id_branch_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["standing_events.tenant_id", "standing_events.id"],
            name=op.f("fk_level_adjustments_tenant_id_event_id_standing_events"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["members.tenant_id", "members.id"],
            name=op.f("fk_level_adjustments_tenant_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_level_adjustments_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_level_adjustments")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_level_adjustments_tenant_id_id")),
    )
    with op.batch_alter_table("level_adjustments", schema=None) as batch_op:
        batch_op.create_index("ix_level_adjustments_branch", ["tenant_id", "branch_id"], unique=False)
        batch_op.create_index("ix_level_adjustments_member", ["tenant_id", "member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_level_adjustments_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "adjustment_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adjustment_id", sa.Integer(), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=120), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=120), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "adjustment_id"],
            ["level_adjustments.tenant_id", "level_adjustments.id"],
            name=op.f("fk_adjustment_files_tenant_id_adjustment_id_level_adjustments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_adjustment_files_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustment_files")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_adjustment_files_storage_key")),
    )
    with op.batch_alter_table("adjustment_files", schema=None) as batch_op:
        batch_op.create_index("ix_adjustment_files_adjustment", ["adjustment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_adjustment_files_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "level_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("previous_level", sa.Integer(), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "branch_round",
                "member_round",
                "adjustment",
                name="level_source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("branch_round_id", sa.Integer(), nullable=True),
        sa.Column("member_round_id", sa.Integer(), nullable=True),
        sa.Column("adjustment_id", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(source = 'branch_round' AND branch_round_id IS NOT NULL AND branch_id IS NOT NULL) OR "
            "(source = 'member_round' AND member_round_id IS NOT NULL AND member_id IS NOT NULL) OR "
            "(source = 'adjustment' AND adjustment_id IS NOT NULL)",
            name=op.f("ck_level_history_one_source"),
        ),
        sa.CheckConstraint("(branch_id IS NULL) <> (member_id IS NULL)", name=op.f("ck_level_history_one_subject")),
        sa.CheckConstraint("level IS NULL OR (level >= 0 AND level <= 5)", name=op.f("ck_level_history_level")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "adjustment_id"],
            ["level_adjustments.tenant_id", "level_adjustments.id"],
            name=op.f("fk_level_history_tenant_id_adjustment_id_level_adjustments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"],
            ["organisations.tenant_id", "organisations.id"],
            name=op.f("fk_level_history_tenant_id_branch_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_round_id"],
            ["branch_rounds.tenant_id", "branch_rounds.id"],
            name=op.f("fk_level_history_tenant_id_branch_round_id_branch_rounds"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["members.tenant_id", "members.id"],
            name=op.f("fk_level_history_tenant_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_round_id"],
            ["member_rounds.tenant_id", "member_rounds.id"],
            name=op.f("fk_level_history_tenant_id_member_round_id_member_rounds"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_level_history_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_level_history")),
        sa.UniqueConstraint("adjustment_id", name=op.f("uq_level_history_adjustment_id")),
        sa.UniqueConstraint("branch_round_id", "branch_id", name=op.f("uq_level_history_branch_round_id_branch_id")),
        sa.UniqueConstraint("member_round_id", "member_id", name=op.f("uq_level_history_member_round_id_member_id")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_level_history_tenant_id_id")),
    )
    with op.batch_alter_table("level_history", schema=None) as batch_op:
        batch_op.create_index("ix_level_history_branch", ["tenant_id", "branch_id", "effective_at"], unique=False)
        batch_op.create_index("ix_level_history_member", ["tenant_id", "member_id", "effective_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_level_history_tenant_id"), ["tenant_id"], unique=False)
    _backfill()


_BRANCH_ROWS = sa.text(
    "SELECT r.tenant_id, r.id, r.year, COALESCE(r.finalised_at, r.opened_at), b.branch_id, b.decided_level, "
    "b.decided_by, b.decision_reason FROM branch_ratings b JOIN branch_rounds r "
    "ON r.tenant_id = b.tenant_id AND r.id = b.round_id WHERE r.state = 'finalised' ORDER BY b.id"
)
_MEMBER_ROWS = sa.text(
    "SELECT r.tenant_id, r.id, r.period_key, COALESCE(r.closed_at, r.opened_at), e.member_id, e.level "
    "FROM member_evaluations e JOIN member_rounds r ON r.tenant_id = e.tenant_id AND r.id = e.round_id "
    "WHERE r.state = 'closed' AND e.status = 'active' AND e.rated IS NOT NULL ORDER BY e.id"
)
_CLOSERS = sa.text("SELECT tenant_id, object_id, actor_name FROM audit_events WHERE action = 'member_round.close'")
_SYSTEM = "系统"


def _aware(value: Any) -> datetime:
    """SQLite hands back text or naive values; the column stores UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _backfill() -> None:
    bind = op.get_bind()
    closers = {(row[0], str(row[1])): row[2] for row in bind.execute(_CLOSERS)}
    rows: list[dict[str, Any]] = []
    for tenant_id, round_id, year, when, branch_id, level, who, why in bind.execute(_BRANCH_ROWS):
        rows.append(
            {
                "tenant_id": tenant_id,
                "branch_id": branch_id,
                "member_id": None,
                "level": level,
                "source": "branch_round",
                "branch_round_id": round_id,
                "member_round_id": None,
                "adjustment_id": None,
                "period": str(year),
                "effective_at": _aware(when),
                "recorded_by": str(who or _SYSTEM)[:120],
                "reason": why,
            }
        )
    for tenant_id, round_id, period, when, member_id, level in bind.execute(_MEMBER_ROWS):
        rows.append(
            {
                "tenant_id": tenant_id,
                "branch_id": None,
                "member_id": member_id,
                "level": level,
                "source": "member_round",
                "branch_round_id": None,
                "member_round_id": round_id,
                "adjustment_id": None,
                "period": period,
                "effective_at": _aware(when),
                "recorded_by": str(closers.get((tenant_id, str(round_id))) or _SYSTEM)[:120],
                "reason": None,
            }
        )
    rows.sort(key=lambda r: (r["effective_at"], r["branch_round_id"] or 0, r["member_round_id"] or 0))
    last: dict[tuple[int, str, int], int | None] = {}
    for row in rows:
        key = (row["tenant_id"], "b" if row["branch_id"] is not None else "m", row["branch_id"] or row["member_id"])
        row["previous_level"] = last.get(key)
        last[key] = row["level"]
        if bind.dialect.name == "sqlite":  # stored naive-in-UTC there, as fivestar.db.UTCDateTime does
            row["effective_at"] = row["effective_at"].astimezone(UTC).replace(tzinfo=None)
    if rows:
        table = sa.table(
            "level_history",
            *(sa.column(name) for name in rows[0]),
        )
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table("level_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_level_history_tenant_id"))
        batch_op.drop_index("ix_level_history_member")
        batch_op.drop_index("ix_level_history_branch")
    op.drop_table("level_history")
    with op.batch_alter_table("adjustment_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adjustment_files_tenant_id"))
        batch_op.drop_index("ix_adjustment_files_adjustment")
    op.drop_table("adjustment_files")
    with op.batch_alter_table("level_adjustments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_level_adjustments_tenant_id"))
        batch_op.drop_index("ix_level_adjustments_member")
        batch_op.drop_index("ix_level_adjustments_branch")
    op.drop_table("level_adjustments")
    with op.batch_alter_table("standing_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_standing_events_tenant_id"))
        batch_op.drop_index("ix_standing_events_state")
    op.drop_table("standing_events")
