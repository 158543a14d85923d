"""Faults (issue 5, item 7): real workers and beat on PostgreSQL + Redis, killed in the middle of their work.

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
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import func, insert, select

from fivestar.accounts.models import Account, RoleGrant
from fivestar.enums import Gender, OrgKind, Role
from fivestar.inbox.models import Notice
from fivestar.member_rounds.models import MemberRound
from fivestar.orgs.models import Organisation
from fivestar.orgs.services import create_org
from fivestar.outbox.delivery import outbox_message_id
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.people.models import Member
from fivestar.reports.jobs import services as reports
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from fivestar.timekeeping import clock
from tests.integration.test_scheduling import auto_rules
from tests.worker_support import Cluster, Process, open_cluster, pid_alive

Faulty = Callable[..., AbstractContextManager[Cluster]]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- districts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class District:
    tenant_id: int
    slug: str
    admin_id: int
    round_id: int | None = None


def _rules(*, auto_open: bool = False, send_time: str = "09:00", lead_days: str = "[3, 1]") -> str:
    text = auto_rules(member=auto_open, branch=None)
    text = text.replace('send_time = "09:00"', f'send_time = "{send_time}"').replace(
        "lead_days = [3, 1]", f"lead_days = {lead_days}")
    assert f'send_time = "{send_time}"' in text and f"lead_days = {lead_days}" in text
    return text


def _district(
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
            session.execute(insert(Member), [
                {"tenant_id": tenant_id, "branch_id": branch.id, "member_no": f"F{number:05d}",
                 "name": f"党员{number:05d}", "gender": Gender.FEMALE if number % 2 else Gender.MALE,
                 "joined_on": dt.date(2010, 7, 1)}
                for number in range(members)
            ])
            admin = Account(tenant_id=tenant_id, username="admin", display_name="工委工作人员", password_hash="x")
            session.add(admin)
            session.flush()
            grants = [{"tenant_id": tenant_id, "account_id": admin.id, "role": Role.TENANT_ADMIN}]
            if accounts:
                member_ids = list(session.scalars(select(Member.id).order_by(Member.member_no).limit(accounts)))
                session.execute(insert(Account), [
                    {"tenant_id": tenant_id, "username": f"m{number:05d}", "display_name": f"党员{number:05d}",
                     "password_hash": "x", "email": f"m{number:05d}@example.org", "member_id": member_id}
                    for number, member_id in enumerate(member_ids)
                ])
                account_ids = session.scalars(select(Account.id).where(Account.member_id.in_(member_ids)))
                grants += [{"tenant_id": tenant_id, "account_id": account_id, "role": Role.MEMBER}
                           for account_id in account_ids]
            if secretary:
                shuji = Account(tenant_id=tenant_id, username="shuji", display_name="支部书记", password_hash="x",
                                email="shuji@example.org")
                session.add(shuji)
                session.flush()
                grants.append({"tenant_id": tenant_id, "account_id": shuji.id, "role": Role.BRANCH_SECRETARY,
                               "organisation_id": branch.id})
            session.execute(insert(RoleGrant), grants)
            round_id = None
            if open_round:
                with clock.frozen(_utcnow() - dt.timedelta(hours=1)):
                    member_round = open_member_round(session, tenant).round
                for step, day in (deadlines or {}).items():
                    setattr(member_round, f"{step}_due_at", clock.end_of_day(day, ZONE))
                session.flush()
                round_id = member_round.id
            admin_id = admin.id
        session.commit()
    return District(tenant_id, slug, admin_id, round_id)


def _local_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE)).date()


def _reminder_due_now(cluster: Cluster, slug: str, *, members: int, accounts: int) -> District:
    """A running round whose members have not self-assessed; the rules remind one day before the
    deadline at a time of day two minutes ago, and the deadline is tomorrow: the planner's reminder row
    is due at once (as in tests/integration/test_topology.py)."""
    send = (dt.datetime.now(ZoneInfo(ZONE)) - dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    tomorrow = send.date() + dt.timedelta(days=1)
    return _district(cluster, slug, rules=_rules(send_time=f"{send:%H:%M}", lead_days="[1]"), members=members,
                     accounts=accounts, open_round=True,
                     deadlines={"self": tomorrow, "joint": tomorrow + dt.timedelta(days=10),
                                "review": tomorrow + dt.timedelta(days=20), "report": tomorrow + dt.timedelta(days=30)})


def _due_opening(cluster: Cluster, district: District, due_at: dt.datetime) -> str:
    """A row that opens the member round of an old period at `due_at` — one the planner does not plan
    itself now (so it neither moves nor duplicates it), as if planned earlier for that instant."""
    from fivestar.scheduling.planner import rules_for, wanted_items
    from fivestar.tenants.models import RuleSetVersion

    key = "2025Q2"
    with cluster.maker() as session, tenant_context(district.tenant_id):
        version = session.scalar(select(RuleSetVersion))
        assert version is not None
        planned = wanted_items(rules_for(version), ZONE, _utcnow())
        assert key not in {item.key for item in planned}
        session.add(DueItem(tenant_id=district.tenant_id, kind=DueKind.OPEN_MEMBER_ROUND, key=key, due_at=due_at))
        session.commit()
    return key


# --- reading the truth ---------------------------------------------------------------------------------------


def _ask_report(cluster: Cluster, district: District) -> int:
    """What the web request does: the service writes the job; the commit sends the message."""
    from fivestar.accounts.principal import Grant, Principal
    from fivestar.member_rounds.core import load_round
    from fivestar.tenants.models import Tenant

    assert district.round_id is not None
    principal = Principal(session_token="t", display_name="工委工作人员", tenant_id=district.tenant_id,
                          account_id=district.admin_id, grants=(Grant(Role.TENANT_ADMIN),))
    with cluster.maker() as session, tenant_context(district.tenant_id):
        tenant = session.get(Tenant, district.tenant_id)
        assert tenant is not None
        asked = reports.request_report(session, cluster.settings, tenant=tenant, principal=principal,
                                       kind="member_results", fmt="xlsx",
                                       subject=load_round(session, district.round_id))
        session.commit()
        return asked.job.id


def _job(cluster: Cluster, district: District, job_id: int) -> ReportJob:
    with cluster.maker() as session, tenant_context(district.tenant_id):
        job = session.scalar(select(ReportJob).where(ReportJob.id == job_id))
        assert job is not None
        session.expunge(job)
        return job


def _running_between_1_and_99(cluster: Cluster, district: District, job_id: int) -> Callable[[], bool]:
    def check() -> bool:
        job = _job(cluster, district, job_id)
        return job.state is JobState.RUNNING and 1 <= job.progress <= 99
    return check


def _assert_report_made_once(cluster: Cluster, district: District, job_id: int, killed_at: dt.datetime) -> ReportJob:
    """DONE, after at least two claims, as one file with every row, within the bound."""
    job = _job(cluster, district, job_id)
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
    book = openpyxl.load_workbook(io.BytesIO(reports.download_path(cluster.settings, job).read_bytes()),
                                  read_only=True)
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


def _batch(cluster: Cluster, district: District, key_like: str = "reminder:%") -> Batch:
    with cluster.maker() as session, tenant_context(district.tenant_id):
        rows = session.execute(select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.state)
                               .where(OutboxMessage.dedupe_key.like(key_like))).all()
    return Batch({row.id: row.state for row in rows if row.channel is Channel.EMAIL},
                 {row.id: row.state for row in rows if row.channel is Channel.INAPP})


def _assert_delivered(cluster: Cluster, district: District, *, killed: int, expected_people: int) -> Counter[str]:
    """Every reminder message sent; each in-app notice once; each e-mail's Message-ID at least once and at
    most `killed` of them twice (never more). Returns the Message-ID counts."""
    batch = _batch(cluster, district)
    assert batch.all_sent
    assert len(batch.emails) == len(batch.notices) == expected_people
    with cluster.maker() as session, tenant_context(district.tenant_id):
        notices = session.execute(select(Notice.outbox_message_id, Notice.account_id)).all()
        attempts = dict(session.execute(select(OutboxMessage.id, OutboxMessage.attempts)
                                        .where(OutboxMessage.id.in_(batch.emails))).all())
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


def _guarantees(cluster: Cluster, worker: Process) -> Callable[[], None]:
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


def _killed_in_task(worker: Process, pids: list[int]) -> None:
    """The worker's log says the pool process died of SIGKILL while it ran a task."""
    text = worker.text()
    for pid in pids:
        assert re.search(rf"pid:{pid} exited with 'signal 9 \(SIGKILL\)'", text), text[-3000:]
        assert not pid_alive(pid)


