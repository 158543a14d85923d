"""How a report leaves the server: e-mail with the file attached, a signed HTTPS POST, an SFTP drop.

Messages are delivered at least once (a worker can die after the receiver got the file and before
the row says `sent`, and then the file goes again), so each method lets the receiver recognise a
repetition:

**E-mail.** Through the outbox's SMTP settings and connection code (`fivestar.outbox.delivery.
SmtpSender`). The `Message-ID` is stable per delivery (`<fivestar-export-<delivery id>.<tenant
id>@<sender's domain>>`), so a second copy is the same message to mail systems and people alike;
the body names the delivery number too.

**HTTPS.** `POST <url>` with the file as the body (`Content-Type` the file's type,
`Content-Disposition: attachment; filename*=UTF-8''…`) and these headers:

    Idempotency-Key: fivestar-export-<delivery id>     the same on every attempt of a delivery
    X-Fivestar-Delivery: <delivery id>
    X-Fivestar-Timestamp: <Unix time in seconds>       of this attempt
    X-Fivestar-Signature: sha256=<hex>                 HMAC-SHA256(key, "<timestamp>." + body)
    X-Fivestar-Content-SHA256: <hex>                   SHA-256 of the body
    X-Fivestar-Tenant / -Report / -Round               the district's slug, kind.format, type:round

The key is the one the administrator typed on the target (agreed with the receiver). A receiver
verifies: read the raw body; compute `HMAC-SHA256(key, timestamp + "." + body)` over the exact
bytes of the timestamp header, a full stop and the body; compare with the hex after `sha256=` in
constant time; refuse a timestamp more than five minutes from its clock (a replay); answer 2xx
once it has stored the file — and treat a second request with an `Idempotency-Key` it has already
stored as success without storing it again. `verify_signature` below is that check in Python.
Any answer other than 2xx (redirects are not followed) counts as a failure and is retried.

**SFTP.** The file is written as `.<name>.part` in the target's folder and then renamed to
`<name>` (`posix-rename@openssh.com`, which replaces; otherwise remove + rename), so the receiver
never sees half a file; `<name>` is fixed per delivery (`<tenant>-<kind>-<round>-d<delivery id>.
<ext>`), so a repeated delivery replaces the same file. The server's public key must match the
one stored on the target (no trust on first use); no local SSH configuration, agent or key is
used. `asyncssh` is the client (a maintained SSHv2 implementation; one library serves the
client here and the tests' real server).

Errors become `SendError` with a short Chinese reason that never contains a secret;
`PermanentSendError` when retrying cannot help (the host key does not match, the login is refused,
the secret cannot be decrypted) — the delivery then fails at once and the administrators are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.client
import logging
import re
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fivestar.config import Settings
from fivestar.errors import ServiceError
from fivestar.exports.models import ExportMethod
from fivestar.exports.services import LOOPBACK, check_https_url, parse_sftp_server
from fivestar.i18n import _
from fivestar.outbox.delivery import SmtpSender, SmtpUnreachableError, describe_error
from fivestar.outbox.services import render_email
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 60.0
SFTP_TIMEOUT = 120.0
MAX_ANSWER_BYTES = 64 * 1024
CHUNK = 64 * 1024
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between the timestamp and its clock


class SendError(Exception):
    """The file did not arrive; `str()` is a short reason for people, free of secrets."""


class PermanentSendError(SendError):
    """Retrying cannot help until someone changes the target: fail the delivery now."""


@dataclass(frozen=True)
class Parcel:
    """What goes: a finished report's file and the words that describe it."""

    delivery_id: int
    tenant_id: int
    tenant_slug: str
    tenant_name: str
    title: str  # the report's title, e.g. 2026年第一季度 · 党员星级评定结果
    report: str  # kind.format, e.g. member_results.xlsx
    round_type: str
    round_key: str
    path: Path
    filename: str  # the report's own file name (may be Chinese)
    mimetype: str
    generated_at: str  # when the report was made, tenant time, for the e-mail body
    audit_head: str = ""  # the tenant's audit chain head printed on the report, `N:HASH`


