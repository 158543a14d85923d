"""Delivering the outbox over SMTP: each message once, retried with backoff (design.md §6).

`deliver_due` is the worker's sweep over every tenant. Each message is *claimed* with a conditional
UPDATE (`state='pending'` → `'sending'`) committed before anything is sent, so two workers running at
the same time never send the same message: the one whose UPDATE matched no row skips it. A worker
that dies between claim and mark leaves the row in 'sending'; a later sweep gives it back after
`stuck_after` (and counts that as an attempt, so a message that kills workers ends as failed).

Each step is its own short transaction that starts with a write, which also keeps SQLite's WAL mode
from refusing a read-then-write upgrade under concurrency.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.orm import Session

from fivestar.config import Settings
from fivestar.db import utcnow
from fivestar.outbox.models import DeliveryState, OutboxMessage
from fivestar.tenancy import cross_tenant

log = logging.getLogger(__name__)

BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=1)
STUCK_AFTER = dt.timedelta(minutes=10)
ERROR_MAX = 1000
SENT_BODY = ""  # bodies are dropped once sent: invitation links must not outlive their delivery in clear text

_REASON = "outbox delivery"


@dataclass
class DeliveryReport:
    """What one sweep did, for the task's log line and for tests."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0
    skipped: int = 0  # claimed by another worker first
    aborted: bool = False  # the server could not be reached; the rest waits for the next sweep
    errors: list[str] = field(default_factory=list)


class _ServerUnreachableError(Exception):
    """Connecting to the SMTP server failed: no point trying the rest of the batch now."""


def backoff(attempts: int) -> dt.timedelta:
    """Wait before attempt `attempts + 1`: 1, 2, 4, … minutes, capped at an hour."""
    exponent = max(attempts - 1, 0)
    if exponent >= 16:
        return BACKOFF_CAP
    return min(BACKOFF_BASE * (1 << exponent), BACKOFF_CAP)


def deliver_due(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    limit: int = 100,
    now: dt.datetime | None = None,
    stuck_after: dt.timedelta = STUCK_AFTER,
) -> DeliveryReport:
    """Send up to `limit` due messages of every tenant; return what happened.

    `now` is for tests (a clock that moves between sweeps); real sweeps use the current time.
    """
    report = DeliveryReport()
    moment = now or utcnow()
    with cross_tenant(_REASON):
        report.reclaimed = _reclaim_stuck(session_factory, moment, stuck_after)
        due_ids = _due_ids(session_factory, moment, limit)
        sender = _Sender(settings)
        try:
            for message_id in due_ids:
                message = _claim(session_factory, message_id, moment)
                if message is None:
                    report.skipped += 1
                    continue
                report.claimed += 1
                try:
                    sender.send(message)
                except _ServerUnreachableError as exc:
                    _record_failure(session_factory, message, str(exc), moment, report)
                    report.aborted = True
                    break
                except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
                    _record_failure(session_factory, message, _describe(exc), moment, report)
                    continue
                _mark_sent(session_factory, message, moment)
                report.sent += 1
        finally:
            sender.close()
    if report.claimed or report.reclaimed:
        log.info("outbox sweep: %s", report)
    return report


# --- the steps, each its own transaction -----------------------------------------------------


def _rowcount(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def _reclaim_stuck(session_factory: Callable[[], Session], moment: dt.datetime, stuck_after: dt.timedelta) -> int:
    cutoff = moment - stuck_after
    stuck = (OutboxMessage.state == DeliveryState.SENDING) & (OutboxMessage.claimed_at < cutoff)
    note = "投递中断（工作进程未完成发送），将重试 / delivery interrupted, will retry"
    with session_factory() as session:
        exhausted = _rowcount(
            session.execute(
                update(OutboxMessage)
                .where(stuck, OutboxMessage.attempts + 1 >= OutboxMessage.max_attempts)
                .values(
                    state=DeliveryState.FAILED, attempts=OutboxMessage.attempts + 1, claimed_at=None, last_error=note
                )
                .execution_options(synchronize_session=False)
            )
        )
        retried = _rowcount(
            session.execute(
                update(OutboxMessage)
                .where(stuck)
                .values(
                    state=DeliveryState.PENDING,
                    attempts=OutboxMessage.attempts + 1,
                    claimed_at=None,
                    next_attempt_at=moment,
                    last_error=note,
                )
                .execution_options(synchronize_session=False)
            )
        )
        session.commit()
    return exhausted + retried


def _due_ids(session_factory: Callable[[], Session], moment: dt.datetime, limit: int) -> list[int]:
    with session_factory() as session:
        ids = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.state == DeliveryState.PENDING, OutboxMessage.next_attempt_at <= moment)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
            )
        )
        session.commit()
    return ids


