"""The outbox: queueing in the caller's transaction, delivery over a real SMTP server on loopback,
retries with backoff, giving up, reclaiming a dead worker's message, and never sending twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import socket
import threading
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.db import utcnow
from fivestar.errors import ServiceError
from fivestar.outbox import delivery
from fivestar.outbox.delivery import backoff, deliver_due
from fivestar.outbox.models import DeliveryState, OutboxMessage
from fivestar.outbox.services import queue_email, resend
from fivestar.tenancy import cross_tenant, tenant_context

SAMPLE_RULES = Path(__file__).resolve().parents[2] / "tenants" / "notice-illustrative.toml"


# --- a real SMTP server on loopback ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler that keeps what it receives, or refuses recipients when told to."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.refuse = False
        self.delay = 0.0
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
        controller.loop.close()


def mail_settings(settings: Any, port: int, **extra: Any) -> Any:
    return settings.model_copy(
        update={"mail_server": "127.0.0.1", "mail_port": port, "mail_timeout_seconds": 5.0, **extra}
    )


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    """Sessions on the test's connection: what deliver_due commits is rolled back with the test."""
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def tenant(create_tenant: Any) -> Any:
    return create_tenant(slug="mail-a")


def _queue(session: Session, tenant: Any, n: int = 1, *, key: str = "k") -> list[OutboxMessage]:
    messages = []
    with tenant_context(tenant.id):
        for i in range(n):
            message = queue_email(
                session,
                recipient=f"user{i}@example.org",
                subject="【五星争创】账号邀请 / Your Fivestar account",
                template="invitation",
                context={
                    "display_name": f"用户{i}",
                    "username": f"user{i}",
                    "tenant_name": "测试工委",
                    "link": f"http://fivestar.test/t/mail-a/invite/token-{i}",
                    "expires": "2030-01-01 00:00 (Asia/Shanghai)",
                    "days": 7,
                },
                dedupe_key=f"{key}:{i}",
            )
            assert message is not None
            messages.append(message)
    session.flush()
    return messages


def _fresh(session: Session, message_id: int) -> OutboxMessage:
    session.expire_all()
    with cross_tenant("test reads the outbox"):
        found = session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
    assert found is not None
    return found


# --- queueing ------------------------------------------------------------------------------------


def test_queue_email_renders_both_parts_and_dedupes(session: Session, tenant: Any) -> None:
    (message,) = _queue(session, tenant)
    assert message.state is DeliveryState.PENDING and message.attempts == 0
    assert "用户0，您好" in message.body_text and "token-0" in message.body_text
    assert message.body_text.index("您好") < message.body_text.index("Hello")
    assert message.body_html is not None and 'href="http://fivestar.test/t/mail-a/invite/token-0"' in message.body_html
    with tenant_context(tenant.id):
        again = queue_email(
            session,
            recipient="other@example.org",
            subject="x",
            template="invitation",
            context={"display_name": "", "username": "", "tenant_name": "", "link": "", "expires": "", "days": 1},
            dedupe_key="k:0",
        )
        assert again is None
        assert session.scalar(select(OutboxMessage.recipient).where(OutboxMessage.dedupe_key == "k:0")) == (
            "user0@example.org"
        )


def test_the_same_key_in_another_tenant_is_another_message(session: Session, create_tenant: Any) -> None:
    first = _queue(session, create_tenant(slug="mail-one"))
    second = _queue(session, create_tenant(slug="mail-two"))
    assert first[0].id != second[0].id


def test_html_part_escapes_what_people_typed(session: Session, tenant: Any) -> None:
    with tenant_context(tenant.id):
        message = queue_email(
            session,
            recipient="x@example.org",
            subject="s\r\nBcc: victim@example.org",
            template="invitation",
            context={
                "display_name": "<script>alert(1)</script>",
                "username": "u",
                "tenant_name": "t",
                "link": "http://fivestar.test/",
                "expires": "",
                "days": 1,
            },
            dedupe_key="esc",
        )
    assert message is not None and message.body_html is not None
    assert "<script>" not in message.body_html and "&lt;script&gt;" in message.body_html
    assert "\n" not in message.subject and "\r" not in message.subject


def test_queue_email_refuses_a_bad_address(session: Session, tenant: Any) -> None:
    with tenant_context(tenant.id), pytest.raises(ServiceError) as refused:
        queue_email(session, recipient="no-at-sign", subject="s", template="invitation", context={}, dedupe_key="bad")
    assert refused.value.field == "email"


# --- delivery ------------------------------------------------------------------------------------


