"""A per-tenant hash chain over the audit events, and the database roles that keep it append-only.

Adds `chain_id`, `seq` and `hash` to `audit_events` (unique per chain), the `audit_chain_heads`
table, and `report_jobs.audit_head` (the head printed on a report). Every existing event is chained
in id order per chain — the same canonical bytes as `fivestar.audit.chain`, repeated here because a
migration never imports app code (`tests/integration/test_audit_chain.py` checks that the two
agree) — before the columns become NOT NULL. The append-only triggers are lifted only while the
existing rows are chained and are in force again afterwards (SQLite's table is rebuilt to make the
columns NOT NULL, which drops its triggers: they are created again). The roles and grants are not
here: they name a role of the installation, so `fivestar db upgrade` applies them
(`fivestar.dbroles`).

Revision ID: 0004
Revises: 0003
"""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
COLUMNS = (
    "action", "actor_id", "actor_kind", "actor_name", "after", "before",
    "object_id", "object_type", "occurred_at", "reason", "tenant_id",
)

_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("tenant_id", sa.Integer()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("actor_kind", sa.String()),
    sa.column("actor_id", sa.Integer()),
    sa.column("actor_name", sa.String()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("before", sa.JSON()),
    sa.column("after", sa.JSON()),
    sa.column("reason", sa.Text()),
    sa.column("chain_id", sa.Integer()),
    sa.column("seq", sa.Integer()),
    sa.column("hash", sa.String()),
)
_heads = sa.table("audit_chain_heads", sa.column("chain_id", sa.Integer()), sa.column("seq", sa.Integer()),
                  sa.column("hash", sa.String()))


def _canonical(row: Any) -> bytes:
    document = {name: getattr(row, name) for name in COLUMNS}
    when: dt.datetime = row.occurred_at
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    document["occurred_at"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def _triggers(create: bool) -> None:
    """The append-only triggers of 0002: SQLite's are recreated, PostgreSQL's switched on and off."""
    if op.get_bind().dialect.name == "postgresql":
        verb = "ENABLE" if create else "DISABLE"
        op.execute(f"ALTER TABLE audit_events {verb} TRIGGER audit_events_no_update")
        return
    if create:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")


def _chain_existing() -> None:
    bind = op.get_bind()
    heads: dict[int, tuple[int, str]] = {}
    updates: list[dict[str, Any]] = []
    rows = bind.execute(sa.select(_events).order_by(_events.c.id))
    for row in rows:
        chain = 0 if row.tenant_id is None else row.tenant_id
        seq, previous = heads.get(chain, (0, GENESIS))
        seq += 1
        previous = hashlib.sha256(previous.encode("ascii") + _canonical(row)).hexdigest()
        heads[chain] = (seq, previous)
        updates.append({"event": row.id, "chain": chain, "seq": seq, "digest": previous})
    statement = (
        sa.update(_events)
        .where(_events.c.id == sa.bindparam("event"))
        .values(chain_id=sa.bindparam("chain"), seq=sa.bindparam("seq"), hash=sa.bindparam("digest"))
    )
    for start in range(0, len(updates), 5000):
        bind.execute(statement, updates[start:start + 5000])
    heads.setdefault(0, (0, GENESIS))
    op.bulk_insert(_heads, [  # type: ignore[arg-type]
        {"chain_id": chain, "seq": seq, "hash": digest} for chain, (seq, digest) in sorted(heads.items())
    ])


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_audit_chain_heads")),
    )
    with op.batch_alter_table("report_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_head", sa.String(length=80), nullable=True))
    _triggers(create=False)
    op.add_column("audit_events", sa.Column("chain_id", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("chain_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_audit_events_chain_id_seq"), ["chain_id", "seq"])
    _triggers(create=True)


def downgrade() -> None:
    _triggers(create=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_audit_events_chain_id_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("seq")
        batch_op.drop_column("chain_id")
    _triggers(create=True)
    with op.batch_alter_table("report_jobs", schema=None) as batch_op:
        batch_op.drop_column("audit_head")
    op.drop_table("audit_chain_heads")