@pytest.fixture
def faulty(tmp_path: Path, fresh_database: Callable[[str], str]) -> Faulty:
    """`with faulty(**knobs) as cluster:` — a cluster whose workers run the injected faults."""

    def make(*, claim_timeout: int = CLAIM_TIMEOUT, report_row_seconds: float = 0.0,
             kill_opening_for: str = "", tick: float = TICK) -> AbstractContextManager[Cluster]:
        env = {"FIVESTAR_REPORT_STUCK_SECONDS": str(CLAIM_TIMEOUT)}
        if report_row_seconds:
            env["FAULTS_REPORT_ROW_SECONDS"] = str(report_row_seconds)
        if kill_opening_for:
            env["FAULTS_KILL_OPENING_FOR"] = kill_opening_for
        return open_cluster(tmp_path, fresh_database, tick_seconds=tick, claim_timeout=claim_timeout,
                            visibility_timeout=VISIBILITY, lock_timeout=LOCK_TIMEOUT, env=env, pythonpath=[INJECT])

    return make


# --- 1. a pool process killed in the middle of a report -------------------------------------------------------


def test_a_report_whose_pool_process_is_killed_is_produced_once(faulty: Faulty) -> None:
    with faulty(report_row_seconds=REPORT_ROW_SECONDS) as cluster:
        default = cluster.start_worker("default", ["default"], wait=False)
        worker = cluster.start_worker("reports", ["reports"], wait=False)  # as ops/Procfile: its own worker
        beat = cluster.start_beat(wait=False)
        district = _district(cluster, f"rep-{uuid.uuid4().hex[:6]}", rules=_rules(), members=REPORT_MEMBERS,
                             open_round=True)
        cluster.wait_ready(default, worker, beat)
        guarantees = _guarantees(cluster, worker)

        job_id = _ask_report(cluster, district)
        cluster.wait_for(_running_between_1_and_99(cluster, district, job_id), "the report part-way", 60,
                         poll=0.05, watch=[worker])
        killed_at = _utcnow()
        killed = worker.kill_pool_process()

        run_estimate = REPORT_MEMBERS * REPORT_ROW_SECONDS + 5
        cluster.wait_for(lambda: _job(cluster, district, job_id).state in (JobState.DONE, JobState.FAILED),
                         "the report to be produced again", CLAIM_TIMEOUT + TICK + run_estimate + SLACK,
                         watch=[worker, default])
        _assert_report_made_once(cluster, district, job_id, killed_at)
        _killed_in_task(worker, [killed])
        assert worker.alive() and len(worker.pool()) == 1  # the pool replaced its process
        guarantees()


