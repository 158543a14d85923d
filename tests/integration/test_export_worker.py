"""A real Celery worker runs the exports sweep end to end (design.md §6): the sweep message plans the
finalised round's delivery and asks for the report, the worker's report task writes it, a later
sweep message sends it — signed — to a receiver on loopback, once, however many sweep messages
arrive. Nothing runs eagerly; no clock is frozen.

Two set-ups, as in tests/integration/test_report_worker.py: the embedded one (file-system broker,
SQLite) and the production one (Redis with a key prefix of this test's own, PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from fivestar.broker import enqueue
from fivestar.config import Settings, load_settings
from fivestar.db import make_engine, make_sessionmaker
from fivestar.exports.models import ExportDelivery, ExportState
from fivestar.exports.sweep import SWEEP_TASK
from fivestar.tenancy import tenant_context
from tests.export_support import HMAC_KEY, LoopbackReceiver
from tests.support import service_unavailable

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RULES = REPO / "tenants" / "notice-illustrative.toml"
REDIS_URL = os.environ.get("FIVESTAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TIMEOUT = 90.0

pytestmark = pytest.mark.timeout(240)


@dataclass
class World:
    settings: Settings
    engine: Engine
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _redis_reachable() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _wait_for(condition: Callable[[], bool], what: str, world: World, *, every: Callable[[], None] | None = None,
              timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if world.process.poll() is not None:
            code = world.process.returncode
            pytest.fail(f"worker exited with {code} waiting for {what}:\n{world.log_text()[-3000:]}")
        if every is not None:
            every()
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n--- worker log ---\n{world.log_text()[-4000:]}")


@pytest.fixture(params=["filesystem-sqlite", "redis-postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[str], str],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    prefix = ""
    if request.param == "redis-postgresql":
        if not _redis_reachable():
            service_unavailable("Redis")
        database_url, broker_url = fresh_database("postgresql"), REDIS_URL
        prefix = f"fivestar-exports-test-{uuid.uuid4().hex[:10]}:"
    else:
        database_url, broker_url = fresh_database("sqlite"), "filesystem://"
    monkeypatch.chdir(tmp_path)  # kombu's file-system transport keeps a relative control folder
    data_dir = tmp_path / "data"
    secret_key = uuid.uuid4().hex * 2
    settings = load_settings(env="test", database_url=database_url, broker_url=broker_url, data_dir=data_dir,
                             redis_key_prefix=prefix, export_hosts="127.0.0.1", secret_key=secret_key)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    ready = tmp_path / "worker.ready"
    env.update(
        PYTHONUNBUFFERED="1",
        FIVESTAR_ENV="test",
        FIVESTAR_DATABASE_URL=database_url,
        FIVESTAR_BROKER_URL=broker_url,
        FIVESTAR_DATA_DIR=str(data_dir),
        FIVESTAR_REDIS_KEY_PREFIX=prefix,
        FIVESTAR_SECRET_KEY=secret_key,
        FIVESTAR_EXPORT_HOSTS="127.0.0.1",
        FIVESTAR_WORKER_READY_FILE=str(ready),
    )
    log = tmp_path / "worker.log"
    command = [
        sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "--queues", "default,reports",
        "--hostname", f"exports-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel", "INFO",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    current = World(settings, make_engine(database_url), process, log)
    try:
        _wait_for(ready.exists, "the worker to be ready", current, timeout=60)
        yield current
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        current.engine.dispose()
        if prefix:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                client.delete(*keys)
            client.close()


def _district(world: World, receiver_url: str) -> int:
    """A tenant with an HTTPS export target and a member round finalised after it (committed)."""
    from fivestar.enums import Gender, OrgKind
    from fivestar.exports import services
    from fivestar.member_rounds.models import MemberRound, RoundState
    from fivestar.member_rounds.opening import open_round
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenants.services import create_tenant

    maker = make_sessionmaker(world.engine)
    with maker() as session:
        tenant = create_tenant(session, slug=f"upw-{uuid.uuid4().hex[:8]}", name="上报测试工委",
                               rules_toml=SAMPLE_RULES.read_text(encoding="utf-8"))
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="上报测试党支部")
            for number in range(1, 4):
                session.add(Member(tenant_id=tenant.id, branch_id=branch.id, member_no=f"U{number}",
                                   name=f"党员{number}", gender=Gender.MALE, joined_on=dt.date(2012, 7, 1)))
            session.flush()
            services.create_target(session, world.settings, tenant.timezone, services.TargetInput(
                name="报市委（接口）", report_kind="member_results", report_format="xlsx", method="https",
                destination=receiver_url, secret=HMAC_KEY, trigger="on_finalise"))
            opened = open_round(session, tenant, period_key="2026Q1")
            session.flush()
            session.execute(update(MemberRound).where(MemberRound.id == opened.round.id)
                            .values(state=RoundState.CLOSED, closed_at=dt.datetime.now(dt.UTC))
                            .execution_options(synchronize_session=False))
        session.commit()
        return int(tenant.id)


def _delivery(world: World, tenant_id: int) -> ExportDelivery | None:
    with make_sessionmaker(world.engine)() as session, tenant_context(tenant_id):
        return session.scalar(select(ExportDelivery))


def test_the_worker_plans_asks_for_the_report_and_sends_it_once(world: World) -> None:
    with LoopbackReceiver() as receiver:
        tenant_id = _district(world, receiver.url)

        def sweep() -> None:
            enqueue(world.settings, SWEEP_TASK)

        def sent() -> bool:
            delivery = _delivery(world, tenant_id)
            return delivery is not None and delivery.state is ExportState.SENT

        sweep()
        _wait_for(sent, "the delivery to be sent", world, every=sweep)
        def finished_sweeps() -> int:
            return sum(1 for line in world.log_text().splitlines() if f"Task {SWEEP_TASK}[" in line
                       and "succeeded" in line)

        done = finished_sweeps()
        for _ in range(3):  # more sweep messages, as more ticks would send: nothing goes twice
            sweep()
        _wait_for(lambda: finished_sweeps() >= done + 3, "three more sweeps", world)
    delivery = _delivery(world, tenant_id)
    assert delivery is not None and delivery.attempts == 1
    assert len(receiver.requests) == 1, world.log_text()[-3000:]
    (request,) = receiver.requests
    assert request.signature_ok and request.body[:2] == b"PK"  # a real workbook, written by the report task
    assert request.headers["x-fivestar-delivery"] == str(delivery.id)
    log = world.log_text()
    assert "Task fivestar.reports.generate[" in log and "Traceback" not in log