@dataclass(frozen=True)
class Destination:
    """A target's columns, secrets decrypted: made just before sending, never stored or logged."""

    method: ExportMethod
    address: str  # e-mail address, URL, or host[:port]
    remote_dir: str | None = None
    username: str | None = None
    host_key: str | None = None
    secret: str | None = None  # https: the HMAC key; sftp: the password
    private_key: str | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"<Destination {self.method.value} {self.address}>"


def send(settings: Settings, parcel: Parcel, destination: Destination, *, smtp: SmtpSender | None = None) -> str:
    """Deliver `parcel`; return where it went (for the log). Raises SendError."""
    if destination.method is ExportMethod.EMAIL:
        return send_email(settings, parcel, destination, smtp=smtp)
    if destination.method is ExportMethod.HTTPS:
        return send_https(settings, parcel, destination)
    return send_sftp(settings, parcel, destination)


# --- e-mail --------------------------------------------------------------------------------------------


def message_id(settings: Settings, parcel: Parcel) -> str:
    domain = parseaddr(settings.mail_sender)[1].rpartition("@")[2] or "localhost"
    return f"<fivestar-export-{parcel.delivery_id}.{parcel.tenant_id}@{domain}>"


def build_email(settings: Settings, parcel: Parcel, address: str) -> EmailMessage:
    text, html = render_email("export", {
        "tenant_name": parcel.tenant_name,
        "title": parcel.title,
        "filename": parcel.filename,
        "generated": parcel.generated_at,
        "delivery_id": parcel.delivery_id,
        "audit_head": parcel.audit_head,
    })
    email = EmailMessage()
    email["From"] = settings.mail_sender
    email["To"] = address
    email["Subject"] = " ".join(f"【五星争创·上报】{parcel.tenant_name}：{parcel.title}".split())
    email["Date"] = format_datetime(clock.now())
    email["Message-ID"] = message_id(settings, parcel)
    email["Auto-Submitted"] = "auto-generated"
    email["X-Fivestar-Delivery"] = str(parcel.delivery_id)
    if parcel.audit_head:
        email["X-Fivestar-Audit-Head"] = parcel.audit_head
    email.set_content(text)
    if html:
        email.add_alternative(html, subtype="html")
    maintype, _sep, subtype = parcel.mimetype.partition("/")
    email.add_attachment(parcel.path.read_bytes(), maintype=maintype, subtype=subtype, filename=parcel.filename)
    return email


def send_email(settings: Settings, parcel: Parcel, destination: Destination, *, smtp: SmtpSender | None = None) -> str:
    sender = smtp or SmtpSender(settings)
    try:
        sender.send_email(build_email(settings, parcel, destination.address))
    except SmtpUnreachableError as exc:
        raise SendError(_("无法连接邮件服务器：%(reason)s", reason=str(exc))) from None
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
        raise SendError(_("邮件未能发出：%(reason)s", reason=describe_error(exc))) from None
    finally:
        if smtp is None:
            sender.close()
    return destination.address


# --- HTTPS -----------------------------------------------------------------------------------------------


def sign(key: str, timestamp: str, body_chunks: Any) -> tuple[str, str]:
    """(`sha256=<hex>` signature over `timestamp + "." + body`, hex SHA-256 of the body)."""
    mac = hmac.new(key.encode("utf-8"), f"{timestamp}.".encode("ascii"), hashlib.sha256)
    digest = hashlib.sha256()
    for chunk in body_chunks:
        mac.update(chunk)
        digest.update(chunk)
    return "sha256=" + mac.hexdigest(), digest.hexdigest()


