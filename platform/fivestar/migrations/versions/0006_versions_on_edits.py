"""Versions on edited records: organisations and accounts carry the version their edit forms send
(optimistic locking, fivestar.kernel.versioning). Every existing row starts at 1.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("organisations", "accounts")


# Both tables are parents of many foreign keys, so on SQLite the column is added and dropped in place
# (ALTER TABLE ... ADD/DROP COLUMN, SQLite 3.35+), never by batch mode's copy-and-rename: dropping the
# old table would fail its children's foreign keys once rows exist.


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    for table in reversed(TABLES):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN version")
        else:
            op.drop_column(table, "version")
