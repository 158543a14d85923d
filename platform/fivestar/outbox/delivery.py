"""Delivering the outbox — e-mail over SMTP, in-app notices, group-robot webhooks — each message
once, retried with backoff (CONTRIBUTING.md "Workers").

`deliver_due` is the worker's sweep over every tenant. Each message is *claimed* through the one lease
(fivestar.kernel.lease: `pending` → `sending` with a fresh lease token, an attempt counted) and the claim
is committed before anything is sent, so two workers running at the same time never send the same
message: the one whose UPDATE matched no row skips it. A worker that dies between claim and mark leaves
the row in 'sending'; a later sweep gives it back after `stuck_after` (its attempt counted, so a
message that kills workers ends as failed), and the dead worker's late "sent", if it comes, no longer
matches its token.

Each step is its own short transaction that starts with a write, which also keeps SQLite's WAL mode
from refusing a read-then-write upgrade under concurrency. An in-app notice is written in the same
transaction that marks its message sent, so it can neither be lost nor doubled. When the SMTP server
cannot be reached, the rest of the sweep's e-mail waits for the next sweep; notices and webhooks go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.config import Settings
from fivestar.db import utcnow
from fivestar.inbox.models import Notice
from fivestar.kernel import lease
from fivestar.notify.errors import WebhookError
from fivestar.notify.models import Webhook
from fivestar.notify.sending import send
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.tenancy import cross_tenant

log = logging.getLogger(__name__)

BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=1)
BACKOFF = lease.Backoff(BACKOFF_BASE, BACKOFF_CAP)
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
    deferred: int = 0  # e-mail left for the next sweep because the SMTP server was unreachable
    aborted: bool = False  # the SMTP server could not be reached; its e-mail waits for the next sweep
    errors: list[str] = field(default_factory=list)


class _ServerUnreachableError(Exception):
    """Connecting to the SMTP server failed: no point trying the rest of the batch now."""


def backoff(attempts: int) -> dt.timedelta:
    """Wait before attempt `attempts + 1`: 1, 2, 4, … minutes, capped at an hour."""
    return BACKOFF.after(attempts)


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
        due = _due_ids(session_factory, moment, limit)
        sender = _Sender(settings)
        try:
            for message_id, channel in due:
                if channel is Channel.EMAIL and report.aborted:
                    report.deferred += 1
                    continue
                message = _claim(session_factory, message_id, moment)
                if message is None:
                    report.skipped += 1
                    continue
                report.claimed += 1
                if message.channel is Channel.INAPP:
                    _deliver_notice(session_factory, message)
                    report.sent += 1
                    continue
                try:
                    if message.channel is Channel.WEBHOOK:
                        _send_webhook(session_factory, settings, message)
                    else:
                        sender.send(message)
                except _ServerUnreachableError as exc:
                    _record_failure(session_factory, message, str(exc), moment, report)
                    report.aborted = True
                    continue
                except _PermanentError as exc:
                    _record_failure(session_factory, message, str(exc), moment, report, final=True)
                    continue
                except (smtplib.SMTPException, OSError, UnicodeError, ValueError, _WebhookFailedError) as exc:
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

#: The outbox as a queue of the one lease (fivestar.kernel.lease): claimed from `pending`, held in
#: `sending` (the claim time is the only sign of life: a send is short), retried with backoff.
OUTBOX_QUEUE = lease.JobQueue(
    name="outbox",
    model=OutboxMessage,
    ready=(DeliveryState.PENDING,),
    leased=DeliveryState.SENDING,
    failed=DeliveryState.FAILED,
    due="next_attempt_at",
    backoff=BACKOFF,
)


def _reclaim_stuck(session_factory: Callable[[], Session], moment: dt.datetime, stuck_after: dt.timedelta) -> int:
    """Give back the messages of workers that died while sending (their claim counted as an attempt),
    or fail those that used their attempts up."""
    note = "投递中断（工作进程未完成发送），将重试 / delivery interrupted, will retry"
    with session_factory() as session:
        taken = lease.reclaim_expired(session, OUTBOX_QUEUE, moment, stuck_after, claimed_at=None, last_error=note)
        session.commit()
    return len(taken)


def _due_ids(session_factory: Callable[[], Session], moment: dt.datetime, limit: int) -> list[tuple[int, Channel]]:
    with session_factory() as session:
        rows = [
            (row.id, row.channel)
            for row in session.execute(
                select(OutboxMessage.id, OutboxMessage.channel)
                .where(lease.claimable(OUTBOX_QUEUE, moment))
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
            )
        ]
        session.commit()
    return rows


@dataclass(frozen=True)
class _Claimed:
    lease: lease.Lease
    tenant_id: int
    channel: Channel
    account_id: int | None
    webhook_id: int | None
    link: str | None
    recipient: str
    subject: str
    body_text: str
    body_html: str | None

    @property
    def id(self) -> int:
        return self.lease.id

    @property
    def attempts(self) -> int:
        return self.lease.attempts


def _claim(session_factory: Callable[[], Session], message_id: int, moment: dt.datetime) -> _Claimed | None:
    """Take the message for this worker, or None when another worker took it (or it was resent)."""
    with session_factory() as session:
        held = lease.claim(session, OUTBOX_QUEUE, message_id, moment)
        if held is None:
            session.rollback()
            return None
        row = session.execute(
            select(
                OutboxMessage.tenant_id,
                OutboxMessage.channel,
                OutboxMessage.account_id,
                OutboxMessage.webhook_id,
                OutboxMessage.link,
                OutboxMessage.recipient,
                OutboxMessage.subject,
                OutboxMessage.body_text,
                OutboxMessage.body_html,
            ).where(OutboxMessage.id == message_id)
        ).one()
        session.commit()
    return _Claimed(held, *row)


def _mark_sent(session_factory: Callable[[], Session], message: _Claimed, moment: dt.datetime) -> None:
    with session_factory() as session:
        _mark_sent_in(session, message)
        session.commit()


def _mark_sent_in(session: Session, message: _Claimed) -> bool:
    """Only the worker that holds the claim may settle the message (a reclaimed row is not ours)."""
    return lease.finish(
        session,
        message.lease,
        DeliveryState.SENT,
        sent_at=utcnow(),
        claimed_at=None,
        last_error=None,
        body_text=SENT_BODY,
        body_html=None,
    )


def _deliver_notice(session_factory: Callable[[], Session], message: _Claimed) -> None:
    """The in-app channel: the notice and the message's `sent` in one transaction (once, or not at all)."""
    with session_factory() as session:
        if not _mark_sent_in(session, message):
            session.rollback()  # reclaimed by a later sweep meanwhile: that sweep delivers it
            return
        session.add(
            Notice(
                tenant_id=message.tenant_id,
                account_id=message.account_id,
                outbox_message_id=message.id,
                title=message.subject,
                body=message.body_text,
                link=message.link,
            )
        )
        session.commit()


