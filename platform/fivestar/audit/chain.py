"""The audit events' hash chains: canonical bytes, links, the head, and verification.

One chain per tenant (`chain_id` = the tenant's id) and one for the platform's own events, whose
`tenant_id` is NULL (`chain_id` 0). Event `seq` n of a chain has

    hash(n) = SHA-256( hash(n-1) as 64 lower-case hex ASCII characters  ‖  canonical bytes of n )

with hash(0) = 64 × "0". The canonical bytes are the UTF-8 JSON object of every column but `id`,
`chain_id`, `seq` and `hash` — keys sorted, no whitespace, non-ASCII characters as themselves,
times as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (README.md "The audit trail" has a worked example).

Appending never takes a lock before it needs one: the head row is advanced with a conditional
UPDATE (`… WHERE chain_id = :c AND seq = :expected AND hash = :expected_hash`) against the head this
process last saw. If another transaction moved the head in between, no row matches; the head is
then read again *with* a lock (FOR UPDATE on PostgreSQL, a no-op UPDATE that takes SQLite's write
lock) and the UPDATE made against it, which cannot fail. The unique `(chain_id, seq)` constraint is
the database's own guarantee against a fork; a rolled-back savepoint rolls the head back with its
events, so it leaves no gap (the stale guess only costs the re-read).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, Table, Text, bindparam, cast, func, select, text, type_coerce, update
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditChainHead, AuditEvent
from fivestar.i18n import _


def cast_table(clause: Any) -> Table:
    """A mapped class's `__table__` as the Table it is (typed FromClause by SQLAlchemy's stubs)."""
    assert isinstance(clause, Table)
    return clause


GENESIS = "0" * 64
PLATFORM_CHAIN = 0

# The columns the canonical bytes are made of, in the JSON's (sorted) key order.
CANONICAL_COLUMNS = (
    "action",
    "actor_id",
    "actor_kind",
    "actor_name",
    "after",
    "before",
    "object_id",
    "object_type",
    "occurred_at",
    "reason",
    "tenant_id",
)

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_of(tenant_id: int | None) -> int:
    return PLATFORM_CHAIN if tenant_id is None else tenant_id


def canonical_time(value: dt.datetime) -> str:
    """UTC with microseconds and a Z: what both databases store and give back exactly."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"  # as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), faster


def canonical_bytes(row: Mapping[str, Any]) -> bytes:
    """The bytes an event's link hashes: every column but id/chain_id/seq/hash, as sorted JSON."""
    document = {name: row[name] for name in CANONICAL_COLUMNS}
    document["occurred_at"] = canonical_time(row["occurred_at"])
    return _encoder.encode(document).encode("utf-8")


def link(previous: str, canonical: bytes) -> str:
    return hashlib.sha256(previous.encode("ascii") + canonical).hexdigest()


# --- appending ----------------------------------------------------------------------------------

# The head each chain had when this process last moved it: a guess the conditional UPDATE checks,
# so a wrong one (another process wrote, a transaction rolled back) costs one re-read, never a fork.
_seen_heads: dict[tuple[int, int], tuple[int, str]] = {}
_seen_lock = threading.Lock()

