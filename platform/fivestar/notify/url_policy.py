"""Which addresses the server may post to for a group robot, and how a page shows one.

Why the host list: the server posts to an address a user typed, which without a guard would let
an administrator make the server call anything inside its network (SSRF). Only https to the hosts
of `FIVESTAR_WEBHOOK_HOSTS` is allowed (plain http only to 127.0.0.1, and only when that is listed:
the tests' local robot), redirects are not followed (`sending`), and the address is checked again
at sending. Export targets (fivestar.exports) pass their addresses through the same check.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from fivestar.config import Settings
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.notify.encryption import decrypt
from fivestar.notify.errors import DecryptionError
from fivestar.notify.models import KIND_LABELS, Webhook, WebhookKind


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
MASK = "••••"


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
