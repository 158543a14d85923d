"""Group robots (群机器人) of WeCom (企业微信) and DingTalk (钉钉): a reminder channel besides e-mail
and the in-app inbox.

A tenant administrator registers a robot's webhook address for the whole district or for one
organisation; the outbox (fivestar.outbox.delivery) asks `webhooks_for` which robots a reminder goes
to and calls `send` for each.

Why the address is a secret: a robot's URL carries its credential (WeCom's `key`, DingTalk's
`access_token`) — whoever has it can post into the group. So the whole URL, and DingTalk's 加签
secret, are stored encrypted (Fernet, with a key derived from the instance's secret key), never
logged, shown masked in pages, and kept out of every error message and audit event.

Why the host list: the server posts to an address a user typed, which without a guard would let
an administrator make the server call anything inside its network (SSRF). Only https to the hosts
of `FIVESTAR_WEBHOOK_HOSTS` is allowed (plain http only to 127.0.0.1, and only when that is listed:
the tests' local robot), redirects are not followed, and the address is checked again at sending.

Formats (the vendors' documentation):
- WeCom 群机器人配置说明, https://developer.work.weixin.qq.com/document/path/91770 — POST JSON
  `{"msgtype": "markdown", "markdown": {"content": …}}` to
  `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`; markdown content at most 4096 bytes of
  UTF-8; the answer is `{"errcode": 0, "errmsg": "ok"}` on success.
- DingTalk 自定义机器人, https://open.dingtalk.com/document/robots/custom-robot-access and message
  types https://open.dingtalk.com/document/development/robot-message-type — POST JSON
  `{"msgtype": "markdown", "markdown": {"title": …, "text": …}}` to
  `https://oapi.dingtalk.com/robot/send?access_token=…`; the title is what the conversation list
  shows, the text the message. 加签 (https://open.dingtalk.com/document/robots/customize-robot-security-settings):
  `sign = urlEncode(base64(HmacSHA256(key=secret, message=timestamp + "\\n" + secret)))`, the
  timestamp in milliseconds (at most an hour off), both appended as query parameters; the secret
  is the `SEC…` string of the robot's security settings. Success is `errcode` 0 as well.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import ColumnElement, ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from fivestar import audit
from fivestar.config import Settings
from fivestar.db import Base, utcnow
from fivestar.enums import OrgKind, db_enum
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _, _l
from fivestar.orgs.models import Organisation
from fivestar.tenancy import TenantOwned, require_tenant_id

log = logging.getLogger(__name__)


class WebhookKind(enum.StrEnum):
    WECOM = "wecom"  # 企业微信群机器人
    DINGTALK = "dingtalk"  # 钉钉自定义机器人


KIND_LABELS = {WebhookKind.WECOM: _l("企业微信"), WebhookKind.DINGTALK: _l("钉钉")}


@dataclass(frozen=True)
class _Vendor:
    host: str
    path: str
    credential: str  # the query parameter that carries the robot's credential


VENDORS = {
    WebhookKind.WECOM: _Vendor("qyapi.weixin.qq.com", "/cgi-bin/webhook/send", "key"),
    WebhookKind.DINGTALK: _Vendor("oapi.dingtalk.com", "/robot/send", "access_token"),
}
LOOPBACK = "127.0.0.1"
MAX_URL = 2000
MAX_SECRET = 200
MAX_CONTENT_BYTES = 4096  # WeCom's documented markdown limit; DingTalk gets the same, conservatively
MAX_ANSWER_BYTES = 64 * 1024
MASK = "••••"


class WebhookError(Exception):
    """A message did not reach the group. `str()` is a short reason for people (HTTP status,
    errcode/errmsg or the connection error) that never contains the robot's key or secret."""


class DecryptionError(WebhookError):
    """A stored address or secret cannot be decrypted: the instance's secret key is not the one it
    was stored with (or the stored value is damaged)."""


class Webhook(TenantOwned, Base):
    """One group robot of a tenant: for the whole district (`organisation_id` NULL) or one organisation."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[WebhookKind] = mapped_column(db_enum(WebhookKind, "webhook_kind"))
    url_encrypted: Mapped[str] = mapped_column(Text)  # Fernet token of the whole URL (it holds the key)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)  # DingTalk 加签 secret, Fernet token
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(["tenant_id", "organisation_id"], ["organisations.tenant_id", "organisations.id"]),
        Index("ix_webhooks_tenant_organisation", "tenant_id", "organisation_id"),
    )

    def __repr__(self) -> str:  # never the URL
        return f"<Webhook {self.id} {self.kind} {self.name!r}>"


# --- encryption ----------------------------------------------------------------------------------

_HKDF_INFO = b"fivestar.notify.webhooks: group-robot URLs and secrets, v1"


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    """A Fernet key of its own for this purpose, derived from the instance's secret key (HKDF), so
    the session-signing key is never used directly and rotating it is one variable for both."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(settings: Settings, text: str) -> str:
    """Encrypt `text` for storage (a Fernet token: authenticated, with its own random IV)."""
    return _fernet(settings.resolved_secret_key).encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    """Decrypt a stored token; a token made under another secret key raises `DecryptionError`."""
    try:
        return _fernet(settings.resolved_secret_key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            _(
                "无法解密已保存的群机器人地址或密钥：服务器密钥（FIVESTAR_SECRET_KEY）与保存时不同，"
                "请重新填写该机器人的地址"
            )
        ) from None


