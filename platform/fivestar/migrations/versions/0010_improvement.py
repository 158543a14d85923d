"""Rectification plans (整改提升计划), their items and files, and the acceptance review (考核验收).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "improvement_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("rating_id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("programme_key", sa.String(length=60), nullable=False),
        sa.Column("programme_label", sa.String(length=120), nullable=False),
        sa.Column("goal", sa.Text(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "published",
                "reviewed",
                name="plan_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=120), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("level >= 0 AND level <= 5", name=op.f("ck_improvement_plans_level")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_id"],
            ["organisations.tenant_id", "organisations.id"],
            name=op.f("fk_improvement_plans_tenant_id_branch_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rating_id"],
            ["branch_ratings.tenant_id", "branch_ratings.id"],
            name=op.f("fk_improvement_plans_tenant_id_rating_id_branch_ratings"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "round_id"],
            ["branch_rounds.tenant_id", "branch_rounds.id"],
            name=op.f("fk_improvement_plans_tenant_id_round_id_branch_rounds"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_improvement_plans_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_plans")),
        sa.UniqueConstraint("round_id", "branch_id", name=op.f("uq_improvement_plans_round_id_branch_id")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_improvement_plans_tenant_id_id")),
    )
    with op.batch_alter_table("improvement_plans", schema=None) as batch_op:
        batch_op.create_index("ix_improvement_plans_branch", ["tenant_id", "branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_improvement_plans_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_improvement_plans_year", ["tenant_id", "year"], unique=False)

    op.create_table(
        "acceptance_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "promote",
                "keep",
                "rectify",
                name="acceptance_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("rectify_by", sa.Date(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=120), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "outcome <> 'rectify' OR rectify_by IS NOT NULL", name=op.f("ck_acceptance_reviews_rectify_by")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plan_id"],
            ["improvement_plans.tenant_id", "improvement_plans.id"],
            name=op.f("fk_acceptance_reviews_tenant_id_plan_id_improvement_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_acceptance_reviews_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_reviews")),
        sa.UniqueConstraint("plan_id", name=op.f("uq_acceptance_reviews_plan_id")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_acceptance_reviews_tenant_id_id")),
    )
    with op.batch_alter_table("acceptance_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acceptance_reviews_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "improvement_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("indicator_key", sa.String(length=60), nullable=True),
        sa.Column("criterion_key", sa.String(length=60), nullable=True),
        sa.Column("lost_points", sa.Integer(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("measure", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=120), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "not_started",
                "in_progress",
                "done",
                name="plan_item_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plan_id"],
            ["improvement_plans.tenant_id", "improvement_plans.id"],
            name=op.f("fk_improvement_items_tenant_id_plan_id_improvement_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_improvement_items_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_items")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_improvement_items_tenant_id_id")),
    )
    with op.batch_alter_table("improvement_items", schema=None) as batch_op:
        batch_op.create_index("ix_improvement_items_deadline", ["tenant_id", "deadline"], unique=False)
        batch_op.create_index("ix_improvement_items_plan", ["tenant_id", "plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_improvement_items_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "acceptance_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question_key", sa.String(length=60), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "met",
                "partly",
                "not_met",
                name="acceptance_verdict",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "review_id"],
            ["acceptance_reviews.tenant_id", "acceptance_reviews.id"],
            name=op.f("fk_acceptance_findings_tenant_id_review_id_acceptance_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_acceptance_findings_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_findings")),
        sa.UniqueConstraint("review_id", "question_key", name=op.f("uq_acceptance_findings_review_id_question_key")),
    )
    with op.batch_alter_table("acceptance_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acceptance_findings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "improvement_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=120), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=120), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "item_id"],
            ["improvement_items.tenant_id", "improvement_items.id"],
            name=op.f("fk_improvement_files_tenant_id_item_id_improvement_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plan_id"],
            ["improvement_plans.tenant_id", "improvement_plans.id"],
            name=op.f("fk_improvement_files_tenant_id_plan_id_improvement_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_improvement_files_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_files")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_improvement_files_storage_key")),
    )
    with op.batch_alter_table("improvement_files", schema=None) as batch_op:
        batch_op.create_index("ix_improvement_files_plan", ["tenant_id", "plan_id", "item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_improvement_files_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("improvement_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_improvement_files_tenant_id"))
        batch_op.drop_index("ix_improvement_files_plan")

    op.drop_table("improvement_files")
    with op.batch_alter_table("acceptance_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acceptance_findings_tenant_id"))

    op.drop_table("acceptance_findings")
    with op.batch_alter_table("improvement_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_improvement_items_tenant_id"))
        batch_op.drop_index("ix_improvement_items_plan")
        batch_op.drop_index("ix_improvement_items_deadline")

    op.drop_table("improvement_items")
    with op.batch_alter_table("acceptance_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acceptance_reviews_tenant_id"))

    op.drop_table("acceptance_reviews")
    with op.batch_alter_table("improvement_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_improvement_plans_year")
        batch_op.drop_index(batch_op.f("ix_improvement_plans_tenant_id"))
        batch_op.drop_index("ix_improvement_plans_branch")

    op.drop_table("improvement_plans")
