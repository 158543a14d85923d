"""The audit hash chain: every event linked, no fork or gap under concurrency or rolled-back
savepoints, `fivestar audit verify` catching edits, deletions and insertions made behind the
triggers' back, `--head` catching a rewritten history, and the migration chaining old events."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session

from fivestar import audit, dbcli
from fivestar.audit.chain import GENESIS, canonical_bytes, current_head, link, verify_chain
from fivestar.audit.models import AuditEvent
from fivestar.audit.recording import Actor, acting_as
from fivestar.db import make_engine
from fivestar.tenancy import tenant_context

REPO = Path(__file__).resolve().parents[2]
RULES = (REPO / "tenants" / "notice-illustrative.toml").read_text(encoding="utf-8")


def _seqs(session: Session, tenant_id: int) -> list[int]:
    statement = select(AuditEvent.seq).where(AuditEvent.chain_id == tenant_id).order_by(AuditEvent.seq)
    return list(session.scalars(statement))


def test_every_event_is_a_link_of_its_tenants_chain(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant()
    other = create_tenant()
    with tenant_context(tenant.id), acting_as(Actor("account", 3, "张三")):
        audit.record(session, "test.one", object_type="thing", object_id=1, before={"n": 1.5}, after={"n": "二"})
        audit.record_many(session, "test.many", "thing", [(2, None, {"k": [1, 2]}), (3, {"z": 1, "a": None}, None)])
        audit.record(session, "test.two", object_type="thing", reason="因为")
    session.flush()
    session.expire_all()  # read back what the database stored, not the objects in memory
    seqs = _seqs(session, tenant.id)
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 6
    result = verify_chain(session.connection(), tenant.id)
    assert result.intact, result.broken
    assert result.events == len(seqs)
    assert result.head == current_head(session, tenant.id)
    # the other tenant's chain is its own, starting at 1
    assert _seqs(session, other.id)[0] == 1
    assert verify_chain(session.connection(), other.id).intact
    # the hash is exactly the documented formula
    first = session.scalars(select(AuditEvent).where(AuditEvent.chain_id == tenant.id, AuditEvent.seq == 1)).one()
    document = {
        "action": first.action, "actor_id": first.actor_id, "actor_kind": first.actor_kind,
        "actor_name": first.actor_name, "after": first.after, "before": first.before,
        "object_id": first.object_id, "object_type": first.object_type,
        "occurred_at": first.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "reason": first.reason,
        "tenant_id": first.tenant_id,
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert first.hash == hashlib.sha256(GENESIS.encode() + raw).hexdigest()


def test_json_is_stored_in_its_canonical_spelling(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    """What lets verify take the stored text as it is (the fast path of verify_chain)."""
    tenant = create_tenant()
    with tenant_context(tenant.id):
        event = audit.record(session, "test.json", object_type="thing", after={"z": 1, "a": "中", "m": [1.5, None]})
    postgres = session.get_bind().dialect.name == "postgresql"
    query = "SELECT after{} FROM audit_events WHERE id = :id".replace("{}", "::text" if postgres else "")
    stored = session.execute(text(query), {"id": event.id}).scalar_one()
    assert stored == '{"a":"中","m":[1.5,null],"z":1}'


def test_platform_events_form_their_own_chain(session) -> None:  # type: ignore[no-untyped-def]
    before = current_head(session, None)
    audit.record(session, "operator.test", object_type="operator", object_id=1, tenant_id=None)
    audit.record(session, "operator.test", object_type="operator", object_id=2, tenant_id=None)
    session.flush()
    after = current_head(session, None)
    assert after.seq == before.seq + 2
    assert verify_chain(session.connection(), None).intact


def test_a_rolled_back_savepoint_leaves_no_gap(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant()
    with tenant_context(tenant.id):
        nested = session.begin_nested()
        audit.record(session, "test.undone", object_type="thing", object_id=1)
        audit.record_many(session, "test.undone", "thing", [(2, None, None)])
        session.flush()
        nested.rollback()
        audit.record(session, "test.kept", object_type="thing", object_id=3)
        audit.record_many(session, "test.kept", "thing", [(4, None, None)])
    session.flush()
    seqs = _seqs(session, tenant.id)
    assert seqs == list(range(1, len(seqs) + 1))
    assert "test.undone" not in set(session.scalars(select(AuditEvent.action).where(AuditEvent.chain_id == tenant.id)))
    assert verify_chain(session.connection(), tenant.id).intact


def test_canonical_bytes_and_links_are_the_documented_example() -> None:
    import datetime as dt

    row = {
        "tenant_id": 1, "occurred_at": dt.datetime(2026, 3, 1, 8, 30, 0, 120000, tzinfo=dt.UTC),
        "actor_kind": "account", "actor_id": 7, "actor_name": "张三", "action": "member.update",
        "object_type": "members", "object_id": "42", "before": {"name": "李四"}, "after": {"name": "李斯"},
        "reason": None,
    }
    canonical = canonical_bytes(row)
    assert canonical == (
        '{"action":"member.update","actor_id":7,"actor_kind":"account","actor_name":"张三",'
        '"after":{"name":"李斯"},"before":{"name":"李四"},"object_id":"42","object_type":"members",'
        '"occurred_at":"2026-03-01T08:30:00.120000Z","reason":null,"tenant_id":1}'
    ).encode()
    # the value README.md's worked example prints
    first = link(GENESIS, canonical)
    assert first == hashlib.sha256(GENESIS.encode() + canonical).hexdigest()
    assert first == "6654092787a6035e861e5f5868482c50a198afc9162e180a090c73f51866d6b8"


# --- committed data: concurrency, the command, tampering -----------------------------------------


@pytest.fixture
def maker(cli_engine: Engine) -> Callable[[], Session]:
    def make() -> Session:
        return Session(cli_engine)

    return make


@pytest.fixture
def tenant(maker: Callable[[], Session]) -> Iterator[tuple[int, str]]:
    from fivestar.tenants.services import create_tenant

    slug = f"chain-{uuid.uuid4().hex[:8]}"
    with maker() as session:
        created = create_tenant(session, slug=slug, name=f"链测试 {slug}", rules_toml=RULES)
        session.flush()
        with tenant_context(created.id):
            for number in range(5):
                audit.record(session, "test.seed", object_type="thing", object_id=number, after={"n": number})
        session.commit()
        yield created.id, slug


def test_concurrent_appends_of_one_tenant_make_one_dense_chain(maker, tenant) -> None:  # type: ignore[no-untyped-def]
    tenant_id, _slug = tenant
    threads, per_thread = 6, 12
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait()
            for number in range(per_thread):
                with maker() as session, tenant_context(tenant_id):
                    audit.record(session, "test.concurrent", object_type="thing", object_id=f"{worker}-{number}")
                    if number % 3 == 0:
                        changes = [(f"{worker}-{number}-m", None, None)]
                        audit.record_many(session, "test.concurrent.many", "thing", changes)
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(worker,)) for worker in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    with maker() as session:
        seqs = _seqs(session, tenant_id)
        written = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("test.concurrent%"),
                                                               AuditEvent.chain_id == tenant_id)
        )
        assert written == threads * (per_thread + 4)
        assert seqs == list(range(1, len(seqs) + 1))
        assert verify_chain(session.connection(), tenant_id).intact


def _behind_the_triggers(engine: Engine, statement: str, **params: object) -> None:
    """What someone with the owner's role could do: lift the append-only triggers and write."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            connection.execute(text(statement), params)
            connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
            connection.execute(text("DROP TRIGGER audit_events_no_delete"))
            connection.execute(text(statement), params)
            connection.execute(text(
                "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"))
            connection.execute(text(
                "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"))