# --- addresses -----------------------------------------------------------------------------------


def _url_error(message: str, field: str = "url") -> ServiceError:
    return ServiceError(message, field=field)


def check_url(settings: Settings, url: str, kind: WebhookKind) -> str:
    """The address, stripped, if the server may post to it for a robot of `kind`; else a
    `ServiceError` on the `url` (or `kind`) field that names what to fix and never repeats the key."""
    url = (url or "").strip()
    if not url:
        raise _url_error(_("请填写 Webhook 地址"))
    malformed = _("Webhook 地址格式不正确，请从群机器人设置中完整复制")
    if len(url) > MAX_URL or any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        raise _url_error(malformed)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _url_error(malformed) from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise _url_error(malformed)
    allowed = settings.webhook_host_set
    loopback = host == LOOPBACK and LOOPBACK in allowed
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise _url_error(_("Webhook 地址必须以 https:// 开头"))
    if host not in allowed:
        raise _url_error(
            _(
                "不能发送到 %(host)s：本平台只允许这些地址的群机器人：%(hosts)s",
                host=host,
                hosts="、".join(sorted(allowed)) or _("（无）"),
            )
        )
    if port not in (None, 443) and not loopback:
        raise _url_error(_("Webhook 地址不能指定端口"))
    for vendor_kind, vendor in VENDORS.items():
        if host != vendor.host:
            continue
        if vendor_kind is not kind:
            raise _url_error(
                _("这是%(vendor)s群机器人的地址，请把类型选为“%(vendor)s”", vendor=KIND_LABELS[vendor_kind]),
                field="kind",
            )
        credential = dict(parse_qsl(parts.query)).get(vendor.credential, "")
        if parts.path != vendor.path or not credential:
            raise _url_error(
                _(
                    "这不是完整的%(vendor)s群机器人地址（应为 https://%(host)s%(path)s?%(param)s=…），"
                    "请从群机器人设置中完整复制",
                    vendor=KIND_LABELS[vendor_kind],
                    host=vendor.host,
                    path=vendor.path,
                    param=vendor.credential,
                )
            )
    return url


def _mask_value(value: str) -> str:
    return MASK + value[-4:] if len(value) >= 12 else MASK


def mask_url(url: str) -> str:
    """The address with every query value hidden but its last four characters (enough for an
    administrator to tell two robots apart): `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=••••1234`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    host = parts.hostname or ""
    netloc = f"{host}:{port}" if port is not None else host
    query = "&".join(f"{name}={_mask_value(value)}" for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def masked_url(settings: Settings, webhook: Webhook) -> str:
    """What a page shows of a robot's address (a note instead when it cannot be decrypted)."""
    try:
        return mask_url(decrypt(settings, webhook.url_encrypted))
    except DecryptionError:
        return _("（无法解密：服务器密钥已更换，请重新填写地址）")


def _secrets_of(url: str, secret: str | None) -> list[str]:
    """The strings no message may contain: the URL, its query values, the secret."""
    found = [url]
    with suppress(ValueError):
        found += [value for _name, value in parse_qsl(urlsplit(url).query) if len(value) >= 4]
    if secret:
        found.append(secret)
    return sorted(found, key=len, reverse=True)


def _scrub(message: str, hidden: list[str]) -> str:
    for value in hidden:
        message = message.replace(value, MASK)
    return message


# --- which robots ----------------------------------------------------------------------------------


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


# --- messages --------------------------------------------------------------------------------------