class _PermanentError(Exception):
    """Retrying cannot help (the robot was deleted or switched off): fail the message now."""


class _WebhookFailedError(Exception):
    """The robot's server refused or could not be reached: retry with backoff."""


def _send_webhook(session_factory: Callable[[], Session], settings: Settings, message: _Claimed) -> None:
    with session_factory() as session:
        webhook = session.get(Webhook, message.webhook_id) if message.webhook_id is not None else None
        if webhook is None or not webhook.active or webhook.tenant_id != message.tenant_id:
            raise _PermanentError("群机器人已停用或已删除 / the robot was switched off or deleted")
        session.expunge(webhook)
    try:
        send(settings, webhook, message.subject, message.body_text)
    except WebhookError as exc:
        raise _WebhookFailedError(str(exc)) from exc


def _record_failure(
    session_factory: Callable[[], Session],
    message: _Claimed,
    error: str,
    moment: dt.datetime,
    report: DeliveryReport,
    *,
    final: bool = False,
) -> None:
    with session_factory() as session:
        outcome = lease.fail_attempt(
            session, message.lease, moment, final=final, claimed_at=None, last_error=error[:ERROR_MAX]
        )
        session.commit()
    report.errors.append(error[:200])
    if outcome is lease.Outcome.FAILED:
        report.failed += 1
        log.warning("outbox message %s failed after %s attempts: %s", message.id, message.attempts, error)
    elif outcome is lease.Outcome.RETRY:
        report.retried += 1


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
    if isinstance(exc, _WebhookFailedError):
        return str(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{address}: SMTP {code} {_text(detail)}" for address, (code, detail) in exc.recipients.items()]
        return "; ".join(parts) or "recipients refused"
    return f"{type(exc).__name__}: {exc}"


# --- SMTP ----------------------------------------------------------------------------------------


def outbox_message_id(message_id: int, tenant_id: int, domain: str) -> str:
    """The e-mail `Message-ID` of outbox message `message_id`: the same on every attempt.

    SMTP cannot be exactly-once: a worker killed after the server accepted a message and before its
    `sent` was committed sends it again when the claim is given back. With a stable Message-ID the
    second copy is the same message to mail systems and readers (as fivestar.exports does for reports).
    """
    return f"<fivestar-outbox-{message_id}.{tenant_id}@{domain}>"


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
        self.send_email(self._build(message))

    def send_email(self, email: EmailMessage) -> None:
        """Send a ready message on this connection (opened on first use, dropped after an error).
        Also what fivestar.exports sends reports upward with: one SMTP configuration, one code path."""
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(email)
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
        email["Message-ID"] = outbox_message_id(message.id, message.tenant_id, domain)
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


#: Public names for other senders of e-mail (fivestar.exports): the SMTP connection with the outbox's
#: settings, the error raised when the server cannot be reached, and how an SMTP error is described.
SmtpSender = _Sender
SmtpUnreachableError = _ServerUnreachableError
describe_error = _describe

__all__ = [
    "DeliveryReport",
    "SmtpSender",
    "SmtpUnreachableError",
    "backoff",
    "deliver_due",
    "describe_error",
    "outbox_message_id",
]