def verify_signature(key: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
                     tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """What a receiver does with a request (see the module docstring): the signature matches the
    body and the timestamp is recent."""
    if not timestamp.isdigit() or abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    expected, _digest = sign(key, timestamp, [body])
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", errors="replace"))


def _file_chunks(path: Path) -> Any:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def content_disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "report"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A receiver does not redirect; following one could lead the file off the allowed hosts."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _https_headers(parcel: Parcel, key: str, size: int) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature, digest = sign(key, timestamp, _file_chunks(parcel.path))
    return {
        "Content-Type": parcel.mimetype,
        "Content-Length": str(size),
        "Content-Disposition": content_disposition(parcel.filename),
        "User-Agent": "Fivestar",
        "Idempotency-Key": f"fivestar-export-{parcel.delivery_id}",
        "X-Fivestar-Delivery": str(parcel.delivery_id),
        "X-Fivestar-Timestamp": timestamp,
        "X-Fivestar-Signature": signature,
        "X-Fivestar-Content-SHA256": digest,
        "X-Fivestar-Tenant": parcel.tenant_slug,
        "X-Fivestar-Report": parcel.report,
        "X-Fivestar-Round": f"{parcel.round_type}:{parcel.round_key}",
        **({"X-Fivestar-Audit-Head": parcel.audit_head} if parcel.audit_head else {}),
    }


def send_https(settings: Settings, parcel: Parcel, destination: Destination, *, timeout: float = HTTP_TIMEOUT) -> str:
    try:
        url = check_https_url(settings, destination.address)
    except ServiceError as exc:
        raise PermanentSendError(_("地址不被允许：%(reason)s", reason=exc.message)) from None
    if not destination.secret:
        raise PermanentSendError(_("没有保存签名密钥，请在上报设置中填写"))
    size = parcel.path.stat().st_size
    headers = _https_headers(parcel, destination.secret, size)
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if (urlsplit(url).hostname or "").lower() == LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))  # the local receiver, never via a proxy
    opener = urllib.request.build_opener(*handlers)
    timed_out = _("连接接收服务器超时（%(seconds)s 秒）", seconds=format(timeout, "g"))
    try:
        with parcel.path.open("rb") as body:
            request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - checked
            with opener.open(request, timeout=timeout) as response:
                status = int(response.status)
                response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        raise SendError(_("接收服务器应答 HTTP %(status)s", status=status)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise SendError(timed_out) from None
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise SendError(_("无法连接接收服务器：%(reason)s", reason=reason)) from None
    except TimeoutError:
        raise SendError(timed_out) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SendError(_("与接收服务器的连接中断：%(reason)s", reason=reason)) from None
    if not 200 <= status < 300:
        raise SendError(_("接收服务器应答 HTTP %(status)s", status=status))
    return url


# --- SFTP ------------------------------------------------------------------------------------------------


def remote_name(parcel: Parcel) -> str:
    """The file's name on the server: ASCII, fixed per delivery (a repeat replaces it)."""
    kind, _dot, extension = parcel.report.partition(".")
    raw = f"{parcel.tenant_slug}-{kind}-{parcel.round_key}-d{parcel.delivery_id}.{extension or 'bin'}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def _join(folder: str, name: str) -> str:
    if folder in ("", "."):
        return name
    return f"{folder.rstrip('/')}/{name}" if folder != "/" else f"/{name}"


def audit_head_name(name: str) -> str:
    """SFTP: the small text file beside the report that holds its audit chain head (`N:HASH`)."""
    return f"{name}.audit-head"


async def _sftp_put(host: str, port: int, destination: Destination, local: Path, name: str, timeout: float,
                    audit_head: str = "") -> None:
    import asyncssh

    trusted: list[asyncssh.SSHKey] = [asyncssh.import_public_key(destination.host_key or "")]
    known_hosts: tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]] = (trusted, [], [])
    client_keys = [asyncssh.import_private_key(destination.private_key)] if destination.private_key else None
    folder = destination.remote_dir or "."
    partial, final = _join(folder, f".{name}.part"), _join(folder, name)
    async with asyncssh.connect(
        host,
        port,
        username=destination.username,
        password=destination.secret or None,
        client_keys=client_keys,
        known_hosts=known_hosts,
        agent_path=None,
        config=[],
        x509_trusted_certs=None,
        kbdint_auth=False,
        connect_timeout=timeout,
        login_timeout=timeout,
    ) as connection, connection.start_sftp_client() as sftp:
        if folder not in (".", "/"):
            await sftp.makedirs(folder, exist_ok=True)
        try:
            if audit_head:
                # Beside the report, written first so it is there when the report appears.
                async with sftp.open(_join(folder, audit_head_name(name)), "w") as head_file:
                    await head_file.write(audit_head + "\n")
            await sftp.put(str(local), partial)
            try:
                await sftp.posix_rename(partial, final)
            except asyncssh.SFTPOpUnsupported:
                if await sftp.exists(final):
                    await sftp.remove(final)
                await sftp.rename(partial, final)
        except BaseException:
            # Best effort: the connection may be gone; the next attempt overwrites the file anyway.
            with contextlib.suppress(asyncssh.Error, OSError):
                await sftp.remove(partial)
            raise


