"""Export targets as the tenant administrator keeps them, and "send again" for a failed delivery.

Services flush, never commit. Everything a form gives is checked before anything is written, and a
refusal names the field (`ServiceError(field=…)`) in Chinese, so the page shows it beside the input
and nothing is half-saved.

Why the host list (`FIVESTAR_EXPORT_HOSTS`): the server sends files to an address an administrator
typed. Without a guard an administrator of one district could make the server talk to anything
in its network (SSRF). Only hosts the operator listed are allowed for HTTPS and SFTP; plain http
only to a listed 127.0.0.1 (the tests' receiver), the same rule as group robots
(`fivestar.notify.url_policy.check_url`). The address is checked again at every sending, since the
list may have changed. E-mail goes through the instance's own SMTP server and needs no entry.

Secrets are encrypted with `fivestar.notify.encryption.encrypt` (Fernet, key derived from the
instance's secret key), never shown (a page shows only that one is stored, masked), and never in
an audit event. On an edit an empty secret keeps the stored one — unless the method changes: an
HTTPS key must not become an SFTP password.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.config import Settings
from fivestar.errors import ServiceError
from fivestar.exports.models import ExportDelivery, ExportMethod, ExportState, ExportTarget, ExportTrigger
from fivestar.i18n import _, _l
from fivestar.kernel.versioning import Submitted, expect_version, saving
from fivestar.member_rounds.honour import period_label
from fivestar.notify.encryption import decrypt, encrypt
from fivestar.notify.errors import DecryptionError
from fivestar.outbox.services import normalise_recipient
from fivestar.reports.jobs.kinds import KINDS, RoundType
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportJob, ReportKind
from fivestar.tenancy import require_tenant_id
from fivestar.timekeeping import clock

LOOPBACK = "127.0.0.1"
MAX_NAME = 60
MAX_URL = 500
MAX_DIR = 300
MAX_USERNAME = 100
MAX_SECRET = 200
MIN_HMAC_KEY = 16
MAX_KEY_TEXT = 16_000
#: The local time an on-date target sends at, in the tenant's time zone.
ON_DATE_TIME = dt.time(9, 0)
MASK = "••••"

METHOD_LABELS = {
    ExportMethod.EMAIL: _l("电子邮件（附件）"),
    ExportMethod.HTTPS: _l("HTTPS 接口（签名 POST）"),
    ExportMethod.SFTP: _l("SFTP 目录"),
}
TRIGGER_LABELS = {
    ExportTrigger.ON_FINALISE: _l("评定结束时"),
    ExportTrigger.ON_DATE: _l("每年固定日期"),
}
STATE_LABELS = {
    ExportState.WAITING: _l("等待报表生成"),
    ExportState.PENDING: _l("待发送"),
    ExportState.SENDING: _l("发送中"),
    ExportState.SENT: _l("已送达"),
    ExportState.FAILED: _l("发送失败"),
}


# --- when ------------------------------------------------------------------------------------------


def next_on_date(month: int, day: int, timezone: str, after: dt.datetime) -> dt.datetime:
    """The first instant strictly after `after` that is `month`-`day` at ON_DATE_TIME in
    `timezone`, in UTC. Computed with zoneinfo, so a daylight-saving zone gets its local 09:00 in
    summer and winter alike."""
    zone = ZoneInfo(timezone)
    year = after.astimezone(zone).year
    while True:
        local = dt.datetime.combine(dt.date(year, month, day), ON_DATE_TIME, tzinfo=zone)
        instant = local.astimezone(dt.UTC)
        if instant > after:
            return instant
        year += 1


_MONTH_DAY = re.compile(r"^\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*日?\s*$")


def parse_month_day(text: str) -> tuple[int, int]:
    """`03-31`, `3-31`, `3/31` or `3月31日` → (3, 31); a day every year has (so not 2月29日)."""
    found = _MONTH_DAY.match(text or "")
    if not found:
        raise ServiceError(_("请按“月-日”填写日期，例如 03-31"), field="on_date")
    month, day = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12:
        raise ServiceError(_("月份应在 1 到 12 之间"), field="on_date")
    if month == 2 and day == 29:
        raise ServiceError(_("2月29日不是每年都有，请选择 2月28日 或 3月1日"), field="on_date")
    if not 1 <= day <= calendar.monthrange(2001, month)[1]:
        raise ServiceError(_("%(month)d月没有%(day)d日", month=month, day=day), field="on_date")
    return month, day


def month_day_text(target: ExportTarget) -> str:
    return f"{target.on_month:02d}-{target.on_day:02d}" if target.on_month and target.on_day else ""


# --- destinations ----------------------------------------------------------------------------------


def _hosts_refusal(settings: Settings, host: str) -> ServiceError:
    allowed = settings.export_host_set
    if not allowed:
        return ServiceError(
            _("本平台尚未允许任何上报服务器，请联系平台运维人员在 FIVESTAR_EXPORT_HOSTS 中加入 %(host)s", host=host),
            field="destination",
        )
    return ServiceError(
        _("不能发送到 %(host)s：本平台只允许发送到这些服务器：%(hosts)s", host=host, hosts="、".join(sorted(allowed))),
        field="destination",
    )


def check_https_url(settings: Settings, url: str) -> str:
    """The URL, stripped, if the server may POST reports to it; else a ServiceError on
    `destination`. https only (http only to a listed 127.0.0.1), a host of FIVESTAR_EXPORT_HOSTS,
    no user name or password in it (the key goes in the signature), no fragment."""
    url = (url or "").strip()
    if not url:
        raise ServiceError(_("请填写接收报表的 HTTPS 地址"), field="destination")
    malformed = _("HTTPS 地址格式不正确，例如 https://report.example.gov.cn/fivestar/receive")
    if len(url) > MAX_URL or any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        raise ServiceError(malformed, field="destination")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ServiceError(malformed, field="destination") from None
    host = (parts.hostname or "").lower()
    if not host or parts.fragment or not parts.netloc:
        raise ServiceError(malformed, field="destination")
    if parts.username is not None or parts.password is not None:
        raise ServiceError(_("地址中不能包含用户名或密码；签名密钥请填在“密钥”一栏"), field="destination")
    loopback = host == LOOPBACK and LOOPBACK in settings.export_host_set
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ServiceError(_("地址必须以 https:// 开头"), field="destination")
    if host not in settings.export_host_set:
        raise _hosts_refusal(settings, host)
    return url


_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def parse_sftp_server(settings: Settings, text: str) -> tuple[str, int]:
    """`host` or `host:port` (22 by default) of an SFTP server the operator allowed."""
    value = (text or "").strip()
    if not value:
        raise ServiceError(_("请填写 SFTP 服务器，例如 sftp.example.gov.cn 或 sftp.example.gov.cn:2222"),
                           field="destination")
    host, sep, port_text = value.rpartition(":") if ":" in value else (value, "", "")
    port = 22
    if sep:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ServiceError(_("端口应为 1 到 65535 之间的数字"), field="destination")
        port = int(port_text)
    if not _HOST.match(host) or ".." in host:
        raise ServiceError(_("SFTP 服务器应写作“主机名:端口”，例如 sftp.example.gov.cn:22"), field="destination")
    host = host.lower()
    if host not in settings.export_host_set:
        raise _hosts_refusal(settings, host)
    return host, port


def sftp_destination(host: str, port: int) -> str:
    return host if port == 22 else f"{host}:{port}"


def _remote_dir(text: str) -> str:
    value = (text or "").strip() or "."
    if len(value) > MAX_DIR or any(not char.isprintable() or char == "\\" for char in value):
        raise ServiceError(_("远程目录格式不正确"), field="remote_dir")
    if ".." in value.split("/"):
        raise ServiceError(_("远程目录不能包含“..”"), field="remote_dir")
    return value.rstrip("/") or "/"


def _username(text: str) -> str:
    value = (text or "").strip()
    if not value:
        raise ServiceError(_("请填写 SFTP 用户名"), field="username")
    if len(value) > MAX_USERNAME or any(char.isspace() or not char.isprintable() for char in value):
        raise ServiceError(_("SFTP 用户名不能含空格，最多 100 个字符"), field="username")
    return value


def parse_host_key(text: str) -> str:
    """The SFTP server's public key in OpenSSH form (`ssh-ed25519 AAAA…`, as `ssh-keyscan` prints
    it, with or without the host name in front), normalised; checked at every connection so a
    server that pretends to be the superior's never receives a report."""
    import asyncssh

    value = " ".join((text or "").split())
    if not value:
        raise ServiceError(_("请填写 SFTP 服务器的公钥（ssh-keyscan 的输出，例如 ssh-ed25519 AAAA…）"),
                           field="host_key")
    if len(value) > MAX_KEY_TEXT:
        raise ServiceError(_("服务器公钥太长"), field="host_key")
    words = value.split(" ")
    for start in range(min(2, len(words))):  # "host ssh-ed25519 AAAA…" or "ssh-ed25519 AAAA…"
        candidate = " ".join(words[start:start + 2])
        try:
            key = asyncssh.import_public_key(candidate)
        except (asyncssh.KeyImportError, ValueError):
            continue
        return str(key.export_public_key("openssh").decode("ascii").strip())
    raise ServiceError(_("无法识别服务器公钥，请粘贴 ssh-keyscan 输出中的一行（例如 ssh-ed25519 AAAA…）"),
                       field="host_key")