def test_delivers_over_smtp_and_marks_sent(
    session: Session, tenant: Any, factory: Callable[[], Session], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    messages = _queue(session, tenant, 2)
    report = deliver_due(factory, mail_settings(settings, port))
    assert (report.claimed, report.sent, report.retried, report.failed) == (2, 2, 0, 0)
    assert sorted(str(m["To"]) for m in mailbox.received) == ["user0@example.org", "user1@example.org"]
    received = mailbox.received[0]
    assert str(received["Subject"]) == "【五星争创】账号邀请 / Your Fivestar account"
    assert str(received["From"]) == settings.mail_sender
    text = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert text is not None and "您好" in text.get_content()
    assert html is not None and "<a href=" in html.get_content()
    for message in messages:
        stored = _fresh(session, message.id)
        assert stored.state is DeliveryState.SENT and stored.attempts == 1 and stored.sent_at is not None
        assert stored.claimed_at is None and stored.last_error is None
        assert "token-" not in stored.body_text and stored.body_html is None  # links do not outlive delivery
    assert deliver_due(factory, mail_settings(settings, port)).claimed == 0
    assert len(mailbox.received) == 2


def test_delivery_covers_every_tenant(
    session: Session, create_tenant: Any, factory: Callable[[], Session], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    _queue(session, create_tenant(slug="mail-east"))
    _queue(session, create_tenant(slug="mail-west"))
    assert deliver_due(factory, mail_settings(settings, port)).sent == 2
    assert len(mailbox.received) == 2


def test_refusal_retries_with_backoff_then_fails(
    session: Session, tenant: Any, factory: Callable[[], Session], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    mailbox.refuse = True
    (message,) = _queue(session, tenant)
    message.max_attempts = 4
    session.flush()
    mail = mail_settings(settings, port)
    now = utcnow()
    waits = []
    for attempt in range(1, 4):
        report = deliver_due(factory, mail, now=now)
        assert report.retried == 1, report
        stored = _fresh(session, message.id)
        assert stored.state is DeliveryState.PENDING and stored.attempts == attempt
        assert stored.last_error is not None and "550" in stored.last_error
        waits.append(stored.next_attempt_at - now)
        assert deliver_due(factory, mail, now=now).claimed == 0  # not due again before the wait is over
        now = stored.next_attempt_at
    assert waits == [dt.timedelta(minutes=1), dt.timedelta(minutes=2), dt.timedelta(minutes=4)]
    report = deliver_due(factory, mail, now=now)
    assert report.failed == 1
    stored = _fresh(session, message.id)
    assert stored.state is DeliveryState.FAILED and stored.attempts == 4 and "550" in (stored.last_error or "")
    assert deliver_due(factory, mail, now=now + dt.timedelta(days=1)).claimed == 0
    assert mailbox.received == []


def test_backoff_is_capped() -> None:
    assert backoff(1) == dt.timedelta(minutes=1)
    assert backoff(5) == dt.timedelta(minutes=16)
    assert backoff(7) == delivery.BACKOFF_CAP
    assert backoff(500) == delivery.BACKOFF_CAP


def test_server_down_schedules_a_retry_and_stops_the_sweep(
    session: Session, tenant: Any, factory: Callable[[], Session], settings: Any
) -> None:
    first, second = _queue(session, tenant, 2)
    report = deliver_due(factory, mail_settings(settings, free_port()))  # nobody listens there
    assert report.aborted and report.claimed == 1 and report.retried == 1 and report.sent == 0
    tried, untouched = _fresh(session, first.id), _fresh(session, second.id)
    assert tried.state is DeliveryState.PENDING and tried.attempts == 1
    assert tried.last_error is not None and "127.0.0.1" in tried.last_error
    assert tried.next_attempt_at > utcnow()
    assert untouched.state is DeliveryState.PENDING and untouched.attempts == 0


def test_server_back_up_delivers_what_waited(
    session: Session, tenant: Any, factory: Callable[[], Session], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    (message,) = _queue(session, tenant)
    deliver_due(factory, mail_settings(settings, free_port()))
    later = utcnow() + dt.timedelta(minutes=2)
    assert deliver_due(factory, mail_settings(settings, port), now=later).sent == 1
    stored = _fresh(session, message.id)
    assert stored.state is DeliveryState.SENT and stored.attempts == 2
    assert len(mailbox.received) == 1


def test_a_claimed_message_is_not_sent_by_a_second_sweep(
    session: Session, tenant: Any, factory: Callable[[], Session], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    claimed, free = _queue(session, tenant, 2)
    # Another worker claimed the first one a moment ago and is still talking to the server.
    with cross_tenant("test plays the other worker"):
        first = delivery._claim(factory, claimed.id, utcnow())
        assert first is not None
        assert delivery._claim(factory, claimed.id, utcnow()) is None  # the conditional UPDATE matched nothing
    report = deliver_due(factory, mail_settings(settings, port))
    assert report.sent == 1 and report.reclaimed == 0
    assert [str(m["To"]) for m in mailbox.received] == [free.recipient]
    assert _fresh(session, claimed.id).state is DeliveryState.SENDING


def test_a_sweep_skips_a_message_claimed_between_listing_and_claiming(
    session: Session,
    tenant: Any,
    factory: Callable[[], Session],
    settings: Any,
    smtp: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox, port = smtp
    (message,) = _queue(session, tenant)
    real_due_ids = delivery._due_ids

    def listed_then_taken(*args: Any) -> list[int]:
        ids = real_due_ids(*args)
        assert delivery._claim(factory, message.id, utcnow()) is not None  # the other worker wins the race
        return ids

    monkeypatch.setattr(delivery, "_due_ids", listed_then_taken)
    report = deliver_due(factory, mail_settings(settings, port))
    assert (report.claimed, report.skipped, report.sent) == (0, 1, 0)
    assert mailbox.received == []


def test_a_dead_workers_message_is_reclaimed_and_counted(
    session: Session, tenant: Any, factory: Callable[[], Session], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    stuck, doomed = _queue(session, tenant, 2)
    with cross_tenant("test"):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([stuck.id, doomed.id]))
            # as a claim leaves them: `sending`, the attempt counted (fivestar.kernel.lease)
            .values(state=DeliveryState.SENDING, claimed_at=utcnow() - dt.timedelta(minutes=30), attempts=1)
        )
        session.execute(update(OutboxMessage).where(OutboxMessage.id == doomed.id).values(attempts=8, max_attempts=8))
    session.flush()
    report = deliver_due(factory, mail_settings(settings, port))
    assert report.reclaimed == 2 and report.sent == 1
    assert _fresh(session, stuck.id).state is DeliveryState.SENT
    assert _fresh(session, stuck.id).attempts == 2  # the interrupted try counts
    failed = _fresh(session, doomed.id)
    assert failed.state is DeliveryState.FAILED and "interrupted" in (failed.last_error or "")
    assert len(mailbox.received) == 1


def test_resend_gives_a_failed_message_new_attempts(session: Session, tenant: Any) -> None:
    (message,) = _queue(session, tenant)
    with tenant_context(tenant.id):
        with pytest.raises(ServiceError):
            resend(session, message)
        message.state = DeliveryState.FAILED
        message.attempts = 8
        message.last_error = "SMTP 550"
        session.flush()
        resend(session, message)
    assert message.state is DeliveryState.PENDING and message.attempts == 0
    assert message.next_attempt_at <= utcnow()


# --- two workers at once, on a database where each step really commits -------------------------


@pytest.fixture(scope="module")
def committed(backend: str, fresh_database: Callable[[str], str]) -> Iterator[tuple[Callable[[], Session], int]]:
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.tenants.services import create_tenant

    engine = make_engine(fresh_database(backend))
    maker = make_sessionmaker(engine)
    with maker() as session:
        rules = SAMPLE_RULES.read_text("utf-8")
        tenant = create_tenant(session, slug="mail-race", name="并发测试工委", rules_toml=rules)
        session.commit()
        tenant_id = tenant.id
    yield maker, tenant_id
    engine.dispose()


def test_two_concurrent_sweeps_send_each_message_once(
    committed: tuple[Callable[[], Session], int], settings: Any, smtp: tuple[Mailbox, int]
) -> None:
    maker, tenant_id = committed
    mailbox, port = smtp
    mailbox.delay = 0.005
    count = 24
    with maker() as session, tenant_context(tenant_id):
        for i in range(count):
            queue_email(
                session,
                recipient=f"race{i}@example.org",
                subject="并发",
                template="invitation",
                context={
                    "display_name": "x",
                    "username": "x",
                    "tenant_name": "x",
                    "link": "x",
                    "expires": "x",
                    "days": 1,
                },
                dedupe_key=f"race:{i}",
            )
        session.commit()
    mail = mail_settings(settings, port)
    start = threading.Barrier(2)
    reports: list[delivery.DeliveryReport] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(timeout=10)
            reports.append(deliver_due(maker, mail))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    recipients = [str(m["To"]) for m in mailbox.received]
    assert sorted(recipients) == sorted(f"race{i}@example.org" for i in range(count))  # each exactly once
    assert sum(r.sent for r in reports) == count
    assert sum(r.claimed for r in reports) == count
    with maker() as session, tenant_context(tenant_id):
        states = list(session.scalars(select(OutboxMessage.state).where(OutboxMessage.dedupe_key.startswith("race:"))))
    assert states == [DeliveryState.SENT] * count
