"""A real Celery worker on the `reports` queue produces reports (CONTRIBUTING.md "Workers"): asked for through the
service (the message leaves only after the commit), written with progress, marked done; a
redelivered message changes nothing; the tick's sweep gives a dead worker's job back and the worker
produces it.

Two set-ups, as in tests/integration/test_workers.py: the embedded one (file-system broker, SQLite)
and the production one (Redis, PostgreSQL). On the shared Redis the worker's keys carry a prefix of
this test's own (FIVESTAR_REDIS_KEY_PREFIX), so it can listen on the real `reports` queue name.
Nothing runs eagerly: if the worker does not consume the message, no report appears.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select, update

from fivestar.broker import enqueue
from fivestar.db import make_sessionmaker
from fivestar.kernel import task_names
from fivestar.reports.jobs import services
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.tenancy import tenant_context
from tests.worker_support import SOLO_BACKENDS, solo_worker, wait_for
from tests.worker_support import SoloWorker as World

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RULES = REPO / "tenants" / "notice-illustrative.toml"

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(params=SOLO_BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[str], str],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with solo_worker(request.param, tmp_path, fresh_database, monkeypatch, name="reports") as worker:
        yield worker


def _district(world: World) -> tuple[int, int, int]:
    """A tenant with a branch of three members and its member round open (committed). Returns the
    tenant, round and administrator account ids."""
    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.enums import Gender, OrgKind, Role
    from fivestar.member_rounds.opening import open_round
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenants.services import create_tenant

    maker = make_sessionmaker(world.engine)
    with maker() as session:
        tenant = create_tenant(session, slug=f"rep-{uuid.uuid4().hex[:8]}", name="报表测试工委",
                               rules_toml=SAMPLE_RULES.read_text(encoding="utf-8"))
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="报表测试党支部")
            for number in range(1, 4):
                session.add(Member(tenant_id=tenant.id, branch_id=branch.id, member_no=f"R{number}",
                                   name=f"党员{number}", gender=Gender.FEMALE, joined_on=dt.date(2012, 7, 1)))
            account = Account(tenant_id=tenant.id, username="admin", display_name="工委工作人员",
                              password_hash="x")
            session.add(account)
            session.flush()
            session.add(RoleGrant(tenant_id=tenant.id, account_id=account.id, role=Role.TENANT_ADMIN))
            session.flush()
            opened = open_round(session, tenant, period_key="2026Q1")
        session.commit()
        return tenant.id, opened.round.id, account.id


def _ask(world: World, tenant_id: int, round_id: int, account_id: int, kind: str, fmt: str) -> int:
    """What the web request does: the service writes the job and the commit sends the message."""
    from fivestar.accounts.principal import Grant, Principal
    from fivestar.enums import Role
    from fivestar.member_rounds.core import load_round
    from fivestar.tenants.models import Tenant

    maker = make_sessionmaker(world.engine)
    principal = Principal(session_token="t", display_name="工委工作人员", tenant_id=tenant_id,
                          account_id=account_id, grants=(Grant(Role.TENANT_ADMIN),))
    with maker() as session, tenant_context(tenant_id):
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        asked = services.request_report(session, world.settings, tenant=tenant, principal=principal, kind=kind,
                                       fmt=fmt, subject=load_round(session, round_id))
        session.commit()
        return asked.job.id


def _row(world: World, tenant_id: int, job_id: int) -> ReportJob:
    maker = make_sessionmaker(world.engine)
    with maker() as session, tenant_context(tenant_id):
        job = session.scalar(select(ReportJob).where(ReportJob.id == job_id))
        assert job is not None
        return job


def test_the_reports_worker_produces_a_report_once_and_the_sweep_rescues_a_dead_workers_job(world: World) -> None:
    tenant_id, round_id, account_id = _district(world)
    job_id = _ask(world, tenant_id, round_id, account_id, "member_results", "xlsx")

    wait_for(lambda: _row(world, tenant_id, job_id).state is JobState.DONE, "the report", world)
    done = _row(world, tenant_id, job_id)
    assert (done.progress, done.rows, done.attempts, done.failure_reason) == (100, 3, 1, None)
    path = services.download_path(world.settings, done)
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)  # stored without an extension
    assert [row[4] for row in book["评定结果"].iter_rows(min_row=2, values_only=True)] == ["党员1", "党员2", "党员3"]
    assert "fivestar.reports.generate[" in world.log_text()

    # A redelivered message (at-least-once delivery) finds the job done and changes nothing.
    enqueue(world.settings, task_names.REPORTS_GENERATE, tenant_id, job_id, queue=task_names.REPORTS_QUEUE)
    wait_for(lambda: world.log_text().count("Task fivestar.reports.generate[") >= 2
              and world.log_text().count("succeeded") >= 2, "the duplicate", world)
    again = _row(world, tenant_id, job_id)
    assert (again.state, again.attempts, again.file_key, again.finished_at) == (
        JobState.DONE, 1, done.file_key, done.finished_at)
    assert path.exists()

    # A worker died while writing a PDF: the row is running with a stale heartbeat. The tick's sweep
    # (on the default queue) gives it back to the reports queue, and the worker produces it.
    dead = _ask(world, tenant_id, round_id, account_id, "notice_lists", "pdf")
    wait_for(lambda: _row(world, tenant_id, dead).state is JobState.DONE, "the second report", world)
    stale = dt.datetime.now(dt.UTC) - services.STUCK_AFTER - dt.timedelta(minutes=1)
    maker = make_sessionmaker(world.engine)
    with maker() as session, tenant_context(tenant_id):
        session.execute(update(ReportJob).where(ReportJob.id == dead).values(
            state=JobState.RUNNING, heartbeat_at=stale, file_key="0" * 48, progress=40))
        session.commit()
    enqueue(world.settings, "fivestar.tick", queue="default")
    wait_for(lambda: _row(world, tenant_id, dead).attempts == 2
              and _row(world, tenant_id, dead).state is JobState.DONE, "the rescued report", world)
    rescued = _row(world, tenant_id, dead)
    assert rescued.filename is not None and rescued.filename.endswith(".pdf")
    assert services.download_path(world.settings, rescued).read_bytes().startswith(b"%PDF")
    log = world.log_text()
    assert "Task fivestar.reports.sweep[" in log
    assert "Traceback" not in log
