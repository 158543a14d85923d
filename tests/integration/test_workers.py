"""A real Celery worker delivers outbox e-mail: tasks sent by name, consumed in another process.

Two set-ups, as in README "Production, in brief": the embedded one (file-system broker, SQLite) and the production
one (Redis, PostgreSQL). The worker is `celery -A workers worker` in a subprocess; mail goes to an
SMTP server on loopback. Nothing runs eagerly: if the worker did not consume the message, no mail
arrives.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from fivestar.broker import enqueue
from fivestar.config import Settings
from fivestar.db import make_sessionmaker
from fivestar.demo.mailcatcher import MailCatcher
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.tenancy import tenant_context
from tests.worker_support import SOLO_BACKENDS, SoloWorker, solo_worker, wait_for

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RULES = REPO / "tenants" / "notice-illustrative.toml"

pytestmark = pytest.mark.timeout(120)



@dataclass
class WorkerWorld:
    """A solo worker on both queues and the loopback mail catcher its settings send to."""

    worker: SoloWorker
    mail: MailCatcher
    queue: str = "default"

    @property
    def settings(self) -> Settings:
        return self.worker.settings

    @property
    def engine(self) -> Engine:
        return self.worker.engine

    def log_text(self) -> str:
        return self.worker.log_text()


@pytest.fixture(params=SOLO_BACKENDS)
def world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fresh_database: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[WorkerWorld]:
    mail = MailCatcher(tmp_path / "mail").start()
    try:
        with solo_worker(request.param, tmp_path, fresh_database, monkeypatch, name="workers",
                         mail_server=mail.host, mail_port=str(mail.port)) as worker:
            ready = tmp_path / "worker.ready"
            assert int(ready.read_text()) == worker.process.pid  # a real, separate worker process
            yield WorkerWorld(worker, mail)
    finally:
        mail.stop()


def _tenant_with_mail(world: WorkerWorld, subjects: list[str]) -> tuple[int, list[int]]:
    """A tenant and one pending outbox e-mail per subject, committed (as a web request would)."""
    from fivestar.tenants.services import create_tenant

    maker = make_sessionmaker(world.engine)
    with maker() as session:
        tenant = create_tenant(
            session,
            slug=f"w-{uuid.uuid4().hex[:8]}",
            name="工作进程测试区直机关工委",
            rules_toml=SAMPLE_RULES.read_text(encoding="utf-8"),
        )
        ids = []
        with tenant_context(tenant.id):
            for number, subject in enumerate(subjects):
                message = OutboxMessage(
                    tenant_id=tenant.id,
                    channel=Channel.EMAIL,
                    recipient=f"person{number}@example.org",
                    subject=subject,
                    body_text=f"正文 {subject}",
                    dedupe_key=f"test:{uuid.uuid4().hex}",
                )
                session.add(message)
                session.flush()
                ids.append(message.id)
        session.commit()
        return tenant.id, ids


def _add_mail(world: WorkerWorld, tenant_id: int, subject: str) -> int:
    maker = make_sessionmaker(world.engine)
    with maker() as session, tenant_context(tenant_id):
        message = OutboxMessage(
            tenant_id=tenant_id,
            channel=Channel.EMAIL,
            recipient="later@example.org",
            subject=subject,
            body_text="由定时任务发送",
            dedupe_key=f"test:{uuid.uuid4().hex}",
        )
        session.add(message)
        session.commit()
        return message.id


def _states(world: WorkerWorld, tenant_id: int) -> dict[int, DeliveryState]:
    maker = make_sessionmaker(world.engine)
    with maker() as session, tenant_context(tenant_id):
        return dict(session.execute(select(OutboxMessage.id, OutboxMessage.state)).all())


def _subjects(mail: MailCatcher) -> list[str]:
    found = []
    for path in mail.messages():
        message: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append(str(message["Subject"]))
    return found


def test_worker_delivers_outbox_mail_sent_by_name_and_the_tick_sweeps(world: WorkerWorld) -> None:
    tenant_id, ids = _tenant_with_mail(world, ["邀请函 一", "邀请函 二"])
    assert _states(world, tenant_id) == dict.fromkeys(ids, DeliveryState.PENDING)

    enqueue(world.settings, "fivestar.deliver_outbox", queue=world.queue)
    wait_for(lambda: len(world.mail.messages()) >= 2, "two e-mails", world.worker)
    wait_for(lambda: set(_states(world, tenant_id).values()) == {DeliveryState.SENT}, "rows marked sent", world.worker)
    assert sorted(_subjects(world.mail)) == ["邀请函 一", "邀请函 二"]

    # A duplicate message (at-least-once delivery) finds nothing due: no second copy is sent.
    enqueue(world.settings, "fivestar.deliver_outbox", queue=world.queue)
    wait_for(lambda: world.log_text().count("fivestar.deliver_outbox[") >= 4, "the duplicate", world.worker)
    assert len(world.mail.messages()) == 2

    # The minute tick (what beat sends) fans out the outbox sweep: new mail goes out without
    # anyone enqueueing the delivery task.
    later = _add_mail(world, tenant_id, "定时发送")
    enqueue(world.settings, "fivestar.tick", queue=world.queue)
    wait_for(lambda: len(world.mail.messages()) >= 3, "the swept e-mail", world.worker)
    assert "定时发送" in _subjects(world.mail)
    wait_for(lambda: _states(world, tenant_id)[later] is DeliveryState.SENT, "swept row sent", world.worker)
    log = world.log_text()
    assert "Task fivestar.tick[" in log and "succeeded" in log
    assert "Traceback" not in log


def test_the_tick_opens_a_due_round_once(world: WorkerWorld) -> None:
    """Beat's tick reaches the scheduled-items sweep in the worker: a round that fell due while
    nothing ran opens, once, even when the tick is delivered twice."""
    from fivestar.enums import Gender, OrgKind
    from fivestar.member_rounds.models import MemberRound
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.scheduling.models import DueItem, DueKind, DueState
    from fivestar.tenants.services import create_tenant
    from tests.integration.test_scheduling import auto_rules

    maker = make_sessionmaker(world.engine)
    with maker() as session:
        tenant = create_tenant(session, slug=f"auto-{uuid.uuid4().hex[:8]}", name="自动开启工委",
                               rules_toml=auto_rules(branch=None))
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="工作进程测试党支部")
            session.add(Member(tenant_id=tenant.id, branch_id=branch.id, member_no="W1", name="党员甲",
                               gender=Gender.FEMALE, joined_on=dt.date(2012, 7, 1)))
            # Planned before the platform went down; its instant has passed.
            session.add(DueItem(tenant_id=tenant.id, kind=DueKind.OPEN_MEMBER_ROUND, key="2026Q3",
                                due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        session.commit()
        tenant_id = tenant.id

    def state() -> tuple[list[str], DueState | None]:
        with maker() as session, tenant_context(tenant_id):
            rounds = list(session.scalars(select(MemberRound.period_key)))
            item = session.scalar(select(DueItem.state).where(DueItem.key == "2026Q3"))
            return rounds, item

    enqueue(world.settings, "fivestar.tick", queue=world.queue)
    enqueue(world.settings, "fivestar.tick", queue=world.queue)  # a duplicate tick
    wait_for(lambda: state() == (["2026Q3"], DueState.DONE), "the round to open", world.worker)
    wait_for(lambda: world.log_text().count("fivestar.run_due[") >= 4, "both sweeps", world.worker)
    assert state() == (["2026Q3"], DueState.DONE)
    assert "Traceback" not in world.log_text()
