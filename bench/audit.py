"""Benchmark: appending to the audit hash chain against a plain INSERT, and verifying the chain.

    python bench/audit.py [--events 3000] [--verify-events 100000] [--db sqlite|postgresql] [--repeat 3]

In a fresh, migrated database (a SQLite file, or a throwaway PostgreSQL database created through
--postgres-url) with one tenant, it times in the same run, taking turns, best of --repeat:

  (a) append — N transactions of one event each, as a request writes them: a session, one
      `audit.record(...)` of a typical member change (before and after snapshots), commit. This is
      the chain's whole cost: canonical bytes, SHA-256, the conditional UPDATE of the chain's head
      and the event's INSERT;
  (b) plain — N transactions of one plain Core INSERT of the same row (same columns and values,
      no chain columns) on the session's connection, as `audit.record` inserts, into a copy of the
      table as it was before the chain (the same foreign key and two indexes), commit.

Then 4 threads append N events together, one-event transactions each (the chain serialises a
tenant's writers from their head UPDATE to their commit; this shows what that costs), and it
appends --verify-events more events with `audit.record_many` (batches of 5,000) and times
  (c) verify — `fivestar.audit.chain.verify_chain` over the whole chain (stream, recompute every link);
  (d) read — the same streaming SELECT of the same columns, rows fetched and dropped: the floor.

The last two lines: `append ratio: X.XX` (a / b; goal ≤ 1.5, bench/README.md "Goals") and
`verify: N events/s (X.XX× the plain read)` (goal ≥ 50,000 events/s). A measurement, not a test: the
suite runs it tiny only to prove it works (tests/integration/test_audit_bench.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import POSTGRES_ADMIN_URL, database

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "tenants" / "notice-illustrative.toml"
BEFORE = {"name": "李四", "member_no": "M000123", "branch_id": 17, "standing": "正式", "phone": "13800001234"}
AFTER = {**BEFORE, "phone": "13900005678", "position": "支部委员"}


def _plain_table(engine: Any) -> Any:
    from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    Table("tenants", metadata, autoload_with=engine)
    table = Table(
        "bench_plain_events", metadata,
        Column("id", Integer, primary_key=True),
        Column("tenant_id", Integer, ForeignKey("tenants.id")),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("actor_kind", String(16), nullable=False),
        Column("actor_id", Integer),
        Column("actor_name", String(120), nullable=False),
        Column("action", String(64), nullable=False),
        Column("object_type", String(40), nullable=False),
        Column("object_id", String(64)),
        Column("before", JSON),
        Column("after", JSON),
        Column("reason", Text),
        # the foreign key and indexes audit_events had before the chain (which adds the unique
        # (chain_id, seq) and the head row)
        Index("ix_bench_plain_tenant_time", "tenant_id", "occurred_at"),
        Index("ix_bench_plain_object", "tenant_id", "object_type", "object_id"),
    )
    metadata.create_all(engine)
    return table


def _append(maker: Any, tenant_id: int, count: int, offset: int) -> float:
    from fivestar import audit
    from fivestar.audit.recording import Actor, acting_as
    from fivestar.tenancy import tenant_context

    start = time.perf_counter()
    with tenant_context(tenant_id), acting_as(Actor("account", 7, "张三")):
        for number in range(offset, offset + count):
            with maker() as session:
                audit.record(session, "member.update", object_type="members", object_id=number,
                             before=BEFORE, after=AFTER, reason="调整联系方式")
                session.commit()
    return time.perf_counter() - start


def _plain(maker: Any, table: Any, tenant_id: int, count: int, offset: int) -> float:
    from sqlalchemy import insert

    from fivestar.db import utcnow

    statement = insert(table)
    start = time.perf_counter()
    for number in range(offset, offset + count):
        with maker() as session:
            session.connection().execute(statement, {
                "tenant_id": tenant_id, "occurred_at": utcnow(), "actor_kind": "account", "actor_id": 7,
                "actor_name": "张三", "action": "member.update", "object_type": "members", "object_id": str(number),
                "before": BEFORE, "after": AFTER, "reason": "调整联系方式",
            })
            session.commit()
    return time.perf_counter() - start


def _concurrent(maker: Any, tenant_id: int, threads: int, per_thread: int, offset: int) -> float:
    """`threads` writers of one tenant appending at once (each its own transactions)."""
    import threading

    errors: list[BaseException] = []
    start_line = threading.Barrier(threads + 1)

    def work(worker: int) -> None:
        start_line.wait()
        try:
            _append(maker, tenant_id, per_thread, offset + worker * per_thread)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(worker,)) for worker in range(threads)]
    for thread in pool:
        thread.start()
    start_line.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    if errors:
        raise SystemExit(f"a concurrent writer failed: {errors[0]!r}")
    return time.perf_counter() - start


def _fill(maker: Any, tenant_id: int, count: int) -> None:
    from fivestar import audit
    from fivestar.tenancy import tenant_context

    done = 0
    with tenant_context(tenant_id):
        while done < count:
            size = min(5000, count - done)
            with maker() as session:
                audit.record_many(session, "member.import", "members",
                                  [(done + i, BEFORE, AFTER) for i in range(size)], reason="导入")
                session.commit()
            done += size


def _read(engine: Any, tenant_id: int) -> tuple[float, int]:
    """The same streaming SELECT `verify_chain` runs, every row fetched and dropped."""
    from fivestar.audit.chain import _rows

    start = time.perf_counter()
    rows = 0
    with engine.connect() as connection, connection.begin():
        for _row in _rows(connection, tenant_id, 5000):
            rows += 1
    return time.perf_counter() - start, rows


def _verify(engine: Any, tenant_id: int) -> tuple[float, int]:
    from fivestar.audit.chain import verify_chain

    start = time.perf_counter()
    with engine.connect() as connection, connection.begin():
        result = verify_chain(connection, tenant_id)
    elapsed = time.perf_counter() - start
    if not result.intact:
        raise SystemExit(f"the chain is broken: {result.broken}")
    return elapsed, result.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--verify-events", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args()

    from fivestar import dbcli
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.tenants.services import create_tenant

    with tempfile.TemporaryDirectory() as folder, database(args.db, Path(folder), args.postgres_url) as url:
        dbcli.upgrade(url)
        engine = make_engine(url)
        maker = make_sessionmaker(engine)
        with maker() as session:
            tenant = create_tenant(session, slug="bench", name="基准测试工委", rules_toml=RULES.read_text("utf-8"))
            session.commit()
            tenant_id = tenant.id
        table = _plain_table(engine)
        print(f"database: {args.db}, {args.events} one-event transactions per side, best of {args.repeat}")
        # warm both paths up (connections, statement caches, the head guess)
        _append(maker, tenant_id, 50, 0)
        _plain(maker, table, tenant_id, 50, 0)
        chained: list[float] = []
        plain: list[float] = []
        for run in range(args.repeat):
            offset = 1000 + run * args.events
            chained.append(_append(maker, tenant_id, args.events, offset))
            plain.append(_plain(maker, table, tenant_id, args.events, offset))
        best_chain, best_plain = min(chained), min(plain)
        per = 1e6 / args.events
        print(f"append: audit.record {best_chain * per:.0f} µs/event "
              f"(runs {', '.join(f'{t * per:.0f}' for t in chained)}), "
              f"plain INSERT {best_plain * per:.0f} µs/event (runs {', '.join(f'{t * per:.0f}' for t in plain)})")

        threads = 4
        took = _concurrent(maker, tenant_id, threads, args.events // threads, 10_000_000)
        print(f"concurrent: {threads} writers of one tenant, {args.events // threads * threads} events in {took:.3f} s "
              f"= {args.events // threads * threads / took:.0f} events/s (one writer: {args.events / best_chain:.0f})")

        _fill(maker, tenant_id, args.verify_events)
        reads: list[float] = []
        verifies: list[float] = []
        events = 0
        for _run in range(args.repeat):
            took, events = _read(engine, tenant_id)
            reads.append(took)
            took, checked = _verify(engine, tenant_id)
            verifies.append(took)
            assert checked == events, (checked, events)
        best_read, best_verify = min(reads), min(verifies)
        print(f"verify: {events} events in {best_verify:.3f} s (runs {', '.join(f'{t:.3f}' for t in verifies)}); "
              f"plain streaming read {best_read:.3f} s")
        engine.dispose()
    print(f"append ratio: {best_chain / best_plain:.2f}")
    print(f"verify: {events / best_verify:.0f} events/s ({best_verify / best_read:.2f}x the plain read)")


if __name__ == "__main__":
    main()
