"""What the inspectors (督查组) keep: the spot checks they drew, with their seeds.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spot_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_round_id", sa.Integer(), nullable=True),
        sa.Column("branch_round_id", sa.Integer(), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sa.String(length=120), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("branch_count", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("branch_population", sa.Integer(), nullable=False),
        sa.Column("member_population", sa.Integer(), nullable=False),
        sa.Column("branch_ids", sa.JSON(), nullable=False),
        sa.Column("member_ids", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(member_round_id IS NULL) <> (branch_round_id IS NULL)", name=op.f("ck_spot_checks_one_round")
        ),
        sa.CheckConstraint("branch_count >= 0 AND member_count >= 0", name=op.f("ck_spot_checks_counts")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_round_id"],
            ["member_rounds.tenant_id", "member_rounds.id"],
            name=op.f("fk_spot_checks_tenant_id_member_round_id_member_rounds"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "branch_round_id"],
            ["branch_rounds.tenant_id", "branch_rounds.id"],
            name=op.f("fk_spot_checks_tenant_id_branch_round_id_branch_rounds"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_spot_checks_tenant_id_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_spot_checks_tenant_id_tenants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_checks")),
    )
    with op.batch_alter_table("spot_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spot_checks_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_spot_checks_tenant_drawn", ["tenant_id", "drawn_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spot_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_spot_checks_tenant_drawn")
        batch_op.drop_index(batch_op.f("ix_spot_checks_tenant_id"))
    op.drop_table("spot_checks")