def host_key_fingerprint(host_key: str | None) -> str:
    """SHA256:… of a stored host key, for the pages (the administrator compares it with the
    superior's)."""
    if not host_key:
        return ""
    import asyncssh

    try:
        return str(asyncssh.import_public_key(host_key).get_fingerprint("sha256"))
    except (asyncssh.KeyImportError, ValueError):
        return ""


def _private_key(text: str) -> str:
    import asyncssh

    value = (text or "").strip()
    if len(value) > MAX_KEY_TEXT:
        raise ServiceError(_("私钥太长"), field="private_key")
    try:
        asyncssh.import_private_key(value)
    except asyncssh.KeyEncryptionError:
        raise ServiceError(_("私钥设有口令，无法自动使用；请为上报专门生成一把没有口令的密钥"),
                           field="private_key") from None
    except (asyncssh.KeyImportError, ValueError):
        raise ServiceError(_("无法识别私钥，请粘贴完整的 OpenSSH 私钥（-----BEGIN OPENSSH PRIVATE KEY-----…）"),
                           field="private_key") from None
    return value + "\n"


def _hmac_key(text: str) -> str:
    value = (text or "").strip()
    if not (MIN_HMAC_KEY <= len(value) <= MAX_SECRET) or not value.isascii() or not value.isprintable() or (
        any(char.isspace() for char in value)
    ):
        raise ServiceError(
            _("签名密钥应为 %(min)d 到 %(max)d 个英文字母、数字或符号（不含空格），并与接收方约定一致",
              min=MIN_HMAC_KEY, max=MAX_SECRET),
            field="secret",
        )
    return value


