"""Administering group robots (create, change, switch on/off, delete) and choosing which robots hear
of something. Services flush, never commit; an edit names the version its form was opened at
(`fivestar.kernel.versioning`), so two administrators saving the same robot never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.config import Settings
from fivestar.enums import OrgKind
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel.versioning import expect_version, saving
from fivestar.notify.encryption import decrypt, encrypt
from fivestar.notify.errors import DecryptionError
from fivestar.notify.models import Webhook, WebhookKind
from fivestar.notify.url_policy import check_url
from fivestar.orgs.models import Organisation
from fivestar.tenancy import require_tenant_id

MAX_SECRET = 200
AUDITED = ("name", "kind", "organisation_id", "active")


def webhooks_for(session: Session, organisation_ids: Collection[int]) -> list[Webhook]:
    """The current tenant's active robots that are district-wide or set on one of
    `organisation_ids` (one query). Pass the organisations whose groups should hear of something —
    e.g. a branch and its 机关党委 — the function does not climb the tree by itself."""
    require_tenant_id()
    ids = sorted({int(org_id) for org_id in organisation_ids})
    scope: ColumnElement[bool] = Webhook.organisation_id.is_(None)
    if ids:
        scope = or_(scope, Webhook.organisation_id.in_(ids))
    return list(session.scalars(select(Webhook).where(Webhook.active.is_(True), scope).order_by(Webhook.id)))


@dataclass(frozen=True)
class WebhookInput:
    """What the form gives. On an edit, an empty `url` or `secret` keeps the stored one."""

    name: str
    kind: str
    organisation_id: int | None
    url: str = ""
    secret: str = ""
    clear_secret: bool = False
    active: bool = True


def _snapshot(webhook: Webhook) -> dict[str, Any]:
    """Audit data without the address or secret, not even encrypted."""
    return audit.snapshot(webhook, AUDITED)


def _kind(value: str) -> WebhookKind:
    try:
        return WebhookKind(value)
    except ValueError:
        raise ServiceError(_("请选择机器人类型"), field="kind") from None


def _name(value: str) -> str:
    name = (value or "").strip()
    if not name:
        raise ServiceError(_("请填写名称"), field="name")
    if len(name) > 60:
        raise ServiceError(_("名称最多 60 个字"), field="name")
    return name


def _organisation(session: Session, organisation_id: int | None) -> int | None:
    """An active organisation of the current tenant (the 工委 itself means the whole district)."""
    if organisation_id is None:
        return None
    org = session.scalar(select(Organisation).where(Organisation.id == organisation_id))
    if org is None or not org.active:
        raise ServiceError(_("请选择适用的组织"), field="organisation_id")
    return None if org.kind is OrgKind.COMMITTEE else org.id


def _secret(kind: WebhookKind, value: str) -> str:
    secret = (value or "").strip()
    if kind is WebhookKind.WECOM:
        raise ServiceError(_("企业微信群机器人没有加签密钥，请留空"), field="secret")
    if len(secret) > MAX_SECRET or not secret.startswith("SEC") or not secret.isascii() or not secret.isprintable():
        raise ServiceError(_("钉钉加签密钥是以 SEC 开头的一串字符，请从机器人安全设置中复制"), field="secret")
    return secret


def _expect_version(webhook: Webhook, version: int | None) -> None:
    """The version the form was opened at must still be the robot's (a missing one is stale too)."""
    expect_version(webhook, version, message=_("该群机器人已被他人修改（您打开后有新的保存），请核对后重新填写。"))


def _saving(session: Session) -> AbstractContextManager[None]:
    """The change in a savepoint, flushed: a save that lost the race becomes a message."""
    return saving(session, message=_("该群机器人已被他人修改，请刷新后重试。"))


def create_webhook(session: Session, settings: Settings, data: WebhookInput) -> Webhook:
    """Register a robot for the current tenant: the address checked and encrypted, the secret too."""
    require_tenant_id()
    name = _name(data.name)
    kind = _kind(data.kind)
    organisation_id = _organisation(session, data.organisation_id)
    url = check_url(settings, data.url, kind)
    secret = _secret(kind, data.secret) if (data.secret or "").strip() else None
    webhook = Webhook(
        name=name,
        kind=kind,
        organisation_id=organisation_id,
        url_encrypted=encrypt(settings, url),
        secret_encrypted=encrypt(settings, secret) if secret else None,
        active=data.active,
        created_by=audit.current_actor().name[:120],
    )
    session.add(webhook)
    session.flush()
    audit.record(session, "webhook.create", webhook, after={**_snapshot(webhook), "signed": secret is not None})
    return webhook


def update_webhook(
    session: Session, settings: Settings, webhook: Webhook, data: WebhookInput, *, version: int | None
) -> Webhook:
    """Change a robot. An empty address or secret keeps the stored one; `clear_secret` removes it."""
    require_tenant_id()
    _expect_version(webhook, version)
    name = _name(data.name)
    kind = _kind(data.kind)
    organisation_id = _organisation(session, data.organisation_id)
    new_url = (data.url or "").strip()
    if new_url:
        url_token = encrypt(settings, check_url(settings, new_url, kind))
    else:
        try:
            check_url(settings, decrypt(settings, webhook.url_encrypted), kind)
        except DecryptionError as exc:
            raise ServiceError(str(exc), field="url") from None
        url_token = webhook.url_encrypted
    secret_token = webhook.secret_encrypted
    if (data.secret or "").strip():
        secret_token = encrypt(settings, _secret(kind, data.secret))
    elif data.clear_secret or kind is WebhookKind.WECOM:
        secret_token = None
    before = _snapshot(webhook)
    changes: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "organisation_id": organisation_id,
        "active": bool(data.active),
        "url_encrypted": url_token,
        "secret_encrypted": secret_token,
    }
    changed = {key: value for key, value in changes.items() if getattr(webhook, key) != value}
    if not changed:
        raise ServiceError(_("没有需要保存的修改"))
    with _saving(session):
        for key, value in changed.items():
            setattr(webhook, key, value)
    after = {
        **_snapshot(webhook),
        "url_changed": "url_encrypted" in changed,
        "secret_changed": "secret_encrypted" in changed,
    }
    audit.record(session, "webhook.update", webhook, before=before, after=after)
    return webhook


def set_active(session: Session, webhook: Webhook, active: bool, *, version: int | None) -> Webhook:
    """Switch a robot on or off (off: reminders no longer go to it; it stays to be switched on again)."""
    require_tenant_id()
    _expect_version(webhook, version)
    if webhook.active is active:
        raise ServiceError(_("该群机器人已启用") if active else _("该群机器人已停用"))
    before = _snapshot(webhook)
    with _saving(session):
        webhook.active = active
    action = "webhook.activate" if active else "webhook.deactivate"
    audit.record(session, action, webhook, before=before, after=_snapshot(webhook))
    return webhook


def delete_webhook(session: Session, webhook: Webhook, *, version: int | None) -> None:
    """Remove a robot and its encrypted address for good (the audit keeps its name and scope)."""
    require_tenant_id()
    _expect_version(webhook, version)
    before = _snapshot(webhook)
    try:
        with _saving(session):
            session.delete(webhook)
    except IntegrityError:
        raise ServiceError(_("该群机器人还有关联记录，不能删除，请改为停用")) from None
    audit.record(session, "webhook.delete", object_type=Webhook.__tablename__, object_id=webhook.id, before=before)
