"""Shared builders of the worker-fault tests (tests/faults/test_*.py; issue 5, item 7): real workers and
beat on PostgreSQL + Redis, killed in the middle of their work. The `faulty` fixture is in conftest.py;
the tests: test_killed_workers.py, test_beat_takeover.py, test_deadly_task.py, test_report_load.py.

Every process here is `celery -A workers worker|beat` (the prefork pool, as ops/Procfile runs it),
started by tests/worker_support.py with a fresh database, a Redis key prefix of its own and an SMTP
server on loopback. Nothing is eager: each test asks the running worker for its configuration over
the broker and checks `task_always_eager` is off (and the delivery guarantees it relies on are on).

What is injected, without changing production code: tests/faults/inject/sitecustomize.py, first on
the workers' PYTHONPATH, makes a report spend CPU per row (a long report) or makes opening a round
for a `suicide-…` tenant SIGKILL its own process. The SMTP server can hold one message back: store
it and answer 250 only when the test says so, which is when a worker dies not knowing it was delivered.

The time bounds. The issue asks for "visibility timeout + restore interval + run time + 5 s". Here the
database is the truth (CONTRIBUTING.md "Workers"): what a dead worker held is given back by the tick's sweeps
once its claim is older than the claim timeout (FIVESTAR_CLAIM_TIMEOUT_SECONDS for due items and
outbox messages; a report's heartbeat older than FIVESTAR_REPORT_STUCK_SECONDS), not by the
broker's redelivery, which only ever finds the row claimed or done. So the "visibility timeout" of
the bound is that claim timeout, the "restore interval" is the tick (the sweep runs on every tick),
and "run time" is what the recovered work takes (measured: the last attempt's start to its end, or
the batch's pace before the kill). Broker visibility is set to the same small value, so kombu's own
redelivery happens too (a new worker restores the dead one's unacknowledged messages when it starts;
kombu 5.7 then scans only every 10 × 10 s, which is why the sweeps, not the broker, bound recovery);
a redelivered message finds its row claimed or done and changes nothing.

What "exactly once" means for e-mail. SMTP has no idempotency key: a worker killed after the server
stored a message and before the worker committed `sent` (here: while the server holds its 250 back)
cannot know, and the message is sent again when its claim is given back. Both copies carry the same
Message-ID (the outbox's is stable per message), so mail systems and people can tell it is one message.
The precise guarantee asserted: every e-mail row ends `sent`; every Message-ID arrives at least once;
at most one Message-ID per killed pool process that was sending arrives twice — here exactly the held
one, since the kill is made to land in that window — and none three times. In-app notices are exactly
once (written in the transaction that marks the message sent; unique per message), and reminders and
rounds are unique keys in the database.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
from sqlalchemy import insert, select

from fivestar.accounts.models import Account, RoleGrant
from fivestar.enums import Gender, OrgKind, Role
from fivestar.inbox.models import Notice
from fivestar.orgs.models import Organisation
from fivestar.orgs.services import create_org
from fivestar.outbox.delivery import outbox_message_id
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.people.models import Member
from fivestar.reports.jobs import services as reports
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.scheduling.models import DueItem, DueKind
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from fivestar.timekeeping import clock
from tests.integration.test_scheduling import auto_rules
from tests.worker_support import Cluster, Process, pid_alive

Faulty = Callable[..., AbstractContextManager[Cluster]]

INJECT = Path(__file__).resolve().parent / "inject"
ZONE = "Asia/Shanghai"
TICK = 1.0
CLAIM_TIMEOUT = 8  # FIVESTAR_CLAIM_TIMEOUT_SECONDS and FIVESTAR_REPORT_STUCK_SECONDS
VISIBILITY = 8  # FIVESTAR_BROKER_VISIBILITY_TIMEOUT
LOCK_TIMEOUT = 10  # FIVESTAR_BEAT_LOCK_TIMEOUT
SLACK = 5.0  # the "+ 5 s"
REPORT_MEMBERS = 3000  # rows of the report (a heartbeat every 2,000 rows: one between 1 and 99 %)
REPORT_ROW_SECONDS = 0.0005  # CPU per row in the worker, on top of writing it
REMINDED = 240  # members with an account and an e-mail address: one reminder batch of 480 messages
HELD = REMINDED // 4  # the e-mail the SMTP server has stored but not yet answered when the worker dies
SENDER_DOMAIN = "localhost"  # of FIVESTAR_MAIL_SENDER's default, fivestar@localhost


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- districts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class District:
    tenant_id: int
    slug: str
    admin_id: int
    round_id: int | None = None


def fault_rules(*, auto_open: bool = False, send_time: str = "09:00", lead_days: str = "[3, 1]") -> str:
    text = auto_rules(member=auto_open, branch=None)
    text = text.replace('send_time = "09:00"', f'send_time = "{send_time}"').replace(
        "lead_days = [3, 1]", f"lead_days = {lead_days}"
    )
    assert f'send_time = "{send_time}"' in text and f"lead_days = {lead_days}" in text
    return text


def make_district(
    cluster: Cluster,
    slug: str,
    *,
    rules: str,
    members: int = 1,
    accounts: int = 0,
    secretary: bool = False,
    open_round: bool = False,
    deadlines: dict[str, dt.date] | None = None,
) -> District:
    """A tenant with one branch of `members` members (set-based), the first `accounts` of them with a
    login and an e-mail address, an administrator, optionally a secretary and a running member round
    (opened an hour ago for the period just past) whose step deadlines end on the given local days."""
    from fivestar.member_rounds.opening import open_round as open_member_round

    with cluster.maker() as session:
        tenant = create_tenant(session, slug=slug, name=f"故障测试工委 {slug}", rules_toml=rules, timezone=ZONE)
        tenant_id = tenant.id
        with tenant_context(tenant_id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="故障测试党支部")
            session.execute(
                insert(Member),
                [
                    {
                        "tenant_id": tenant_id,
                        "branch_id": branch.id,
                        "member_no": f"F{number:05d}",
                        "name": f"党员{number:05d}",
                        "gender": Gender.FEMALE if number % 2 else Gender.MALE,
                        "joined_on": dt.date(2010, 7, 1),
                    }
                    for number in range(members)
                ],
            )
            admin = Account(tenant_id=tenant_id, username="admin", display_name="工委工作人员", password_hash="x")
            session.add(admin)
            session.flush()
            grants = [{"tenant_id": tenant_id, "account_id": admin.id, "role": Role.TENANT_ADMIN}]
            if accounts:
                member_ids = list(session.scalars(select(Member.id).order_by(Member.member_no).limit(accounts)))
                session.execute(
                    insert(Account),
                    [
                        {
                            "tenant_id": tenant_id,
                            "username": f"m{number:05d}",
                            "display_name": f"党员{number:05d}",
                            "password_hash": "x",
                            "email": f"m{number:05d}@example.org",
                            "member_id": member_id,
                        }
                        for number, member_id in enumerate(member_ids)
                    ],
                )
                account_ids = session.scalars(select(Account.id).where(Account.member_id.in_(member_ids)))
                grants += [
                    {"tenant_id": tenant_id, "account_id": account_id, "role": Role.MEMBER}
                    for account_id in account_ids
                ]
            if secretary:
                shuji = Account(
                    tenant_id=tenant_id,
                    username="shuji",
                    display_name="支部书记",
                    password_hash="x",
                    email="shuji@example.org",
                )
                session.add(shuji)
                session.flush()
                grants.append(
                    {
                        "tenant_id": tenant_id,
                        "account_id": shuji.id,
                        "role": Role.BRANCH_SECRETARY,
                        "organisation_id": branch.id,
                    }
                )
            session.execute(insert(RoleGrant), grants)
            round_id = None
            if open_round:
                with clock.frozen(utcnow() - dt.timedelta(hours=1)):
                    member_round = open_member_round(session, tenant).round
                for step, day in (deadlines or {}).items():
                    setattr(member_round, f"{step}_due_at", clock.end_of_day(day, ZONE))
                session.flush()
                round_id = member_round.id
            admin_id = admin.id
        session.commit()
    return District(tenant_id, slug, admin_id, round_id)


def local_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE)).date()


def reminder_due_now(cluster: Cluster, slug: str, *, members: int, accounts: int) -> District:
    """A running round whose members have not self-assessed; the rules remind one day before the
    deadline at a time of day two minutes ago, and the deadline is tomorrow: the planner's reminder row
    is due at once (as in tests/integration/test_topology.py)."""
    send = (dt.datetime.now(ZoneInfo(ZONE)) - dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    tomorrow = send.date() + dt.timedelta(days=1)
    return make_district(
        cluster,
        slug,
        rules=fault_rules(send_time=f"{send:%H:%M}", lead_days="[1]"),
        members=members,
        accounts=accounts,
        open_round=True,
        deadlines={
            "self": tomorrow,
            "joint": tomorrow + dt.timedelta(days=10),
            "review": tomorrow + dt.timedelta(days=20),
            "report": tomorrow + dt.timedelta(days=30),
        },
    )


def due_opening(cluster: Cluster, district: District, due_at: dt.datetime) -> str:
    """A row that opens the member round of an old period at `due_at` — one the planner does not plan
    itself now (so it neither moves nor duplicates it), as if planned earlier for that instant."""
    from fivestar.scheduling.planner import rules_for, wanted_items
    from fivestar.tenants.models import RuleSetVersion

    key = "2025Q2"
    with cluster.maker() as session, tenant_context(district.tenant_id):
        version = session.scalar(select(RuleSetVersion))
        assert version is not None
        planned = wanted_items(rules_for(version), ZONE, utcnow())
        assert key not in {item.key for item in planned}
        session.add(DueItem(tenant_id=district.tenant_id, kind=DueKind.OPEN_MEMBER_ROUND, key=key, due_at=due_at))
        session.commit()
    return key


# --- reading the truth ---------------------------------------------------------------------------------------


def ask_report(cluster: Cluster, district: District) -> int:
    """What the web request does: the service writes the job; the commit sends the message."""
    from fivestar.accounts.principal import Grant, Principal
    from fivestar.member_rounds.core import load_round
    from fivestar.tenants.models import Tenant

    assert district.round_id is not None
    principal = Principal(
        session_token="t",
        display_name="工委工作人员",
        tenant_id=district.tenant_id,
        account_id=district.admin_id,
        grants=(Grant(Role.TENANT_ADMIN),),
    )
    with cluster.maker() as session, tenant_context(district.tenant_id):
        tenant = session.get(Tenant, district.tenant_id)
        assert tenant is not None
        asked = reports.request_report(
            session,
            cluster.settings,
            tenant=tenant,
            principal=principal,
            kind="member_results",
            fmt="xlsx",
            subject=load_round(session, district.round_id),
        )
        session.commit()
        return asked.job.id


def load_job(cluster: Cluster, district: District, job_id: int) -> ReportJob:
    with cluster.maker() as session, tenant_context(district.tenant_id):
        job = session.scalar(select(ReportJob).where(ReportJob.id == job_id))
        assert job is not None
        session.expunge(job)
        return job


def running_between_1_and_99(cluster: Cluster, district: District, job_id: int) -> Callable[[], bool]:
    def check() -> bool:
        job = load_job(cluster, district, job_id)
        return job.state is JobState.RUNNING and 1 <= job.progress <= 99

    return check


def assert_report_made_once(cluster: Cluster, district: District, job_id: int, killed_at: dt.datetime) -> ReportJob:
    """DONE, after at least two claims, as one file with every row, within the bound."""
    job = load_job(cluster, district, job_id)
    assert job.state is JobState.DONE, (job.state, job.failure_reason)
    assert job.attempts >= 2 and job.rows == REPORT_MEMBERS and job.progress == 100
    assert job.started_at is not None and job.finished_at is not None
    run_time = (job.finished_at - job.started_at).total_seconds()
    bound = CLAIM_TIMEOUT + TICK + run_time + SLACK
    took = (job.finished_at - killed_at).total_seconds()
    assert took <= bound, f"report done {took:.1f} s after the kill; bound {bound:.1f} s"
    folder = reports.tenant_folder(cluster.settings, district.tenant_id)
    files = sorted(path.name for path in folder.iterdir())
    assert files == [job.file_key], files  # one file, no partial file of the killed attempt left
    book = openpyxl.load_workbook(io.BytesIO(reports.download_path(cluster.settings, job).read_bytes()), read_only=True)
    assert sum(1 for _row in book["评定结果"].iter_rows(min_row=2, values_only=True)) == REPORT_MEMBERS
    book.close()
    return job


@dataclass(frozen=True)
class Batch:
    """A reminder's outbox rows as they stand."""

    emails: dict[int, DeliveryState]  # outbox id → state
    notices: dict[int, DeliveryState]

    @property
    def all_sent(self) -> bool:
        return bool(self.emails) and {*self.emails.values(), *self.notices.values()} == {DeliveryState.SENT}

    def sent_emails(self) -> int:
        return sum(1 for state in self.emails.values() if state is DeliveryState.SENT)