def _password(text: str) -> str:
    if len(text) > MAX_SECRET or any(not char.isprintable() for char in text):
        raise ServiceError(_("SFTP 密码最多 200 个字符"), field="secret")
    return text


def mask_secret(settings: Settings, token: str | None) -> str:
    """What a page shows of a stored secret: that it exists, and at most its last two characters."""
    if not token:
        return ""
    try:
        value = decrypt(settings, token)
    except DecryptionError:
        return _("（无法解密：服务器密钥已更换，请重新填写）")
    return MASK + (value[-2:] if len(value) >= 16 else "")


def round_label(round_type: str, round_key: str) -> str:
    """A delivery's round as people name it: 2026年第一季度党员星级评定, 2025年度党支部星级评定."""
    if round_type == "branch":
        return _("%(year)s年度党支部星级评定", year=round_key)

    return _("%(period)s党员星级评定", period=period_label(round_key))


def describe_destination(target: ExportTarget) -> str:
    """What the list shows as where a target sends (no secret is part of it)."""
    if target.method is ExportMethod.SFTP:
        return f"sftp://{target.username or ''}@{target.destination}/{(target.remote_dir or '.').lstrip('/')}"
    return target.destination


# --- saving ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetInput:
    """What the form gives. On an edit an empty `secret` or `private_key` keeps the stored one
    (unless the method changed); `clear_private_key` removes the stored key."""

    name: str
    report_kind: str
    report_format: str
    method: str
    destination: str
    trigger: str
    on_date: str = ""
    remote_dir: str = ""
    username: str = ""
    host_key: str = ""
    secret: str = ""
    private_key: str = ""
    clear_private_key: bool = False
    active: bool = True