def _clip(text: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """At most `limit` bytes of UTF-8, cut at a character boundary, with an ellipsis if cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode("utf-8", errors="ignore") + "…"


def payload(kind: WebhookKind, title: str, text: str) -> dict[str, Any]:
    """The JSON body of a markdown message in the vendor's format (see the module docstring).

    WeCom has no title field: the title is the first line, in bold. DingTalk shows `title` in the
    conversation list and only `text` in the message, so the text starts with the title as a
    heading; it joins lines into paragraphs, because its markdown drops single line breaks.
    """
    title = title.strip()
    text = text.strip()
    if WebhookKind(kind) is WebhookKind.WECOM:
        return {"msgtype": "markdown", "markdown": {"content": _clip(f"**{title}**\n{text}")}}
    body = "\n\n".join(line for line in text.splitlines() if line.strip())
    return {"msgtype": "markdown", "markdown": {"title": title[:100], "text": _clip(f"#### {title}\n\n{body}")}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签 signature (before URL encoding): base64(HmacSHA256(secret, "ts\\nsecret"))."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _signed(url: str, secret: str, timestamp_ms: int) -> str:
    query = urlencode({"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)})
    return f"{url}{'&' if urlsplit(url).query else '?'}{query}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot never redirects; following one would lead the request off the allowed hosts."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _opener(loopback: bool) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if loopback:
        handlers.append(urllib.request.ProxyHandler({}))  # the local test robot, never via a proxy
    return urllib.request.build_opener(*handlers)


def send(settings: Settings, webhook: Webhook, title: str, text: str, *, timeout: float = 10) -> None:
    """Post one markdown message to the robot; return only when the vendor answered HTTP 200 with
    `errcode` 0, else raise `WebhookError` with a short reason free of the key and the secret.

    Uses only the row's columns (the outbox passes a detached row). The address is checked against
    `FIVESTAR_WEBHOOK_HOSTS` again here: the list may have changed since the robot was saved.
    """
    kind = WebhookKind(webhook.kind)
    url = decrypt(settings, webhook.url_encrypted)
    secret = decrypt(settings, webhook.secret_encrypted) if webhook.secret_encrypted else None
    hidden = _secrets_of(url, secret)
    try:
        check_url(settings, url, kind)
    except ServiceError as exc:
        raise WebhookError(_scrub(_("地址不被允许：%(reason)s", reason=exc.message), hidden)) from None
    target = url
    if kind is WebhookKind.DINGTALK and secret:
        target = _signed(url, secret, round(time.time() * 1000))
        hidden = _secrets_of(target, secret)
    body = json.dumps(payload(kind, title, text), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the scheme and host were checked above
        target,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "Fivestar"},
    )
    loopback = (urlsplit(url).hostname or "").lower() == LOOPBACK
    try:
        with _failures(hidden, timeout):
            with _opener(loopback).open(request, timeout=timeout) as response:
                status = int(response.status)
                raw = response.read(MAX_ANSWER_BYTES)
            _check_answer(status, raw, hidden)
    except WebhookError as exc:
        log.warning("webhook %s (%s) not delivered: %s", webhook.id, kind.value, exc)
        raise
    log.info("webhook %s (%s) delivered", webhook.id, kind.value)


@contextmanager
def _failures(hidden: list[str], timeout: float) -> Iterator[None]:
    """Turn what urllib raises into a `WebhookError` with a short, scrubbed reason. `from None`: the
    original exceptions carry the full URL (HTTPError.url) and must not travel in a traceback."""
    timed_out = _("连接机器人服务器超时（%(seconds)s 秒）", seconds=format(timeout, "g"))
    try:
        yield
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        raise WebhookError(_("机器人服务器应答 HTTP %(status)s", status=status)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise WebhookError(timed_out) from None
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise WebhookError(_scrub(_("无法连接机器人服务器：%(reason)s", reason=reason), hidden)) from None
    except TimeoutError:
        raise WebhookError(timed_out) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise WebhookError(_scrub(_("与机器人服务器的连接中断：%(reason)s", reason=reason), hidden)) from None


def _check_answer(status: int, raw: bytes, hidden: list[str]) -> None:
    if status != 200:
        raise WebhookError(_("机器人服务器应答 HTTP %(status)s", status=status))
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookError(_("机器人服务器的应答无法识别（不是 JSON）")) from None
    errcode = answer.get("errcode") if isinstance(answer, dict) else None
    if type(errcode) is int and errcode == 0:
        return
    errmsg = str(answer.get("errmsg", "")) if isinstance(answer, dict) else ""
    raise WebhookError(
        _scrub(
            _("机器人服务器拒绝了消息：errcode %(code)s，%(message)s", code=errcode, message=errmsg[:200] or "-"),
            hidden,
        )
    )


# --- administration (services: flush, never commit) ------------------------------------------------


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


AUDITED = ("name", "kind", "organisation_id", "active")


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


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """The block's changes in a savepoint, flushed at its end: a concurrent save of the same robot
    (the version column no longer matches) becomes a message, and the session stays usable."""
    try:
        with session.begin_nested():
            yield
    except StaleDataError:
        raise ConflictError(_("该群机器人已被他人修改，请刷新后重试。")) from None


def _check_version(webhook: Webhook, version: int | None) -> None:
    if version is not None and int(version) != webhook.version:
        raise ConflictError(_("该群机器人已被他人修改（您打开后有新的保存），请核对后重新填写。"))


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
    _check_version(webhook, version)
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
    with _writing(session):
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
    _check_version(webhook, version)
    if webhook.active is active:
        raise ServiceError(_("该群机器人已启用") if active else _("该群机器人已停用"))
    before = _snapshot(webhook)
    with _writing(session):
        webhook.active = active
    action = "webhook.activate" if active else "webhook.deactivate"
    audit.record(session, action, webhook, before=before, after=_snapshot(webhook))
    return webhook


def delete_webhook(session: Session, webhook: Webhook, *, version: int | None) -> None:
    """Remove a robot and its encrypted address for good (the audit keeps its name and scope)."""
    require_tenant_id()
    _check_version(webhook, version)
    before = _snapshot(webhook)
    try:
        with _writing(session):
            session.delete(webhook)
    except IntegrityError:
        raise ServiceError(_("该群机器人还有关联记录，不能删除，请改为停用")) from None
    audit.record(session, "webhook.delete", object_type=Webhook.__tablename__, object_id=webhook.id, before=before)