def load_batch(cluster: Cluster, district: District, key_like: str = "reminder:%") -> Batch:
    with cluster.maker() as session, tenant_context(district.tenant_id):
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.state).where(
                OutboxMessage.dedupe_key.like(key_like)
            )
        ).all()
    return Batch(
        {row.id: row.state for row in rows if row.channel is Channel.EMAIL},
        {row.id: row.state for row in rows if row.channel is Channel.INAPP},
    )


def assert_delivered(cluster: Cluster, district: District, *, killed: int, expected_people: int) -> Counter[str]:
    """Every reminder message sent; each in-app notice once; each e-mail's Message-ID at least once and at
    most `killed` of them twice (never more). Returns the Message-ID counts."""
    batch = load_batch(cluster, district)
    assert batch.all_sent
    assert len(batch.emails) == len(batch.notices) == expected_people
    with cluster.maker() as session, tenant_context(district.tenant_id):
        notices = session.execute(select(Notice.outbox_message_id, Notice.account_id)).all()
        attempts = dict(
            session.execute(
                select(OutboxMessage.id, OutboxMessage.attempts).where(OutboxMessage.id.in_(batch.emails))
            ).all()
        )
    assert sorted(row.outbox_message_id for row in notices) == sorted(batch.notices)  # each once
    assert len({row.account_id for row in notices}) == expected_people  # one per person
    arrived = cluster.mail.message_ids()
    expected = {outbox_message_id(message, district.tenant_id, SENDER_DOMAIN): message for message in batch.emails}
    assert set(arrived) == set(expected), set(arrived) ^ set(expected)  # every one, and nothing else
    twice = [message_id for message_id, count in arrived.items() if count > 1]
    assert max(arrived.values()) <= 2 and len(twice) <= killed, twice
    for message_id in twice:  # a second copy only of a message whose sending was interrupted
        assert attempts[expected[message_id]] >= 2
    return arrived


