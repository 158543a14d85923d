"""A real Celery worker runs the exports sweep end to end (CONTRIBUTING.md "Workers"): the sweep message plans the
finalised round's delivery and asks for the report, the worker's report task writes it, a later
sweep message sends it — signed — to a receiver on loopback, once, however many sweep messages
arrive. Nothing runs eagerly; no clock is frozen.

Two set-ups, as in tests/integration/test_report_worker.py: the embedded one (file-system broker,
SQLite) and the production one (Redis with a key prefix of this test's own, PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from fivestar.broker import enqueue
from fivestar.db import make_sessionmaker
from fivestar.exports.models import ExportDelivery, ExportState
from fivestar.kernel import task_names
from fivestar.tenancy import tenant_context
from tests.export_support import HMAC_KEY, LoopbackReceiver
from tests.worker_support import SOLO_BACKENDS, solo_worker, wait_for
from tests.worker_support import SoloWorker as World

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RULES = REPO / "tenants" / "notice-illustrative.toml"
TIMEOUT = 90.0

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(params=SOLO_BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[str], str],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with solo_worker(request.param, tmp_path, fresh_database, monkeypatch, name="exports", export_hosts="127.0.0.1",
                     secret_key=uuid.uuid4().hex * 2) as worker:
        yield worker


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
            enqueue(world.settings, task_names.EXPORTS_SWEEP)

        def sent() -> bool:
            delivery = _delivery(world, tenant_id)
            return delivery is not None and delivery.state is ExportState.SENT

        sweep()
        wait_for(sent, "the delivery to be sent", world, TIMEOUT, every=sweep)
        def finished_sweeps() -> int:
            return sum(1 for line in world.log_text().splitlines() if f"Task {task_names.EXPORTS_SWEEP}[" in line
                       and "succeeded" in line)

        done = finished_sweeps()
        for _ in range(3):  # more sweep messages, as more ticks would send: nothing goes twice
            sweep()
        wait_for(lambda: finished_sweeps() >= done + 3, "three more sweeps", world, TIMEOUT)
    delivery = _delivery(world, tenant_id)
    assert delivery is not None and delivery.attempts == 1
    assert len(receiver.requests) == 1, world.log_text()[-3000:]
    (request,) = receiver.requests
    assert request.signature_ok and request.body[:2] == b"PK"  # a real workbook, written by the report task
    assert request.headers["x-fivestar-delivery"] == str(delivery.id)
    log = world.log_text()
    assert "Task fivestar.reports.generate[" in log and "Traceback" not in log