def _event(engine: Engine, tenant_id: int, seq: int) -> tuple[int, str]:
    with engine.connect() as connection:
        row = connection.execute(
            select(AuditEvent.id, AuditEvent.action).where(AuditEvent.chain_id == tenant_id, AuditEvent.seq == seq)
        ).one()
    return int(row[0]), str(row[1])


def test_verify_passes_an_intact_chain_and_head_prints_it(run, tenant, cli_engine) -> None:  # type: ignore[no-untyped-def]
    tenant_id, slug = tenant
    result = run("audit", "verify", slug)
    assert result.exit_code == 0, result.output
    with Session(cli_engine) as session:
        head = current_head(session, tenant_id)
    assert f"head {head}" in result.output
    printed = run("audit", "head", slug)
    assert printed.exit_code == 0 and printed.output.strip() == str(head)
    assert run("audit", "verify", slug, "--head", str(head)).exit_code == 0
    assert run("audit", "verify", "no-such-district").exit_code == 2
    assert run("audit", "verify", slug, "--head", "12:nothex").exit_code == 2


def test_verify_names_an_edited_event(run, tenant, cli_engine) -> None:  # type: ignore[no-untyped-def]
    tenant_id, slug = tenant
    event_id, action = _event(cli_engine, tenant_id, 3)
    _behind_the_triggers(cli_engine, "UPDATE audit_events SET actor_name = 'someone else' WHERE id = :id", id=event_id)
    result = run("audit", "verify", slug)
    assert result.exit_code == 1
    assert "at seq 3: hash mismatch" in result.output
    assert f"event id {event_id}" in result.output and f"action {action}" in result.output


def test_verify_names_a_deleted_event(run, tenant, cli_engine) -> None:  # type: ignore[no-untyped-def]
    tenant_id, slug = tenant
    event_id, _action = _event(cli_engine, tenant_id, 4)
    next_id, _next = _event(cli_engine, tenant_id, 5)
    _behind_the_triggers(cli_engine, "DELETE FROM audit_events WHERE id = :id", id=event_id)
    result = run("audit", "verify", slug)
    assert result.exit_code == 1
    assert "at seq 4: missing seq" in result.output and f"event id {next_id}" in result.output