# --- 2. a pool process killed in the middle of a reminder batch -----------------------------------------------


@dataclass(frozen=True)
class Kill:
    at: dt.datetime
    pids: list[int]
    run_time: float  # the whole batch at the pace seen before the kill
    held_id: str  # the Message-ID of the e-mail the SMTP server had stored but not yet answered


def _kill_while_held(cluster: Cluster, district: District, kill: Callable[[], list[int]],
                     also: tuple[str, Callable[[], bool]] | None = None) -> Kill:
    """Wait until the SMTP server holds the batch's HELD-th e-mail (stored, 250 not yet sent: the
    worker cannot know it arrived) — and for `also` — then `kill()` and let the server answer."""
    cluster.wait_for(cluster.mail.is_held, "the reminder batch part-way", 60, poll=0.02)
    if also is not None:
        cluster.wait_for(also[1], also[0], 60, poll=0.05)
    batch = _batch(cluster, district)
    emails = Counter(batch.emails.values())
    assert emails[DeliveryState.SENDING] >= 1 and emails[DeliveryState.SENT] >= HELD - 1, emails
    assert emails[DeliveryState.SENT] < len(batch.emails), emails
    at = _utcnow()
    pids = kill()
    cluster.mail.release()
    held = cluster.mail.messages()[HELD - 1]
    assert held.name.startswith(f"{HELD:06d}-")
    return Kill(at, pids, cluster.mail.seconds_per_message() * REMINDED, cluster.mail.message_id(held))