AUDITED = ("name", "report_kind", "report_format", "method", "destination", "remote_dir", "username",
           "trigger", "on_month", "on_day", "active")


def _snapshot(target: ExportTarget) -> dict[str, Any]:
    """Audit data without secrets (not even encrypted); the host key by its fingerprint."""
    data = audit.snapshot(target, AUDITED)
    data["host_key"] = host_key_fingerprint(target.host_key) or None
    return data


def _enum(cls: type[Any], value: str, field: str, message: str) -> Any:
    try:
        return cls((value or "").strip())
    except ValueError:
        raise ServiceError(message, field=field) from None


def _name(session: Session, value: str, target: ExportTarget | None) -> str:
    name = " ".join((value or "").split())
    if not name:
        raise ServiceError(_("请填写名称"), field="name")
    if len(name) > MAX_NAME:
        raise ServiceError(_("名称最多 60 个字"), field="name")
    query = select(ExportTarget.id).where(ExportTarget.name == name)
    if target is not None:
        query = query.where(ExportTarget.id != target.id)
    if session.scalar(query) is not None:
        raise ServiceError(_("已有名为“%(name)s”的上报设置", name=name), field="name")
    return name


def round_type_of(kind: ReportKind) -> RoundType:
    return KINDS[kind].round_type


@dataclass(frozen=True)
class _Checked:
    values: dict[str, Any]  # columns to set, secrets already encrypted