@dataclass(frozen=True)
class _Claimed:
    id: int
    tenant_id: int
    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    attempts: int
    max_attempts: int
    claimed_at: dt.datetime


def _claim(session_factory: Callable[[], Session], message_id: int, moment: dt.datetime) -> _Claimed | None:
    """Take the message for this worker, or None when another worker took it (or it was resent)."""
    claimed_at = utcnow()
    with session_factory() as session:
        matched = _rowcount(
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.state == DeliveryState.PENDING,
                    OutboxMessage.next_attempt_at <= moment,
                )
                .values(state=DeliveryState.SENDING, claimed_at=claimed_at)
                .execution_options(synchronize_session=False)
            )
        )
        if matched != 1:
            session.rollback()
            return None
        row = session.execute(
            select(
                OutboxMessage.tenant_id,
                OutboxMessage.recipient,
                OutboxMessage.subject,
                OutboxMessage.body_text,
                OutboxMessage.body_html,
                OutboxMessage.attempts,
                OutboxMessage.max_attempts,
            ).where(OutboxMessage.id == message_id)
        ).one()
        session.commit()
    return _Claimed(message_id, *row, claimed_at=claimed_at)


def _owned(message: _Claimed) -> object:
    """Only the worker that holds the claim may settle the message (a reclaimed row is not ours)."""
    return (
        (OutboxMessage.id == message.id)
        & (OutboxMessage.state == DeliveryState.SENDING)
        & (OutboxMessage.claimed_at == message.claimed_at)
    )


def _mark_sent(session_factory: Callable[[], Session], message: _Claimed, moment: dt.datetime) -> None:
    with session_factory() as session:
        session.execute(
            update(OutboxMessage)
            .where(_owned(message))  # type: ignore[arg-type]
            .values(
                state=DeliveryState.SENT,
                attempts=message.attempts + 1,
                sent_at=utcnow(),
                claimed_at=None,
                last_error=None,
                body_text=SENT_BODY,
                body_html=None,
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()


def _record_failure(
    session_factory: Callable[[], Session],
    message: _Claimed,
    error: str,
    moment: dt.datetime,
    report: DeliveryReport,
) -> None:
    attempts = message.attempts + 1
    exhausted = attempts >= message.max_attempts
    values: dict[str, object] = {"attempts": attempts, "claimed_at": None, "last_error": error[:ERROR_MAX]}
    if exhausted:
        values["state"] = DeliveryState.FAILED
    else:
        values["state"] = DeliveryState.PENDING
        values["next_attempt_at"] = moment + backoff(attempts)
    with session_factory() as session:
        session.execute(
            update(OutboxMessage)
            .where(_owned(message))  # type: ignore[arg-type]
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    report.errors.append(error[:200])
    if exhausted:
        report.failed += 1
        log.warning("outbox message %s failed after %s attempts: %s", message.id, attempts, error)
    else:
        report.retried += 1


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{address}: SMTP {code} {_text(detail)}" for address, (code, detail) in exc.recipients.items()]
        return "; ".join(parts) or "recipients refused"
    return f"{type(exc).__name__}: {exc}"


# --- SMTP ----------------------------------------------------------------------------------------


class _Sender:
    """One SMTP connection for the whole sweep, reopened after an error."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            smtp: smtplib.SMTP
            if s.mail_use_ssl:
                smtp = smtplib.SMTP_SSL(
                    s.mail_server, s.mail_port, timeout=s.mail_timeout_seconds, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.mail_server, s.mail_port, timeout=s.mail_timeout_seconds)
            try:
                if s.mail_use_tls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.mail_username:
                    smtp.login(s.mail_username, s.mail_password)
            except BaseException:
                smtp.close()
                raise
        except (OSError, smtplib.SMTPException) as exc:
            raise _ServerUnreachableError(f"{s.mail_server}:{s.mail_port}: {_describe(exc)}") from exc
        return smtp

    def send(self, message: _Claimed) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(self._build(message))
        except BaseException:
            self.close()
            raise

    def _build(self, message: _Claimed) -> EmailMessage:
        sender = self.settings.mail_sender
        email = EmailMessage()
        email["From"] = sender
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = format_datetime(utcnow())
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        email["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain=domain)
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.body_text)
        if message.body_html:
            email.add_alternative(message.body_html, subtype="html")
        return email

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


__all__ = ["DeliveryReport", "backoff", "deliver_due"]