_heads = cast_table(AuditChainHead.__table__)
# Built once, so SQLAlchemy compiles them once (these run on every write path of the product).
_ADVANCE = (
    update(_heads)
    .where(_heads.c.chain_id == bindparam("c"), _heads.c.seq == bindparam("old_seq"),
           _heads.c.hash == bindparam("old_hash"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_READ_LOCKED = select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain_id == bindparam("c")).with_for_update()
# SQLite has no row locks: a write that changes nothing takes the database's write lock, so the
# read it returns is the latest commit and nobody can move the head before this transaction ends.
_READ_LOCKED_SQLITE = text("UPDATE audit_chain_heads SET seq = seq WHERE chain_id = :c RETURNING seq, hash")


def _engine_key(connection: Connection) -> int:
    return id(connection.engine)


def _locked_head(connection: Connection, chain_id: int) -> tuple[int, str] | None:
    """The chain's head as committed now, locked for this transaction (None: no head row yet)."""
    statement = _READ_LOCKED if connection.dialect.name == "postgresql" else _READ_LOCKED_SQLITE
    row = connection.execute(statement, {"c": chain_id}).one_or_none()
    return None if row is None else (int(row[0]), str(row[1]))


def _create_head(connection: Connection, chain_id: int) -> None:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(_heads).on_conflict_do_nothing(index_elements=["chain_id"])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(_heads).on_conflict_do_nothing(index_elements=["chain_id"])
    connection.execute(statement.values(chain_id=chain_id, seq=0, hash=GENESIS))


_ADVANCE_SQLITE = "UPDATE audit_chain_heads SET seq = ?, hash = ? WHERE chain_id = ? AND seq = ? AND hash = ?"


def _advance(connection: Connection, chain_id: int, old: tuple[int, str], new: tuple[int, str]) -> int:
    """Move the head from `old` to `new` if it is still at `old`; the rows changed (1 or 0).

    On SQLite the statement goes straight to the driver's cursor, inside the transaction the
    connection has begun: SQLite runs it in a few microseconds, SQLAlchemy's execution path around
    it cost more than the rest of the append (bench/audit.py)."""
    if connection.dialect.name == "sqlite":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_ADVANCE_SQLITE, (new[0], new[1], chain_id, old[0], old[1]))
            return int(cursor.rowcount)
        finally:
            cursor.close()
    result = connection.execute(_ADVANCE, {
        "c": chain_id, "old_seq": old[0], "old_hash": old[1], "new_seq": new[0], "new_hash": new[1],
    })
    return int(result.rowcount)


def append_links(connection: Connection, chain_id: int, canonicals: Sequence[bytes]) -> list[tuple[int, str]]:
    """Reserve the next positions of `chain_id` for these events; return each one's (seq, hash).

    Runs one conditional UPDATE of the head when this process's guess is right, else a locked read
    and the UPDATE (plus an INSERT of the head the first time a chain is used). The caller inserts
    the events in the same transaction (`connection` is the session's: `session.connection()`).
    """
    key = (_engine_key(connection), chain_id)
    guess = _seen_heads.get(key)
    for _attempt in range(4):
        if guess is None:
            guess = _locked_head(connection, chain_id)
            if guess is None:
                _create_head(connection, chain_id)
                guess = _locked_head(connection, chain_id)
                if guess is None:  # pragma: no cover - the INSERT above guarantees the row
                    raise RuntimeError(f"audit chain {chain_id} has no head")
        seq, previous = guess
        links: list[tuple[int, str]] = []
        for canonical in canonicals:
            seq += 1
            previous = link(previous, canonical)
            links.append((seq, previous))
        if _advance(connection, chain_id, guess, (seq, previous)) == 1:
            with _seen_lock:
                _seen_heads[key] = (seq, previous)
            return links
        guess = None
    raise RuntimeError(f"audit chain {chain_id}: the head kept moving")  # pragma: no cover - see above


# --- reading the head ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @property
    def short(self) -> str:
        return f"{self.hash[:16]}…"


def current_head(session: Session, tenant_id: int | None) -> Head:
    """The chain's head as this transaction sees it (0 and 64 zeros before the first event)."""
    row = session.execute(
        select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.chain_id == chain_of(tenant_id))
    ).one_or_none()
    return Head(0, GENESIS) if row is None else Head(int(row[0]), str(row[1]))


def parse_head(value: str) -> Head:
    """`N:HASH` as printed on reports; ValueError when it is not that."""
    number, sep, digest = value.strip().partition(":")
    digest = digest.lower()
    if not sep or not number.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("expected N:HASH (a position and 64 hex digits)")
    return Head(int(number), digest)


# --- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first place a chain does not hold."""

    problem: str  # hash mismatch | missing seq | unexpected event | head mismatch
    seq: int | None
    event_id: int | None
    occurred_at: dt.datetime | None
    action: str | None
    detail: str


@dataclass(frozen=True)
class Verification:
    events: int
    head: Head  # the last link recomputed
    stored_head: Head
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None


_VERIFY_COLUMNS = ("id", "seq", "hash", *CANONICAL_COLUMNS)


def _raw_columns(dialect: str) -> list[Any]:
    """The verified columns as the database stores them: JSON as its text (written canonical by
    `fivestar.db.json_text`), the time as text, so no row pays for SQLAlchemy's type processing."""
    table = AuditEvent.__table__
    columns: list[Any] = []
    for name in _VERIFY_COLUMNS:
        column: Any = table.c[name]
        if name in ("before", "after"):
            column = cast(column, Text) if dialect == "postgresql" else type_coerce(column, Text)
        elif name == "occurred_at":
            if dialect == "postgresql":
                column = func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            else:
                column = type_coerce(column, String)
        columns.append(column.label(name))
    return columns


def _rows(connection: Connection, chain_id: int, batch: int) -> Generator[Sequence[Any], None, None]:
    table = AuditEvent.__table__
    statement = (
        select(*_raw_columns(connection.dialect.name))
        .where(table.c.chain_id == chain_id)
        .order_by(table.c.seq, table.c.id)
        .execution_options(yield_per=batch, stream_results=True)
    )
    result = connection.execute(statement)
    try:
        for partition in result.partitions():
            yield from partition
    finally:
        result.close()  # a server-side cursor left open when verification stops early


def _stored_time(raw: str) -> str:
    """`2026-03-01 08:30:00.120000` (SQLite) or the canonical text already (PostgreSQL's to_char)."""
    if len(raw) == 26 and raw[10] == " ":
        return f"{raw[:10]}T{raw[11:]}Z"
    return raw