def test_a_reminder_batch_whose_pool_process_is_killed_is_delivered_once(faulty: Faulty) -> None:
    with faulty() as cluster:
        cluster.mail.hold(HELD)
        worker = cluster.start_worker("default", ["default"], wait=False)
        beat = cluster.start_beat(wait=False)
        district = _reminder_due_now(cluster, f"rem-{uuid.uuid4().hex[:6]}", members=REMINDED, accounts=REMINDED)
        cluster.wait_ready(worker, beat)
        guarantees = _guarantees(cluster, worker)

        kill = _kill_while_held(cluster, district, lambda: [worker.kill_pool_process()])
        emails = Counter(_batch(cluster, district).emails.values())
        assert emails[DeliveryState.SENT] == HELD - 1 and emails[DeliveryState.SENDING] == 1, emails
        bound = CLAIM_TIMEOUT + TICK + kill.run_time + SLACK
        cluster.wait_for(lambda: _batch(cluster, district).all_sent, "every reminder sent", bound, watch=[worker])
        assert (_utcnow() - kill.at).total_seconds() <= bound
        arrived = _assert_delivered(cluster, district, killed=1, expected_people=REMINDED)
        assert arrived[kill.held_id] == 2  # the one the server had stored when the worker died: twice, no more
        _killed_in_task(worker, kill.pids)
        with cluster.maker() as session, tenant_context(district.tenant_id):
            item = session.execute(select(DueItem.state, DueItem.attempts).where(
                DueItem.kind == DueKind.REMINDER, DueItem.state != DueState.PENDING)).one()
        assert (item.state, item.attempts) == (DueState.DONE, 1)
        guarantees()


# --- 3. the whole worker killed in the middle of a report and of a reminder batch ----------------------------


def test_a_whole_worker_killed_mid_report_and_mid_reminders_is_replaced_and_nothing_is_lost_or_doubled(
    faulty: Faulty,
) -> None:
    with faulty(report_row_seconds=REPORT_ROW_SECONDS) as cluster:
        # One worker for both queues (README's "Production, in brief"), two pool processes.
        cluster.mail.hold(HELD)
        first = cluster.start_worker("worker", ["default", "reports"], concurrency=2, wait=False)
        beat = cluster.start_beat(wait=False)  # the reminder falls due at the first tick
        district = _reminder_due_now(cluster, f"all-{uuid.uuid4().hex[:6]}", members=REPORT_MEMBERS,
                                     accounts=REMINDED)
        cluster.wait_ready(first, beat)
        guarantees = _guarantees(cluster, first)
        # One pool process delivers the batch until the server holds an e-mail; the other takes the report.
        cluster.wait_for(cluster.mail.is_held, "the reminder batch part-way", 60, poll=0.02)
        job_id = _ask_report(cluster, district)
        kill = _kill_while_held(cluster, district, first.kill_all,
                                also=("the report part-way", _running_between_1_and_99(cluster, district, job_id)))
        cluster.wait_for(lambda: not any(pid_alive(pid) for pid in kill.pids), "the killed processes gone", 5)
        second = cluster.start_worker("worker-2", ["default", "reports"], concurrency=2)

        bound = CLAIM_TIMEOUT + TICK + max(kill.run_time, REPORT_MEMBERS * REPORT_ROW_SECONDS + 5) + SLACK
        cluster.wait_for(lambda: _batch(cluster, district).all_sent
                         and _job(cluster, district, job_id).state in (JobState.DONE, JobState.FAILED),
                         "every reminder sent and the report done", bound, watch=[second])
        assert (_utcnow() - kill.at).total_seconds() <= bound
        _assert_report_made_once(cluster, district, job_id, kill.at)
        # The other pool process was writing the report (part-way at the kill): one e-mail was in flight.
        arrived = _assert_delivered(cluster, district, killed=1, expected_people=REMINDED)
        assert arrived[kill.held_id] == 2
        assert second.alive()
        guarantees()