def _run_in_own_loop(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """`asyncio.run` on a thread of its own, the coroutine made there too. The caller may already
    run an event loop on its thread (Playwright's sync API does, in the test session), where
    `asyncio.run` refuses to start; a worker process has none, and pays one short-lived thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fivestar-sftp") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def send_sftp(settings: Settings, parcel: Parcel, destination: Destination, *, timeout: float = SFTP_TIMEOUT) -> str:
    import asyncssh

    try:
        host, port = parse_sftp_server(settings, destination.address)
    except ServiceError as exc:
        raise PermanentSendError(_("服务器不被允许：%(reason)s", reason=exc.message)) from None
    name = remote_name(parcel)
    where = f"sftp://{destination.username}@{destination.address}/{_join(destination.remote_dir or '.', name)}"
    hidden = [value for value in (destination.secret, destination.private_key) if value]

    def scrub(text: str) -> str:
        for value in hidden:
            text = text.replace(value, "••••")
        return text[:300]

    try:
        _run_in_own_loop(
            lambda: asyncio.wait_for(_sftp_put(host, port, destination, parcel.path, name, timeout, parcel.audit_head),
                                     timeout * 2)
        )
    except asyncssh.HostKeyNotVerifiable:
        raise PermanentSendError(
            _("SFTP 服务器的公钥与保存的不一致，已停止发送。如对方确实更换了密钥，请核对后更新“服务器公钥”。")
        ) from None
    except asyncssh.PermissionDenied:
        raise PermanentSendError(_("SFTP 登录被拒绝：用户名、密码或私钥不正确")) from None
    except asyncssh.SFTPError as exc:
        raise SendError(_("SFTP 写入失败：%(reason)s", reason=scrub(str(exc.reason)))) from None
    except asyncssh.Error as exc:
        raise SendError(_("SFTP 连接中断：%(reason)s", reason=scrub(str(exc.reason)))) from None
    except TimeoutError:
        raise SendError(_("连接 SFTP 服务器超时（%(seconds)s 秒）", seconds=format(timeout, "g"))) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SendError(_("无法连接 SFTP 服务器：%(reason)s", reason=scrub(reason))) from None
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise PermanentSendError(_("SFTP 设置无法使用：%(reason)s", reason=scrub(str(exc)))) from None
    return where


__all__ = [
    "Destination",
    "Parcel",
    "PermanentSendError",
    "SendError",
    "audit_head_name",
    "build_email",
    "content_disposition",
    "message_id",
    "remote_name",
    "send",
    "send_email",
    "send_https",
    "send_sftp",
    "sign",
    "verify_signature",
]
