"""The production topology on loopback: gunicorn, a Celery worker and beat, as ops/ runs them.

Real processes against PostgreSQL and Redis: gunicorn with the real `ops/gunicorn.conf.py`, a
worker on both queues, and beat with RedBeat, plus an SMTP server on loopback. Nothing here sends a
task: beat's tick (shortened with FIVESTAR_TICK_SECONDS) must reach the worker, which opens a
district's due member round by itself and delivers its e-mail. A second beat waits for the RedBeat
lock and takes over when the first stops.

Isolation on a shared Redis: every key of this test (queues, bindings, RedBeat's schedule and lock)
starts with a prefix of its own (FIVESTAR_REDIS_KEY_PREFIX), deleted at the end; the database is a
fresh one (`fresh_database`).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from fivestar import dbcli
from fivestar.db import make_engine, make_sessionmaker
from fivestar.demo.mailcatcher import MailCatcher, free_port
from fivestar.enums import Gender, OrgKind
from fivestar.member_rounds.models import MemberRound
from fivestar.orgs.models import Organisation
from fivestar.orgs.services import create_org
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.people.models import Member
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from tests.integration.test_scheduling import auto_rules
from tests.support import application_role, service_unavailable
from tests.worker_support import redis_reachable

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"
REDIS_URL = os.environ.get("FIVESTAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TICK_SECONDS = 2
LOCK_TIMEOUT = 10
READY_TIMEOUT = 45.0
EFFECT_TIMEOUT = 30.0
MAIL_SUBJECT = "部署测试邮件"
REMINDER_ADDRESS = "yi.reminder@example.org"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


# --- the processes ------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready_file: Path | None = None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Topology:
    env: dict[str, str]
    engine: Engine
    mail: MailCatcher
    web_url: str
    prefix: str
    tmp: Path
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, command: list[str], *, ready: bool = True) -> Process:
        log = self.tmp / f"{name}.log"
        ready_file = self.tmp / f"{name}.ready" if ready else None
        env = dict(self.env)
        if ready_file is not None:
            variable = "FIVESTAR_BEAT_READY_FILE" if "beat" in command else "FIVESTAR_WORKER_READY_FILE"
            env[variable] = str(ready_file)
        with log.open("wb") as out:
            popen = subprocess.Popen(command, cwd=self.tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
        process = self.processes[name] = Process(name, popen, log, ready_file)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} (exit {p.popen.poll()}) ---\n{p.text()[-2500:]}" for p in self.processes.values()
        )

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = EFFECT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            dead = [p for p in self.processes.values() if not p.alive() and p.name != "beat"]
            if dead:
                pytest.fail(f"{dead[0].name} exited while waiting for {what}:\n{self.logs()}")
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")


def _stop(process: Process, timeout: float = 15) -> None:
    if process.alive():
        process.popen.send_signal(signal.SIGTERM)
    try:
        process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.popen.kill()
        process.popen.wait(timeout=5)


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def _procfile() -> dict[str, str]:
    """Process name → command, read as honcho and foreman read it (other lines are comments)."""
    processes = {}
    for line in (OPS / "Procfile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            processes[match[1]] = match[2]
    return processes


@pytest.fixture
def topology(tmp_path: Path, fresh_database: Callable[[str], str]) -> Iterator[Topology]:
    if not redis_reachable():
        service_unavailable("Redis")
    database_url = fresh_database("postgresql")  # fails or skips by itself without PostgreSQL
    # As in production, the processes connect as a role that owns nothing (ops/README.md).
    roles = ExitStack()
    role, app_url = roles.enter_context(application_role(database_url))
    dbcli.grant(database_url, role)
    prefix = f"fivestar-topology-{uuid.uuid4().hex[:10]}:"
    mail = MailCatcher(tmp_path / "mail").start()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FIVESTAR_", "GUNICORN_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        # As in production: PostgreSQL, Redis, a real secret, secure cookies.
        FIVESTAR_ENV="production",
        FIVESTAR_SECRET_KEY=secrets.token_urlsafe(40),
        FIVESTAR_DATABASE_URL=app_url,
        FIVESTAR_BROKER_URL=REDIS_URL,
        FIVESTAR_REDIS_KEY_PREFIX=prefix,
        FIVESTAR_TICK_SECONDS=str(TICK_SECONDS),
        FIVESTAR_BEAT_LOCK_TIMEOUT=str(LOCK_TIMEOUT),
        FIVESTAR_DATA_DIR=str(tmp_path / "data"),
        FIVESTAR_BASE_URL=f"http://127.0.0.1:{port}",
        FIVESTAR_MAIL_SERVER=mail.host,
        FIVESTAR_MAIL_PORT=str(mail.port),
        # Two small gunicorn processes are enough on a 2-core CI machine.
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="2",
    )
    world = Topology(env, make_engine(database_url), mail, f"http://127.0.0.1:{port}", prefix, tmp_path)
    try:
        yield world
    finally:
        for process in world.processes.values():
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)
        for process in world.processes.values():
            _stop(process)
        mail.stop()
        world.engine.dispose()
        roles.close()
        client = _redis()
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


# --- what the operator's district does ------------------------------------------------------------


def _district_with_a_due_round_and_mail(engine: Engine) -> int:
    """A district whose rules open member rounds by themselves, with one round due a minute ago
    (planned before the platform went down) and one e-mail waiting in the outbox."""
    with make_sessionmaker(engine)() as session:
        tenant = create_tenant(session, slug=f"topo-{uuid.uuid4().hex[:8]}", name="部署测试区直机关工委",
                               rules_toml=auto_rules(branch=None))
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="部署测试党支部")
            session.add(Member(tenant_id=tenant.id, branch_id=branch.id, member_no="T1", name="党员甲",
                               gender=Gender.FEMALE, joined_on=dt.date(2012, 7, 1)))
            session.add(DueItem(tenant_id=tenant.id, kind=DueKind.OPEN_MEMBER_ROUND, key="2026Q3",
                                due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
            session.add(OutboxMessage(tenant_id=tenant.id, channel=Channel.EMAIL, recipient="secretary@example.org",
                                      subject=MAIL_SUBJECT, body_text="由定时任务发送",
                                      dedupe_key=f"topology:{uuid.uuid4().hex}"))
        session.commit()
        return int(tenant.id)


def _district_with_a_reminder_due(engine: Engine) -> int:
    """A district in a running member round (opened an hour ago) whose member has no
    self-assessment yet; its rules remind one day before the deadline at a time of day two minutes
    ago, and the deadline is tomorrow: the reminder is due now and nobody enqueues anything."""
    from zoneinfo import ZoneInfo

    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.enums import Role
    from fivestar.member_rounds.opening import open_round
    from fivestar.timekeeping import clock

    local_now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    send = (local_now - dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    rules = auto_rules(member=False, branch=None).replace(
        'send_time = "09:00"', f'send_time = "{send:%H:%M}"').replace("lead_days = [3, 1]", "lead_days = [1]")
    assert f'send_time = "{send:%H:%M}"' in rules and "lead_days = [1]" in rules
    with make_sessionmaker(engine)() as session:
        tenant = create_tenant(session, slug=f"remind-{uuid.uuid4().hex[:8]}", name="部署提醒测试工委",
                               rules_toml=rules)
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="提醒测试党支部")
            member = Member(tenant_id=tenant.id, branch_id=branch.id, member_no="R1", name="党员乙",
                            gender=Gender.MALE, joined_on=dt.date(2015, 7, 1))
            session.add(member)
            session.flush()
            account = Account(tenant_id=tenant.id, username="yi", display_name="党员乙", password_hash="x",
                              email=REMINDER_ADDRESS, member_id=member.id)
            session.add(account)
            session.flush()
            session.add(RoleGrant(tenant_id=tenant.id, account_id=account.id, role=Role.MEMBER))
            with clock.frozen(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)):
                member_round = open_round(session, tenant).round
            member_round.self_due_at = clock.end_of_day(send.date() + dt.timedelta(days=1), "Asia/Shanghai")
        session.commit()
        return int(tenant.id)


def _reminder_state(engine: Engine, tenant_id: int) -> list[tuple[Channel, DeliveryState]]:
    with make_sessionmaker(engine)() as session, tenant_context(tenant_id):
        rows = session.execute(select(OutboxMessage.channel, OutboxMessage.state)
                               .where(OutboxMessage.dedupe_key.like("reminder:%")))
        return sorted((row.channel, row.state) for row in rows)


def _round_state(engine: Engine, tenant_id: int) -> tuple[list[str], DueState | None]:
    with make_sessionmaker(engine)() as session, tenant_context(tenant_id):
        rounds = list(session.scalars(select(MemberRound.period_key)))
        state = session.scalar(select(DueItem.state).where(DueItem.key == "2026Q3"))
        return rounds, state


def _mail_state(engine: Engine, tenant_id: int) -> list[DeliveryState]:
    """The delivery states of the test's own e-mail (other features may add messages of their own)."""
    with make_sessionmaker(engine)() as session, tenant_context(tenant_id):
        return list(session.scalars(select(OutboxMessage.state).where(OutboxMessage.subject == MAIL_SUBJECT)))


