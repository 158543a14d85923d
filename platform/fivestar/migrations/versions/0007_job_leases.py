"""One lease for every job queue: a lease token on each queue's rows (fivestar.kernel.lease).

A worker's claim writes a new random token; every later write of that worker (progress, done, a
retry) is conditional on it, so a worker whose lease was taken back cannot settle the row. Rows
claimed before the upgrade have no token: the sweep still takes them back once their claim is old
(`lease_token IS NULL`), and new claims all get one.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_TABLES = ("outbox_messages", "due_items", "report_jobs", "export_deliveries")


def upgrade() -> None:
    for table in QUEUE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in reversed(QUEUE_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("lease_token")
