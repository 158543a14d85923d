"""Writing audit events: the one place events are made, and so the one place they are chained.

`record` and `record_many` build each event's canonical bytes, reserve its chain position and hash
with `fivestar.audit.chain.append_links` (one conditional UPDATE of the chain's head per call), and
insert the events in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.orm import Session

from fivestar.audit.chain import append_links, canonical_bytes, cast_table, chain_of
from fivestar.audit.models import AuditEvent
from fivestar.db import utcnow
from fivestar.tenancy import current_tenant_id


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: an account, an operator, the command line or the system (a worker)."""

    kind: str
    id: int | None
    name: str


SYSTEM = Actor("system", None, "system")
_current_actor: ContextVar[Actor] = ContextVar("fivestar_actor", default=SYSTEM)


def current_actor() -> Actor:
    return _current_actor.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _current_actor.set(actor)
    try:
        yield
    finally:
        _current_actor.reset(token)


def set_actor(actor: Actor) -> Any:
    return _current_actor.set(actor)


def reset_actor(token: Any) -> None:
    _current_actor.reset(token)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    """`value` as JSON data: enums by value, dates as ISO text, decimals as text, any mapping or
    sequence converted throughout. Exact JSON types return at once (every write path runs this)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {str(key): item if type(item) in _PLAIN else _jsonable(item) for key, item in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    return value


def snapshot(obj: Any, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The column values of a model instance as JSON-ready data (for `before` and `after`)."""
    if fields is None:
        fields = [attr.key for attr in inspect(obj).mapper.column_attrs]
    skip = {"created_at", "updated_at", "password_hash", "version"}
    return {name: _jsonable(getattr(obj, name)) for name in fields if name not in skip}


def _object_ref(obj: Any) -> tuple[str, str | None]:
    table = getattr(obj, "__tablename__", type(obj).__name__.lower())
    identity = getattr(obj, "id", None)
    return str(table), None if identity is None else str(identity)


_EVENTS = cast_table(AuditEvent.__table__)
_INSERT_ONE = insert(_EVENTS)
_NEW_EVENT = AuditEvent.__mapper__.class_manager.new_instance


def record(
    session: Session,
    action: str,
    obj: Any = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    tenant_id: int | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction. Flushes `obj` first so it has an id."""
    if obj is not None:
        if getattr(obj, "id", None) is None:
            session.flush()
        ref_type, ref_id = _object_ref(obj)
        object_type = object_type or ref_type
        object_id = ref_id if object_id is None else object_id
    actor = current_actor()
    owner = tenant_id if tenant_id is not None else current_tenant_id()
    row: dict[str, Any] = {
        "tenant_id": owner,
        "occurred_at": utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": actor.name,
        "action": action,
        "object_type": object_type or "-",
        "object_id": None if object_id is None else str(object_id),
        "before": _jsonable(before) if before is not None else None,
        "after": _jsonable(after) if after is not None else None,
        "reason": reason or None,
    }
    chain_id = chain_of(owner)
    connection = session.connection()
    ((seq, digest),) = append_links(connection, chain_id, [canonical_bytes(row)])
    row.update(chain_id=chain_id, seq=seq, hash=digest)
    # A Core INSERT on the session's connection, not the unit of work: this is on every write path.
    # The event is written at once (nothing to flush later); the object returned is not in the session.
    inserted = connection.execute(_INSERT_ONE, row).inserted_primary_key
    row["id"] = inserted[0] if inserted is not None else None
    # The stored row as an object for the caller (who may want its id), made without the ORM's
    # per-attribute events: it is written already and never added to the session.
    event: AuditEvent = _NEW_EVENT()
    event.__dict__.update(row)
    return event


def record_many(
    session: Session,
    action: str,
    object_type: str,
    changes: Iterable[tuple[str | int, Mapping[str, Any] | None, Mapping[str, Any] | None]],
    *,
    reason: str | None = None,
    tenant_id: int | None = None,
) -> int:
    """Append one event per `(object_id, before, after)` with a single multi-row INSERT."""
    actor = current_actor()
    when = utcnow()
    owner = tenant_id if tenant_id is not None else current_tenant_id()
    rows = [
        {
            "tenant_id": owner,
            "occurred_at": when,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_name": actor.name,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "before": _jsonable(before) if before is not None else None,
            "after": _jsonable(after) if after is not None else None,
            "reason": reason or None,
        }
        for object_id, before, after in changes
    ]
    if rows:
        chain_id = chain_of(owner)
        links = append_links(session.connection(), chain_id, [canonical_bytes(row) for row in rows])
        for row, (seq, digest) in zip(rows, links, strict=True):
            row["chain_id"] = chain_id
            row["seq"] = seq
            row["hash"] = digest
        session.execute(insert(AuditEvent), rows)
    return len(rows)