def _subjects(mail: MailCatcher) -> list[str]:
    subjects = []
    for path in mail.messages():
        message: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        subjects.append(str(message["Subject"]))
    return subjects


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback server
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


# --- the tests ------------------------------------------------------------------------------------


def test_the_procfile_runs_what_compose_runs() -> None:
    """The Procfile (plain hosts) and the image's entry point name the same processes."""
    processes = _procfile()
    assert set(processes) == {"web", "worker_default", "worker_reports", "beat"}
    web = shlex.split(processes["web"])
    assert web[:3] == ["gunicorn", "--config", "ops/gunicorn.conf.py"] and web[-1] == "fivestar.wsgi:app"
    queues = [shlex.split(processes[name]) for name in ("worker_default", "worker_reports")]
    assert sorted(command[command.index("--queues") + 1] for command in queues) == ["default", "reports"]
    assert shlex.split(processes["beat"])[:4] == ["celery", "-A", "workers", "beat"]
    entrypoint = (OPS / "entrypoint.sh").read_text(encoding="utf-8")
    assert 'gunicorn --config "${GUNICORN_CONFIG:-/app/gunicorn.conf.py}"' in entrypoint
    assert "fivestar.wsgi:app" in entrypoint
    dockerfile = (OPS / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY ops/gunicorn.conf.py /app/gunicorn.conf.py" in dockerfile
    assert re.search(r"^USER fivestar$", dockerfile, re.M)


def _read_in_subprocess(tmp_path: Path, script: str, **variables: str) -> Any:
    """Run `script` with only `variables` as FIVESTAR_* settings; it prints one JSON line."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    env.update(FIVESTAR_DATA_DIR=str(tmp_path / "data"), **variables)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


_BEAT_CONF = """
import json
from celery import Celery
from fivestar.config import load_settings
from workers.app import app, configure

def read(conf):
    tick = conf.beat_schedule["fivestar-minute-tick"]
    return {"scheduler": conf.beat_scheduler, "lock_key": conf.get("redbeat_lock_key"),
            "lock_timeout": conf.get("redbeat_lock_timeout"), "loop": conf.beat_max_loop_interval,
            "redis_url": conf.get("redbeat_redis_url"), "every": tick["schedule"],
            "expires": tick["options"]["expires"], "keyprefix": conf.broker_transport_options.get("global_keyprefix")}

def configured(**settings):
    other = Celery("probe", set_as_current=False)
    configure(other, load_settings(**settings))
    return read(other.conf)

redis = "redis://127.0.0.1:6379/3"
print(json.dumps({
    "embedded": read(app.conf),  # this process's environment: no broker URL, the file-system broker
    "production": configured(broker_url=redis),
    "shared": configured(broker_url=redis, redis_key_prefix="east:", beat_lock_timeout=30, tick_seconds=20),
}))
"""


def test_beat_uses_redbeat_with_redis_and_the_stock_scheduler_in_the_embedded_default(tmp_path: Path) -> None:
    """`fivestar demo` (file-system broker) keeps Celery's own scheduler; production gets RedBeat."""
    found = _read_in_subprocess(tmp_path, _BEAT_CONF)
    embedded, production, shared = found["embedded"], found["production"], found["shared"]
    assert embedded["scheduler"] == "celery.beat:PersistentScheduler"
    assert embedded["lock_key"] is None and embedded["keyprefix"] is None
    assert (embedded["every"], embedded["expires"]) == (60.0, 55.0)

    assert production["scheduler"] == "redbeat.RedBeatScheduler"
    assert production["redis_url"] == "redis://127.0.0.1:6379/3"
    assert (production["lock_key"], production["lock_timeout"]) == ("fivestar:redbeat:lock", 150)
    assert production["loop"] == 30.0 and production["keyprefix"] is None

    assert (shared["lock_key"], shared["lock_timeout"]) == ("east:fivestar:redbeat:lock", 30)
    assert shared["keyprefix"] == "east:"
    # The lock is renewed at least three times per timeout, and the tick still expires before the next.
    assert shared["loop"] == 10.0 and (shared["every"], shared["expires"]) == (20.0, 18.0)


_WHOAMI = """
import json
from flask import request
from werkzeug.test import Client
from fivestar.web.app import create_app
from fivestar.wsgi import app as entry_point, behind_proxies

def client_address(hops):
    app = create_app()
    app.add_url_rule("/whoami", "whoami", lambda: request.remote_addr or "")
    behind_proxies(app, hops)
    response = Client(app).get("/whoami", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
                               environ_base={"REMOTE_ADDR": "10.0.0.2"})
    return response.get_data(as_text=True)

print(json.dumps({"entry_point": type(entry_point.wsgi_app).__name__,
                  "by_hops": [client_address(hops) for hops in (0, 1, 2)]}))
"""


def test_the_wsgi_entry_point_trusts_only_the_configured_proxies(tmp_path: Path) -> None:
    found = _read_in_subprocess(tmp_path, _WHOAMI, FIVESTAR_PROXY_HOPS="1")
    assert found["entry_point"] == "ProxyFix"  # gunicorn's app follows FIVESTAR_PROXY_HOPS
    # No proxy: the header (anyone's to forge) is ignored; one proxy: the entry it added; two: the one before.
    assert found["by_hops"] == ["10.0.0.2", "198.51.100.7", "203.0.113.9"]


def test_gunicorn_worker_and_beat_open_a_round_and_deliver_mail_by_themselves(topology: Topology) -> None:
    python = sys.executable
    worker_node = f"topology-{uuid.uuid4().hex[:8]}@%h"
    topology.start("web", [
        python, "-m", "gunicorn", "--config", str(OPS / "gunicorn.conf.py"),
        "--bind", topology.web_url.removeprefix("http://"), "fivestar.wsgi:app",
    ], ready=False)
    worker = topology.start("worker", [
        python, "-m", "celery", "-A", "workers", "worker", "--queues", "default,reports",
        "--hostname", worker_node, "--concurrency", "2", "--loglevel", "INFO",
    ])
    beat_command = [python, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"]
    beat = topology.start("beat", beat_command)
    # While everything starts, the district's data arrives as a web request or an import would leave it.
    tenant_id = _district_with_a_due_round_and_mail(topology.engine)
    reminded_id = _district_with_a_reminder_due(topology.engine)

    # (a) gunicorn answers through the real configuration, and its access log keeps no query string.
    topology.wait_for(lambda: _get(f"{topology.web_url}/healthz")[0] == 200, "gunicorn's /healthz", READY_TIMEOUT)
    status, body = _get(f"{topology.web_url}/healthz?probe=query-secret")
    health = json.loads(body)
    assert status == 200 and health["database"] == {"ok": True, "dialect": "postgresql"}
    assert health["broker"] == {"ok": True, "transport": "redis"}
    assert worker.ready_file is not None and beat.ready_file is not None
    topology.wait_for(worker.ready_file.exists, "the worker to be ready", READY_TIMEOUT)
    topology.wait_for(beat.ready_file.exists, "beat to hold the RedBeat lock", READY_TIMEOUT)

    # (b) beat's tick reaches the worker, which opens the due member round — once.
    topology.wait_for(lambda: _round_state(topology.engine, tenant_id)[0] == ["2026Q3"], "the round to open")
    topology.wait_for(lambda: _round_state(topology.engine, tenant_id) == (["2026Q3"], DueState.DONE), "the item done")

    # (c) the tick's outbox sweep delivers the district's e-mail to the SMTP server, once.
    topology.wait_for(lambda: MAIL_SUBJECT in _subjects(topology.mail), "the e-mail at the SMTP server")
    topology.wait_for(lambda: _mail_state(topology.engine, tenant_id) == [DeliveryState.SENT], "the e-mail marked sent")

    # (d) a reminder falls due: the tick plans it, performs it and delivers it, to the inbox and to
    # the SMTP server, once — nobody enqueued anything.
    topology.wait_for(lambda: _reminder_state(topology.engine, reminded_id)
                      == [(Channel.EMAIL, DeliveryState.SENT), (Channel.INAPP, DeliveryState.SENT)],
                      "the reminder sent by e-mail and to the inbox")
    reminder_mail = [subject for subject in _subjects(topology.mail) if "个人自评" in subject]
    assert len(reminder_mail) == 1 and "五星争创" in reminder_mail[0], _subjects(topology.mail)

    # Exactly one beat: a second one waits for the lock (it is not ready and sends nothing) while
    # the first ticks; the health check the containers use sees the lock held.
    standby = topology.start("standby-beat", beat_command)
    # "beat: Starting..." is logged just before beat_init, where RedBeat blocks on the lock.
    topology.wait_for(lambda: "beat: Starting..." in standby.text(), "the standby beat to ask for the lock",
                      READY_TIMEOUT)
    ticks_before = beat.text().count("Sending due task fivestar-minute-tick")
    health_check = subprocess.run([python, "-m", "workers.health", "beat"], cwd=topology.tmp, env=topology.env,
                                  capture_output=True, text=True, timeout=60, check=False)
    assert health_check.returncode == 0, health_check.stderr
    assert f"{topology.prefix}fivestar:redbeat:lock" in health_check.stdout
    topology.wait_for(lambda: beat.text().count("Sending due task fivestar-minute-tick") >= ticks_before + 2,
                      "two more ticks from the first beat")
    assert standby.ready_file is not None and not standby.ready_file.exists()
    assert "Acquired lock" not in standby.text() and "Sending due task" not in standby.text()
    # The worker answers Celery's own health check (what compose runs), through the key prefix.
    node = worker_node.replace("%h", socket.gethostname())
    ping = subprocess.run([python, "-m", "celery", "-A", "workers", "inspect", "ping", "--destination", node,
                           "--timeout", "5"], cwd=topology.tmp, env=topology.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr

    # The first beat stops (a deploy): it releases the lock and the standby takes over.
    _stop(beat)
    assert beat.popen.returncode == 0, beat.text()[-2000:]
    assert "Releasing lock" in beat.text()
    topology.wait_for(standby.ready_file.exists, "the standby beat to take the lock")
    topology.wait_for(lambda: "Sending due task fivestar-minute-tick" in standby.text(), "a tick from the standby")

    # Still exactly one round and one e-mail, after every tick of both beats.
    assert _round_state(topology.engine, tenant_id) == (["2026Q3"], DueState.DONE)
    assert _subjects(topology.mail).count(MAIL_SUBJECT) == 1
    for process in (topology.processes["web"], worker, standby):
        assert process.alive(), process.text()[-2000:]
        assert "Traceback" not in process.text(), process.text()[-3000:]
    web_log = topology.processes["web"].text()
    assert '"GET /healthz HTTP/1.1" 200' in web_log
    assert "query-secret" not in web_log and "probe=" not in web_log