def _check(
    session: Session, settings: Settings, data: TargetInput, target: ExportTarget | None
) -> _Checked:
    """Every field checked, in the order of the form; nothing is written here."""
    name = _name(session, data.name, target)
    kind: ReportKind = _enum(ReportKind, data.report_kind, "report_kind", _("请选择要上报的报表"))
    fmt: ReportFormat = _enum(ReportFormat, data.report_format, "report_format", _("请选择文件格式（Excel 或 PDF）"))
    if fmt not in KINDS[kind].formats:
        raise ServiceError(_("这种报表没有该文件格式"), field="report_format")
    method: ExportMethod = _enum(ExportMethod, data.method, "method", _("请选择上报方式"))
    same_method = target is not None and target.method is method
    values: dict[str, Any] = {
        "name": name, "report_kind": kind, "report_format": fmt, "method": method,
        "remote_dir": None, "username": None, "host_key": None,
    }
    secret_text = data.secret or ""
    if method is ExportMethod.EMAIL:
        try:
            values["destination"] = normalise_recipient(data.destination or "")[:MAX_URL]
        except ServiceError:
            raise ServiceError(_("请填写有效的电子邮箱地址，例如 dangwei@example.gov.cn"),
                               field="destination") from None
        values["secret_encrypted"] = None
        values["private_key_encrypted"] = None
    elif method is ExportMethod.HTTPS:
        values["destination"] = check_https_url(settings, data.destination)
        if secret_text.strip():
            values["secret_encrypted"] = encrypt(settings, _hmac_key(secret_text))
        elif same_method and target is not None and target.secret_encrypted:
            values["secret_encrypted"] = target.secret_encrypted
        else:
            raise ServiceError(_("请填写与接收方约定的签名密钥"), field="secret")
        values["private_key_encrypted"] = None
    else:
        host, port = parse_sftp_server(settings, data.destination)
        values["destination"] = sftp_destination(host, port)
        values["remote_dir"] = _remote_dir(data.remote_dir)
        values["username"] = _username(data.username)
        values["host_key"] = parse_host_key(data.host_key)
        keep = same_method and target is not None
        if secret_text:
            values["secret_encrypted"] = encrypt(settings, _password(secret_text))
        else:
            values["secret_encrypted"] = target.secret_encrypted if keep and target is not None else None
        if (data.private_key or "").strip():
            values["private_key_encrypted"] = encrypt(settings, _private_key(data.private_key))
        elif keep and target is not None and not data.clear_private_key:
            values["private_key_encrypted"] = target.private_key_encrypted
        else:
            values["private_key_encrypted"] = None
        if not values["secret_encrypted"] and not values["private_key_encrypted"]:
            raise ServiceError(_("请填写 SFTP 密码或私钥（至少一项）"), field="secret")
    trigger: ExportTrigger = _enum(ExportTrigger, data.trigger, "trigger", _("请选择什么时候上报"))
    values["trigger"] = trigger
    if trigger is ExportTrigger.ON_DATE:
        values["on_month"], values["on_day"] = parse_month_day(data.on_date)
    else:
        values["on_month"] = values["on_day"] = None
    values["active"] = bool(data.active)
    return _Checked(values)


def _timing(target: ExportTarget, timezone: str, now: dt.datetime, *, restart: bool,
            reschedule: bool = True) -> None:
    """`since` and `next_run_at` after a save. `restart` (new target, switched on, other report or
    trigger) means only rounds finalised from now on. An on-date target's next instant is computed
    from now when its date (or trigger, or state) changed — not on other edits, so renaming a
    target in the minute after its instant, before the sweep came, does not skip this year."""
    if restart:
        target.since = now
    if target.trigger is not ExportTrigger.ON_DATE or not target.on_month or not target.on_day:
        target.next_run_at = None
    elif restart or reschedule or target.next_run_at is None:
        target.next_run_at = next_on_date(target.on_month, target.on_day, timezone, now)


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """The block's changes in a savepoint, flushed at its end: a concurrent save of the same target
    (the version no longer matches) or of the same name becomes a message, and the session stays usable."""
    try:
        with saving(session, message=_stale_message()):
            yield
    except IntegrityError:
        raise ServiceError(_("已有同名的上报设置"), field="name") from None


def _stale_message() -> str:
    return _("该上报设置已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。")


def create_target(session: Session, settings: Settings, timezone: str, data: TargetInput) -> ExportTarget:
    """A new target of the current tenant; it sends rounds finalised from now on (or on its date)."""
    require_tenant_id()
    checked = _check(session, settings, data, None)
    target = ExportTarget(**checked.values, created_by=audit.current_actor().name[:120])
    _timing(target, timezone, clock.now(), restart=True)
    with _writing(session):
        session.add(target)
    audit.record(session, "export_target.create", target, after=_snapshot(target))
    return target