def _as_time(raw: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _slow_canonical(row: Sequence[Any]) -> bytes:
    """The documented definition itself: parse what is stored, serialise it canonically."""
    document = dict(zip(CANONICAL_COLUMNS, row[3:], strict=True))
    for name in ("before", "after"):
        document[name] = None if document[name] is None else json.loads(document[name])
    document["occurred_at"] = _as_time(document["occurred_at"])
    return canonical_bytes(document)


def verify_chain(connection: Connection, tenant_id: int | None, *, batch: int = 5000) -> Verification:
    """Recompute the chain from its first event; stop at the first event that does not fit.

    Reads plain rows (no ORM objects, no type processing) in batches from a server-side cursor, so
    memory stays flat. Each event's canonical bytes are first assembled from the stored text (JSON
    columns are written canonical); only when that does not give the stored hash is the event
    parsed and serialised by the definition (`canonical_bytes`), so a JSON text written some other
    way (events before 0004, a hand-made row) is judged by the definition, never by its spelling.
    """
    chain_id = chain_of(tenant_id)
    stored = connection.execute(
        select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.chain_id == chain_id)
    ).one_or_none()
    stored_head = Head(0, GENESIS) if stored is None else Head(int(stored[0]), str(stored[1]))
    string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str
    sha256 = hashlib.sha256
    expected = 1
    previous = GENESIS
    count = 0
    broken: Break | None = None
    rows = _rows(connection, chain_id, batch)
    for row in rows:
        (event_id, seq, stored_hash, action, actor_id, actor_kind, actor_name, after, before, object_id,
         object_type, occurred_at, reason, owner) = row
        if seq != expected or seq > stored_head.seq:
            when = _as_time(occurred_at)
            if seq < expected:
                broken = Break("unexpected event", seq, event_id, when, action, f"a second event at position {seq}")
            elif seq > expected:
                broken = Break("missing seq", expected, event_id, when, action,
                               f"position {expected} is missing (next is {seq})")
            else:
                broken = Break("unexpected event", seq, event_id, when, action,
                               f"beyond the chain's head {stored_head.seq}")
            break
        text_form = "".join((
            '{"action":', string(action),
            ',"actor_id":', "null" if actor_id is None else str(actor_id),
            ',"actor_kind":', string(actor_kind),
            ',"actor_name":', string(actor_name),
            ',"after":', "null" if after is None else after,
            ',"before":', "null" if before is None else before,
            ',"object_id":', "null" if object_id is None else string(object_id),
            ',"object_type":', string(object_type),
            ',"occurred_at":"', _stored_time(occurred_at),
            '","reason":', "null" if reason is None else string(reason),
            ',"tenant_id":', "null" if owner is None else str(owner),
            "}",
        ))
        computed = sha256(previous.encode("ascii") + text_form.encode("utf-8")).hexdigest()
        if computed != stored_hash:
            computed = sha256(previous.encode("ascii") + _slow_canonical(row)).hexdigest()
            if computed != stored_hash:
                broken = Break("hash mismatch", seq, event_id, _as_time(occurred_at), action,
                               f"stored {stored_hash}, recomputed {computed}")
                break
        previous = computed
        expected += 1
        count += 1
    rows.close()
    head = Head(expected - 1, previous)
    if broken is None and head != stored_head:
        broken = Break("head mismatch", stored_head.seq, None, None, None,
                       f"the head row says {stored_head}, the events end at {head}")
    return Verification(count, head, stored_head, broken)


def check_against(connection: Connection, tenant_id: int | None, outside: Head) -> str | None:
    """None when event `outside.seq` of the chain has `outside.hash`; else what is wrong."""
    stored = connection.execute(
        select(AuditEvent.hash).where(AuditEvent.chain_id == chain_of(tenant_id), AuditEvent.seq == outside.seq)
    ).scalars().all()
    if outside.seq == 0:
        return None if outside.hash == GENESIS else "position 0 is the empty chain (64 zeros)"
    if not stored:
        return f"event {outside.seq} does not exist"
    if len(stored) > 1 or stored[0] != outside.hash:
        return f"event {outside.seq} has hash {stored[0]}, not {outside.hash}"
    return None


_PINNED = "fivestar.audit.pinned_head"


@contextmanager
def pinned_head(session: Session, tenant_id: int | None) -> Iterator[Head]:
    """Read the head once and let everything written inside (a report's pages and workbook sheets,
    the job row that remembers it) print that same head, whatever commits meanwhile."""
    head = current_head(session, tenant_id)
    session.info[_PINNED] = (tenant_id, head)
    try:
        yield head
    finally:
        session.info.pop(_PINNED, None)


def report_head(session: Session, tenant_id: int | None) -> Head:
    """The head a report prints: the pinned one if a report job pinned it, else the current one."""
    pinned = session.info.get(_PINNED)
    if pinned is not None and pinned[0] == tenant_id:
        return pinned[1]  # type: ignore[no-any-return]
    return current_head(session, tenant_id)


def head_label(head: Head) -> str:
    """`审计链 第 N 条 · <first 16 hex>…` — how reports print it (the full hash is printed too)."""
    return _("审计链 第 %(n)s 条 · %(short)s", n=head.seq, short=head.short)