def ask_guarantees(cluster: Cluster, worker: Process) -> Callable[[], None]:
    """Ask the running worker for its own configuration over the broker (in the background); the
    returned check asserts nothing is eager, messages are acknowledged late and handed back when a
    pool process dies, one at a time, with the test's visibility timeout."""
    answer = cluster.worker_conf(worker)

    def check() -> None:
        conf = answer()
        assert conf["task_always_eager"] is False
        assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
        assert conf["worker_prefetch_multiplier"] == 1
        assert conf["broker_transport_options"]["visibility_timeout"] == VISIBILITY

    return check


def assert_killed_in_task(worker: Process, pids: list[int]) -> None:
    """The worker's log says the pool process died of SIGKILL while it ran a task."""
    text = worker.text()
    for pid in pids:
        assert re.search(rf"pid:{pid} exited with 'signal 9 \(SIGKILL\)'", text), text[-3000:]
        assert not pid_alive(pid)


# --- killing a worker while the SMTP server holds an e-mail back ---------------------------------------------


@dataclass(frozen=True)
class Kill:
    at: dt.datetime
    pids: list[int]
    run_time: float  # the whole batch at the pace seen before the kill
    held_id: str  # the Message-ID of the e-mail the SMTP server had stored but not yet answered


def kill_while_held(
    cluster: Cluster,
    district: District,
    kill: Callable[[], list[int]],
    also: tuple[str, Callable[[], bool]] | None = None,
) -> Kill:
    """Wait until the SMTP server holds the batch's HELD-th e-mail (stored, 250 not yet sent: the
    worker cannot know it arrived) — and for `also` — then `kill()` and let the server answer."""
    cluster.wait_for(cluster.mail.is_held, "the reminder batch part-way", 60, poll=0.02)
    if also is not None:
        cluster.wait_for(also[1], also[0], 60, poll=0.05)
    batch = load_batch(cluster, district)
    emails = Counter(batch.emails.values())
    assert emails[DeliveryState.SENDING] >= 1 and emails[DeliveryState.SENT] >= HELD - 1, emails
    assert emails[DeliveryState.SENT] < len(batch.emails), emails
    at = utcnow()
    pids = kill()
    cluster.mail.release()
    held = cluster.mail.messages()[HELD - 1]
    assert held.name.startswith(f"{HELD:06d}-")
    return Kill(at, pids, cluster.mail.seconds_per_message() * REMINDED, cluster.mail.message_id(held))