def update_target(
    session: Session, settings: Settings, timezone: str, target: ExportTarget, data: TargetInput,
    *, version: Submitted,
) -> ExportTarget:
    require_tenant_id()
    expect_version(target, version, message=_stale_message())
    checked = _check(session, settings, data, target)
    changed = {key: value for key, value in checked.values.items() if getattr(target, key) != value}
    if not changed:
        raise ServiceError(_("没有需要保存的修改"))
    before = _snapshot(target)
    restart = bool({"report_kind", "trigger"} & changed.keys()) or (changed.get("active") is True)
    reschedule = bool({"on_month", "on_day"} & changed.keys())
    with _writing(session):
        for key, value in changed.items():
            setattr(target, key, value)
        _timing(target, timezone, clock.now(), restart=restart, reschedule=reschedule)
    after = {**_snapshot(target), "secret_changed": "secret_encrypted" in changed,
             "private_key_changed": "private_key_encrypted" in changed}
    audit.record(session, "export_target.update", target, before=before, after=after)
    return target


def set_active(session: Session, timezone: str, target: ExportTarget, active: bool, *,
               version: Submitted) -> ExportTarget:
    """Switch a target off (nothing more is planned or sent for it) or on again (from now on)."""
    require_tenant_id()
    expect_version(target, version, message=_stale_message())
    if target.active is active:
        raise ServiceError(_("该上报设置已启用") if active else _("该上报设置已停用"))
    before = _snapshot(target)
    with _writing(session):
        target.active = active
        if active:
            _timing(target, timezone, clock.now(), restart=True)
    audit.record(session, "export_target.activate" if active else "export_target.deactivate", target,
                 before=before, after=_snapshot(target))
    return target


def delete_target(session: Session, target: ExportTarget, *, version: Submitted) -> None:
    """Remove a target, its secrets and its delivery log (the audit keeps its settings and how many
    deliveries it had)."""
    require_tenant_id()
    expect_version(target, version, message=_stale_message())
    before = _snapshot(target)
    counts = {
        state.value: int(n)
        for state, n in session.execute(
            select(ExportDelivery.state, func.count())
            .where(ExportDelivery.target_id == target.id)
            .group_by(ExportDelivery.state)
        ).all()
    }
    target_id = target.id
    with _writing(session):
        session.delete(target)
    audit.record(session, "export_target.delete", object_type=ExportTarget.__tablename__, object_id=target_id,
                 before={**before, "deliveries": counts})


def resend(session: Session, delivery: ExportDelivery) -> ExportDelivery:
    """Give a failed delivery a fresh set of attempts (the administrator fixed the address, the
    secret or the receiver). The report is made again if its file is no longer kept."""
    require_tenant_id()
    if delivery.state is not ExportState.FAILED:
        raise ServiceError(_("只有发送失败的上报可以重新发送"))
    before = {"state": delivery.state, "attempts": delivery.attempts, "last_error": delivery.last_error}
    if delivery.report_job_id is not None:
        job_state = session.scalar(select(ReportJob.state).where(ReportJob.id == delivery.report_job_id))
        if job_state is not JobState.DONE:
            delivery.report_job_id = None  # failed or expired: the sweep asks for the report again
    delivery.state = ExportState.WAITING
    delivery.attempts = 0
    delivery.resends = delivery.resends + 1
    delivery.claimed_at = None
    delivery.next_attempt_at = clock.now()
    session.flush()
    audit.record(session, "export_delivery.resend", delivery, before=before,
                 after={"state": delivery.state, "attempts": 0, "target_id": delivery.target_id,
                        "round": f"{delivery.round_type}:{delivery.round_key}"})
    return delivery


__all__ = [
    "METHOD_LABELS",
    "ON_DATE_TIME",
    "STATE_LABELS",
    "TRIGGER_LABELS",
    "TargetInput",
    "check_https_url",
    "create_target",
    "delete_target",
    "describe_destination",
    "host_key_fingerprint",
    "mask_secret",
    "month_day_text",
    "next_on_date",
    "parse_host_key",
    "parse_month_day",
    "parse_sftp_server",
    "resend",
    "round_label",
    "round_type_of",
    "set_active",
    "update_target",
]
