"""Putting messages in the outbox, and the tenant administrator's "send again".

A message is rendered and written in the caller's transaction, so it exists exactly when the change
that caused it commits (an invitation and its e-mail are one unit). Delivery is the worker's job
(`fivestar.outbox.delivery`). Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from sqlalchemy import CursorResult, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.db import utcnow
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.paths import templates_dir

SUBJECT_MAX = 200
RECIPIENT_MAX = 254
DEDUPE_MAX = 120


@lru_cache(maxsize=1)
def _email_env() -> Environment:
    """A Jinja environment of its own: e-mails are rendered in requests, the CLI and workers alike,
    with or without a Flask app. HTML parts are autoescaped; a missing variable is an error, not a
    silently empty link."""
    return Environment(
        loader=FileSystemLoader(str(templates_dir() / "emails")),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_email(template: str, context: Mapping[str, Any]) -> tuple[str, str | None]:
    """The text part (required: `emails/<template>.txt`) and HTML part (optional: `.html`)."""
    env = _email_env()
    text = env.get_template(f"{template}.txt").render(**context)
    try:
        html: str | None = env.get_template(f"{template}.html").render(**context)
    except TemplateNotFound:
        html = None
    return text, html


def normalise_recipient(recipient: str) -> str:
    """A syntactically valid address (no DNS lookup: intranets often have none), or ServiceError."""
    try:
        return str(validate_email(recipient.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        raise ServiceError(_("电子邮箱地址无效：%(address)s", address=recipient), field="email") from None


def queue_email(
    session: Session,
    *,
    recipient: str,
    subject: str,
    template: str,
    context: Mapping[str, Any],
    dedupe_key: str,
) -> OutboxMessage | None:
    """Render an e-mail and write it to the outbox of the current tenant, in the caller's transaction.

    `dedupe_key` names the business event (`invitation:42`): a second call with the same key in the
    same tenant is a no-op and returns None, so a retried request or task never mails twice.
    """
    address = normalise_recipient(recipient)
    subject = " ".join(subject.split())[:SUBJECT_MAX]  # one line: no header injection
    if not dedupe_key or len(dedupe_key) > DEDUPE_MAX:
        raise ValueError("dedupe_key must be 1-120 characters")
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)) is not None:
        return None
    text, html = render_email(template, context)
    message = OutboxMessage(
        channel=Channel.EMAIL,
        recipient=address[:RECIPIENT_MAX],
        subject=subject,
        body_text=text,
        body_html=html,
        dedupe_key=dedupe_key,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    # A concurrent request may insert the same key between our check and our insert: the unique
    # constraint decides, inside a savepoint so the caller's transaction survives.
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        return None
    return message


@dataclass(frozen=True)
class Outgoing:
    """One message for `queue_many`: an e-mail, an in-app notice or a robot's post."""

    channel: Channel
    recipient: str  # e-mail address; for the other channels a readable name (shown in the delivery log)
    subject: str
    body_text: str
    dedupe_key: str
    body_html: str | None = None
    account_id: int | None = None
    webhook_id: int | None = None
    link: str | None = None


def queue_many(session: Session, tenant_id: int, messages: Sequence[Outgoing]) -> int:
    """Write many messages in the caller's transaction, skipping every dedupe key already in the
    tenant's outbox (a repeated reminder run adds nothing). Set-based: one INSERT … ON CONFLICT DO
    NOTHING per few hundred rows. Returns how many were new."""
    now = utcnow()
    rows = [
        {
            "tenant_id": tenant_id,
            "channel": m.channel,
            "recipient": m.recipient[:RECIPIENT_MAX],
            "subject": " ".join(m.subject.split())[:SUBJECT_MAX],
            "body_text": m.body_text,
            "body_html": m.body_html,
            "dedupe_key": m.dedupe_key,
            "account_id": m.account_id,
            "webhook_id": m.webhook_id,
            "link": m.link,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "max_attempts": 8,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    for row in rows:
        if not row["dedupe_key"] or len(str(row["dedupe_key"])) > DEDUPE_MAX:
            raise ValueError("dedupe_key must be 1-120 characters")
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = 0
    for start in range(0, len(rows), 400):
        statement = (
            insert(OutboxMessage)
            .values(rows[start : start + 400])
            .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
            # SQLAlchemy 2.1 keeps an INSERT's row count only when asked (PostgreSQL gave -1).
            .execution_options(preserve_rowcount=True)
        )
        added += int(cast("CursorResult[Any]", session.execute(statement)).rowcount or 0)
    return added


def resend(session: Session, message: OutboxMessage) -> OutboxMessage:
    """Give a failed message a fresh set of attempts (the administrator fixed the address or server)."""
    if message.state is not DeliveryState.FAILED:
        raise ServiceError(_("只有发送失败的消息可以重新发送"))
    before = {"state": message.state, "attempts": message.attempts, "last_error": message.last_error}
    message.state = DeliveryState.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.claimed_at = None
    session.flush()
    audit.record(
        session,
        "outbox.resend",
        message,
        before=before,
        after={"state": message.state, "attempts": 0, "recipient": message.recipient, "subject": message.subject},
    )
    return message


__all__ = ["Outgoing", "normalise_recipient", "queue_email", "queue_many", "render_email", "resend"]