# --- 4. two beats for two minutes ---------------------------------------------------------------------------------

_TICK_SENT = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] Scheduler: Sending due task "
                        r"fivestar-minute-tick", re.M)


def _tick_times(beat: Process) -> list[dt.datetime]:
    return [dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") for stamp in _TICK_SENT.findall(beat.text())]


def test_two_beats_for_two_minutes_open_one_round_and_remind_once(
    faulty: Faulty,
) -> None:
    duel = 120.0
    with faulty(tick=2.0) as cluster:
        worker = cluster.start_worker("worker", ["default"], concurrency=2, wait=False)
        first = cluster.start_beat("beat-1", wait=False)
        # Two districts whose rules open rounds by themselves, one due in 15 s (while the first beat
        # holds the lock) and one in 80 s (after the second took over) …
        early = _district(cluster, f"auto1-{uuid.uuid4().hex[:6]}", rules=_rules(auto_open=True))
        late = _district(cluster, f"auto2-{uuid.uuid4().hex[:6]}", rules=_rules(auto_open=True))
        # … and one in a running round whose reminders (self-assessment one day ahead, the joint
        # assessment two days ahead) fall due at a whole minute 50 to 110 s from now (rules name minutes).
        local = dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(seconds=50)
        send = (local + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
        tomorrow = send.date() + dt.timedelta(days=1)
        people = 40
        reminded = _district(
            cluster, f"duel-{uuid.uuid4().hex[:6]}", rules=_rules(send_time=f"{send:%H:%M}", lead_days="[1, 2]"),
            members=people, accounts=people, secretary=True, open_round=True,
            deadlines={"self": tomorrow, "joint": tomorrow + dt.timedelta(days=1),
                       "review": tomorrow + dt.timedelta(days=20), "report": tomorrow + dt.timedelta(days=30)})
        cluster.wait_ready(worker, first)
        guarantees = _guarantees(cluster, worker)
        started = time.monotonic()
        _due_opening(cluster, early, _utcnow() + dt.timedelta(seconds=15))
        _due_opening(cluster, late, _utcnow() + dt.timedelta(seconds=80))
        second = cluster.start_beat("beat-2", wait=False)
        cluster.wait_for(lambda: "beat: Starting..." in second.text(), "the second beat to ask for the lock", 45)

        # 35 s of both: the second waits for the lock, sends nothing; the first ticks.
        time.sleep(max(0.0, started + 35 - time.monotonic()))
        assert not second.ready() and "Sending due task" not in second.text()
        assert len(_tick_times(first)) >= 10
        first.kill_all()  # SIGKILL: the lock is not released; it expires after FIVESTAR_BEAT_LOCK_TIMEOUT
        # The lock outlives its holder by at most FIVESTAR_BEAT_LOCK_TIMEOUT (the holder renews it every
        # loop of beat); the standby tries again every loop (workers/app.py: 2 s with these settings).
        loop = max(1.0, min(30.0, 2.0, LOCK_TIMEOUT / 3))
        took_over = cluster.wait_for(second.ready, "the second beat to take the lock", LOCK_TIMEOUT + loop + SLACK,
                                     watch=[worker])
        print(f"the second beat took the lock {took_over:.1f} s after the first was killed")

        time.sleep(max(0.0, started + duel - time.monotonic()))
        cluster.wait_for(lambda: _batch(cluster, reminded).all_sent, "the reminders delivered", 30, watch=[worker])

        # One tick stream: the first beat's until the kill, then the second's; never both at once.
        ticks = sorted(_tick_times(first) + _tick_times(second))
        gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(ticks)]
        assert min(gaps) >= 2.0 * 0.75, gaps
        assert max(_tick_times(first)) < min(_tick_times(second))
        span = (ticks[-1] - ticks[0]).total_seconds()
        assert len(ticks) <= span / 2.0 + 2

        # Exactly one round per district, each opening performed once.
        for district, key in ((early, "2025Q2"), (late, "2025Q2")):
            with cluster.maker() as session, tenant_context(district.tenant_id):
                assert list(session.scalars(select(MemberRound.period_key))) == [key]
                item = session.execute(select(DueItem.state, DueItem.attempts).where(
                    DueItem.kind == DueKind.OPEN_MEMBER_ROUND, DueItem.key == key)).one()
                assert (item.state, item.attempts) == (DueState.DONE, 1)
        # One message per recipient and lead time: the members' one-day reminder and the secretary's
        # two-day one, each performed once; every e-mail arrived once.
        with cluster.maker() as session, tenant_context(reminded.tenant_id):
            items = {row.key.split(":", 1)[1]: (row.state, row.attempts) for row in session.execute(
                select(DueItem.key, DueItem.state, DueItem.attempts).where(DueItem.kind == DueKind.REMINDER)
                .where(DueItem.state != DueState.PENDING))}
            keys = Counter(key.rsplit(":", 2)[0].split(":", 2)[2] for key in session.scalars(
                select(OutboxMessage.dedupe_key)))
        self_key, joint_key = f"self:{tomorrow:%Y%m%d}:1", f"joint:{tomorrow + dt.timedelta(days=1):%Y%m%d}:2"
        assert items == {self_key: (DueState.DONE, 1), joint_key: (DueState.DONE, 1)}, items
        assert keys == {self_key: 2 * people, joint_key: 2}, keys
        arrived = _assert_delivered(cluster, reminded, killed=0, expected_people=people + 1)
        assert set(arrived.values()) == {1}
        assert worker.alive() and second.alive()
        guarantees()


# --- 5. a task that kills its worker ----------------------------------------------------------------------------


def test_a_task_that_kills_its_worker_fails_after_max_attempts_and_the_queue_drains(
    faulty: Faulty,
) -> None:
    claim = 4
    with faulty(claim_timeout=claim, kill_opening_for="suicide-") as cluster:
        worker = cluster.start_worker("worker", ["default"], wait=False)
        beat = cluster.start_beat(wait=False)
        deadly = _district(cluster, f"suicide-{uuid.uuid4().hex[:6]}", rules=_rules(auto_open=True))
        healthy = _district(cluster, f"healthy-{uuid.uuid4().hex[:6]}", rules=_rules(auto_open=True))
        now = _utcnow()
        key = _due_opening(cluster, deadly, now - dt.timedelta(seconds=1))
        _due_opening(cluster, healthy, now - dt.timedelta(seconds=1))
        cluster.wait_ready(worker, beat)
        guarantees = _guarantees(cluster, worker)

        def item(district: District) -> tuple[DueState, int, int, str | None, dt.datetime | None]:
            with cluster.maker() as session, tenant_context(district.tenant_id):
                row = session.execute(select(DueItem.state, DueItem.attempts, DueItem.max_attempts, DueItem.outcome,
                                             DueItem.finished_at).where(DueItem.key == key)).one()
                return row.state, row.attempts, row.max_attempts, row.outcome, row.finished_at

        max_attempts = item(deadly)[2]
        # Each try: claimed, the process dies, the claim is given back after the claim timeout at the
        # next tick, the pool has replaced its process meanwhile.
        bound = max_attempts * (claim + TICK + SLACK) + SLACK
        cluster.wait_for(lambda: item(deadly)[0] is DueState.FAILED, "the deadly item to fail", bound, watch=[worker])
        state, attempts, _max, outcome, failed_at = item(deadly)
        assert (state, attempts) == (DueState.FAILED, max_attempts) and "gave up" in (outcome or "")
        assert len(re.findall(r"exited with 'signal 9 \(SIGKILL\)'", worker.text())) == max_attempts
        with cluster.maker() as session, tenant_context(deadly.tenant_id):
            assert session.scalar(select(func.count()).select_from(MemberRound)) == 0
        # The other district's round, due at the same instant, opened once — before the deadly item
        # had used up its tries (a row given back is tried after the rows never tried).
        opened = item(healthy)
        assert opened[:2] == (DueState.DONE, 1) and opened[4] is not None and failed_at is not None
        assert opened[4] < failed_at
        # The worker keeps serving: an e-mail written now arrives.
        with cluster.maker() as session, tenant_context(healthy.tenant_id):
            session.add(OutboxMessage(tenant_id=healthy.tenant_id, channel=Channel.EMAIL,
                                      recipient="after@example.org", subject="之后的邮件", body_text="仍在工作",
                                      dedupe_key=f"faults:{uuid.uuid4().hex}"))
            session.commit()
        cluster.wait_for(lambda: cluster.mail.count() == 1, "an e-mail sent after the failures", 15, watch=[worker])

        # The queue drains: with beat stopped, nothing is waiting or unacknowledged.
        beat.stop()
        cluster.wait_for(lambda: cluster.queue_length("default") == 0 and cluster.unacked() == 0,
                         "the queue to drain", 15, watch=[worker])
        assert worker.alive() and len(worker.pool()) == 1
        guarantees()


# --- 6. a long report does not delay reminders ------------------------------------------------------------------


def test_a_long_report_does_not_delay_reminders_by_more_than_a_second(
    faulty: Faulty,
) -> None:
    with faulty(report_row_seconds=0.003) as cluster:
        # A worker per queue, as ops/Procfile runs them; no beat: the test sends the ticks and times them.
        default = cluster.start_worker("default", ["default"], concurrency=2, wait=False)
        worker = cluster.start_worker("reports", ["reports"], wait=False)
        deadline = _local_today() + dt.timedelta(days=20)  # the rules' own reminders are weeks away
        district = _district(cluster, f"busy-{uuid.uuid4().hex[:6]}", rules=_rules(), members=REPORT_MEMBERS,
                             accounts=10, open_round=True,
                             deadlines={"self": deadline, "joint": deadline + dt.timedelta(days=1),
                                        "review": deadline + dt.timedelta(days=2),
                                        "report": deadline + dt.timedelta(days=3)})
        cluster.wait_ready(default, worker)
        _guarantees(cluster, default)()  # before measuring: `celery inspect` is a process of its own

        def latency(lead: int) -> float:
            """A reminder falls due; a tick is sent: seconds until its messages are in the outbox."""
            key = f"m{district.round_id}:self:{deadline:%Y%m%d}:{lead}"
            with cluster.maker() as session, tenant_context(district.tenant_id):
                session.add(DueItem(tenant_id=district.tenant_id, kind=DueKind.REMINDER, key=key,
                                    due_at=_utcnow() - dt.timedelta(seconds=1)))
                session.commit()
            sent = time.monotonic()
            cluster.enqueue("fivestar.tick")
            cluster.wait_for(lambda: bool(_batch(cluster, district, f"reminder:{key}:%").emails),
                             f"reminder {lead}'s messages", 30, poll=0.01, watch=[default])
            took = time.monotonic() - sent
            cluster.wait_for(lambda: _batch(cluster, district, f"reminder:{key}:%").all_sent,
                             f"reminder {lead} delivered", 30, watch=[default])
            return took

        latency(10)  # warming up: the pool processes' first tasks import and connect
        idle = [latency(lead) for lead in (11, 12, 13)]
        job_id = _ask_report(cluster, district)
        cluster.wait_for(lambda: _job(cluster, district, job_id).state is JobState.RUNNING, "the report running", 30)
        busy = [latency(lead) for lead in (14, 15, 16)]
        assert _job(cluster, district, job_id).state is JobState.RUNNING  # it ran all along
        print(f"reminder latency without a report {idle}, while a report runs {busy}")
        for took in busy:
            assert took - statistics.median(idle) <= 1.0, (idle, busy)
        cluster.wait_for(lambda: _job(cluster, district, job_id).state is JobState.DONE, "the report done", 60,
                         watch=[worker])
