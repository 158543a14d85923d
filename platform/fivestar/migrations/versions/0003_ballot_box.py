"""The ballot box: ballots wait here while voting is open, and leave it shuffled when voting closes.

Besides the table, this revision scrubs what earlier versions left behind (README, "The 议星 ballot:
what stays secret"): until now a ballot was written straight to `ballots` in the transaction that used
its code, so on PostgreSQL both rows carried the same transaction id, and row order followed the order
of casting on both databases.

* Ballots of meetings still voting move into the box (unsealed — this migration has no secret key; a
  version byte says so — and in random order); the close seals nothing more and counts them as usual.
* Every other ballot and every code row is written anew in random order (new transaction id, new
  place on disk).
* PostgreSQL: `ballots`, `ballot_codes` and `ballot_box` are then rewritten by VACUUM FULL (outside the
  transaction: VACUUM cannot run inside one), so no dead row version with an old transaction id or
  its bytes survives. SQLite: `secure_delete` zeroes what the DELETEs free.

Revision ID: 0003
Revises: 0002
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if not postgres:
        op.execute("PRAGMA secure_delete = ON")
    op.create_table('ballot_box',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'meeting_id'], ['ballot_meetings.tenant_id', 'ballot_meetings.id'], name=op.f('fk_ballot_box_tenant_id_meeting_id_ballot_meetings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ballot_box_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballot_box'))
    )
    with op.batch_alter_table('ballot_box', schema=None) as batch_op:
        batch_op.create_index('ix_ballot_box_meeting', ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ballot_box_tenant_id'), ['tenant_id'], unique=False)

    _scrub(bind)
    if postgres:
        with op.get_context().autocommit_block():
            for table in ("ballots", "ballot_codes", "ballot_box"):
                op.execute(f"VACUUM FULL {table}")


def _scrub(bind: sa.Connection) -> None:
    import json

    rng = secrets.SystemRandom()
    voting = {
        int(row[0])
        for row in bind.execute(sa.text("SELECT id FROM ballot_meetings WHERE state = 'voting'"))
    }
    ballots = [dict(row._mapping) for row in bind.execute(
        sa.text('SELECT tenant_id, meeting_id, "group", level, ratings FROM ballots')
    )]
    codes = [dict(row._mapping) for row in bind.execute(
        sa.text('SELECT id, tenant_id, meeting_id, "group", code_hash, used FROM ballot_codes')
    )]
    if not ballots and not codes:
        return
    bind.execute(sa.text("DELETE FROM ballots"))
    bind.execute(sa.text("DELETE FROM ballot_codes"))
    rng.shuffle(ballots)
    rng.shuffle(codes)
    boxed, counted = [], []
    for row in ballots:
        ratings = row["ratings"]
        if isinstance(ratings, str):
            ratings = json.loads(ratings)
        if int(row["meeting_id"]) in voting:
            body = json.dumps({"g": row["group"], "l": row["level"], "r": ratings}, sort_keys=True,
                              separators=(",", ":")).encode("utf-8")
            boxed.append({"id": secrets.token_hex(16), "tenant_id": row["tenant_id"],
                          "meeting_id": row["meeting_id"], "sealed": b"\x00" + body})
        else:
            counted.append({"id": secrets.token_hex(16), "tenant_id": row["tenant_id"],
                            "meeting_id": row["meeting_id"], "group": row["group"], "level": row["level"],
                            "ratings": None if ratings is None else json.dumps(ratings)})
    if counted:
        bind.execute(
            sa.text('INSERT INTO ballots (id, tenant_id, meeting_id, "group", level, ratings) '
                    'VALUES (:id, :tenant_id, :meeting_id, :group, :level, :ratings)'),
            counted,
        )
    if boxed:
        bind.execute(
            sa.text("INSERT INTO ballot_box (id, tenant_id, meeting_id, sealed) VALUES (:id, :tenant_id, :meeting_id, :sealed)"),
            boxed,
        )
    if codes:
        bind.execute(
            sa.text('INSERT INTO ballot_codes (id, tenant_id, meeting_id, "group", code_hash, used) '
                    'VALUES (:id, :tenant_id, :meeting_id, :group, :code_hash, :used)'),
            codes,
        )


def downgrade() -> None:
    """Ballots still in the box can only be counted with the instance's key: refuse to lose them."""
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM ballot_box")).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} ballots are waiting in the ballot box of meetings still voting: close those meetings "
            "(结束投票) before downgrading below revision 0003"
        )
    with op.batch_alter_table('ballot_box', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ballot_box_tenant_id'))
        batch_op.drop_index('ix_ballot_box_meeting')
    op.drop_table('ballot_box')
