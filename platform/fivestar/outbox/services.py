"""Putting messages in the outbox, and the tenant administrator's "send again".

A message is rendered and written in the caller's transaction, so it exists exactly when the change
that caused it commits (an invitation and its e-mail are one unit). Delivery is the worker's job
(`fivestar.outbox.delivery`). Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from sqlalchemy import select
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


def resend(session: Session, message: OutboxMessage) -> OutboxMessage:
    """Give a failed message a fresh set of attempts (the administrator fixed the address or server)."""
    if message.state is not DeliveryState.FAILED:
        raise ServiceError(_("只有发送失败的邮件可以重新发送"))
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


__all__ = ["normalise_recipient", "queue_email", "render_email", "resend"]