def test_verify_names_the_last_event_deleted_as_a_head_mismatch(run, tenant, cli_engine) -> None:  # type: ignore[no-untyped-def]
    tenant_id, slug = tenant
    with Session(cli_engine) as session:
        head = current_head(session, tenant_id)
    event_id, _action = _event(cli_engine, tenant_id, head.seq)
    _behind_the_triggers(cli_engine, "DELETE FROM audit_events WHERE id = :id", id=event_id)
    result = run("audit", "verify", slug)
    assert result.exit_code == 1 and f"at seq {head.seq}: head mismatch" in result.output


def test_verify_names_an_inserted_event(run, tenant, cli_engine) -> None:  # type: ignore[no-untyped-def]
    tenant_id, slug = tenant
    with Session(cli_engine) as session:
        head = current_head(session, tenant_id)
    _behind_the_triggers(
        cli_engine,
        "INSERT INTO audit_events (tenant_id, occurred_at, actor_kind, actor_name, action, object_type, "
        "chain_id, seq, hash) VALUES (:t, :when, 'account', 'intruder', 'member.update', 'members', :t, :seq, :h)",
        t=tenant_id, when="2026-01-01 00:00:00", seq=head.seq + 1, h="f" * 64,
    )
    result = run("audit", "verify", slug)
    assert result.exit_code == 1
    assert f"at seq {head.seq + 1}: unexpected event" in result.output and "action member.update" in result.output


def test_head_catches_a_history_rewritten_and_rehashed(run, tenant, cli_engine) -> None:  # type: ignore[no-untyped-def]
    tenant_id, slug = tenant
    with Session(cli_engine) as session:
        printed = current_head(session, tenant_id)
    event_id, _action = _event(cli_engine, tenant_id, 2)
    _behind_the_triggers(cli_engine, "UPDATE audit_events SET reason = 'rewritten' WHERE id = :id", id=event_id)
    _rehash(cli_engine, tenant_id)
    assert run("audit", "verify", slug).exit_code == 0  # consistent in itself…
    result = run("audit", "verify", slug, "--head", str(printed))
    assert result.exit_code == 1 and f"event {printed.seq} has hash" in result.output  # …but not with the report


def _rehash(engine: Engine, tenant_id: int) -> None:
    """An attacker recomputing every link and the head after an edit."""
    columns = [AuditEvent.id, *(getattr(AuditEvent, name) for name in (
        "tenant_id", "occurred_at", "actor_kind", "actor_id", "actor_name", "action", "object_type",
        "object_id", "before", "after", "reason"))]
    with engine.connect() as connection:
        statement = select(*columns).where(AuditEvent.chain_id == tenant_id).order_by(AuditEvent.seq)
        rows = connection.execute(statement).all()
    previous, statements = GENESIS, []
    for row in rows:
        previous = link(previous, canonical_bytes(row._mapping))
        statements.append((row.id, previous))
    for event_id, digest in statements:
        _behind_the_triggers(engine, "UPDATE audit_events SET hash = :h WHERE id = :id", h=digest, id=event_id)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_chain_heads SET hash = :h WHERE chain_id = :c"),
                           {"h": previous, "c": tenant_id})


def test_the_migration_chains_existing_events(backend: str, fresh_database) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database(backend, migrate=False)
    dbcli.upgrade(url, "0003")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _old_events(connection)
        dbcli.upgrade(url)
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT id, chain_id, seq FROM audit_events ORDER BY id")).all()
            assert [(row.chain_id, row.seq) for row in rows] == [(1, 1), (0, 1), (1, 2), (1, 3), (0, 2)]
            assert verify_chain(connection, 1).intact and verify_chain(connection, None).intact
            assert verify_chain(connection, 1).events == 3
        with engine.connect() as connection, pytest.raises(Exception, match="append-only"):
            connection.execute(text("UPDATE audit_events SET reason = 'x'"))
        dbcli.downgrade(url, "0003")
        dbcli.upgrade(url)
    finally:
        engine.dispose()


def _old_events(connection: Connection) -> None:
    connection.execute(text(
        "INSERT INTO tenants (id, slug, name, status, timezone, locale, created_at, updated_at) "
        "VALUES (1, 'old', '旧区', 'active', 'Asia/Shanghai', 'zh', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"))
    insert = text(
        "INSERT INTO audit_events (tenant_id, occurred_at, actor_kind, actor_id, actor_name, action, object_type, "
        "object_id, before, after, reason) VALUES (:t, :when, 'account', 5, '王五', :action, 'members', '9', "
        ":before, :after, :reason)")
    for tenant_id, second, action in [(1, 1, "a"), (None, 2, "b"), (1, 3, "c"), (1, 4, "d"), (None, 5, "e")]:
        connection.execute(insert, {
            "t": tenant_id, "when": f"2025-06-01 08:00:0{second}.123456+00:00" if connection.dialect.name ==
            "postgresql" else f"2025-06-01 08:00:0{second}.123456", "action": action,
            "before": json.dumps({"score": 1.25, "名": "甲"}), "after": None if second % 2 else json.dumps([1, 2]),
            "reason": "补录" if second == 3 else None,
        })
