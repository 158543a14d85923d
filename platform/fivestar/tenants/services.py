"""Tenant lifecycle and rule-set versions. Services flush, never commit.

Used by the operator's pages and command line (create, suspend, resume; the listings with their
counts are `fivestar.ops.queries`) and by the tenant's own rules page (new versions). Every change
writes an audit event in the caller's session, so the event commits or rolls back with the change.

The root committee of a new tenant and the end of its logins on suspension belong to the organisations
and accounts packages, which stand on this one: they follow the `tenant_created` and `tenant_suspended`
events (`fivestar.kernel.events`).

A rule-set document is validated completely *before* anything is written: an invalid file creates
no tenant and no version, and the caller gets every problem with its path (`RulesInvalidError.errors`).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from fivestar import audit
from fivestar.enums import TenantStatus
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import events
from fivestar.rules import RuleError, RuleSet, RuleSetError, load_rules, load_rules_data
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import SLUG_PATTERN, RuleSetVersion, Tenant
from fivestar.timekeeping import DEFAULT_TIMEZONE

TENANT_FIELDS = ("slug", "name", "timezone", "locale", "status", "status_reason")
LOCALES = ("zh", "en")
NAME_MAX = 120
NOTE_MAX = 500
REASON_MAX = 500
RULES_MAX_BYTES = 512 * 1024

#: Time zones offered on the operator's form (the command line accepts any IANA name).
COMMON_TIMEZONES: tuple[tuple[str, str], ...] = (
    (DEFAULT_TIMEZONE, "北京时间"),
    ("Asia/Urumqi", "乌鲁木齐"),
    ("Asia/Hong_Kong", "香港"),
    ("Asia/Macau", "澳门"),
    ("Asia/Taipei", "台北"),
    ("UTC", "UTC"),
)


class RulesInvalidError(ServiceError):
    """A rule-set document does not load; `errors` lists every problem with its path."""

    def __init__(self, errors: list[RuleError]) -> None:
        summary = "; ".join(str(error) for error in errors[:5])
        more = len(errors) - 5
        if more > 0:
            summary += " " + _("等 %(n)d 处", n=len(errors))
        super().__init__(_("规则文件有误：") + summary, field="rules")
        self.errors = errors


# --- validation ------------------------------------------------------------------------------


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not re.fullmatch(SLUG_PATTERN, slug):
        raise ServiceError(
            _("单位代码须为 3–40 个小写字母、数字或连字符，以字母开头、不以连字符结尾"), field="slug"
        )
    return slug


def _validate_zone(timezone: str) -> str:
    timezone = timezone.strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(_("未知的时区：%(zone)s", zone=timezone), field="timezone") from None
    return timezone


def decode_rules_upload(data: bytes) -> str:
    """The text of an uploaded rule file: UTF-8 (a byte-order mark is dropped), not empty."""
    if len(data) > RULES_MAX_BYTES:
        raise ServiceError(_("规则文件过大（最多 %(n)d KB）", n=RULES_MAX_BYTES // 1024), field="rules")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServiceError(_("规则文件须为 UTF-8 编码（第 %(n)d 字节有误）", n=exc.start), field="rules") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ServiceError(_("规则文件是空的"), field="rules")
    return text


def parse_rules(rules_toml: str) -> RuleSet:
    """Load a rule-set document, turning the engine's error into a `RulesInvalidError` for the caller."""
    try:
        return load_rules(rules_toml)
    except RuleSetError as exc:
        raise RulesInvalidError(exc.errors) from None


def _check_zone_matches(rules: RuleSet, timezone: str) -> None:
    """Deadlines are computed in the rule set's zone and shown in the tenant's: they must agree."""
    if rules.schedule.timezone != timezone:
        raise ServiceError(
            _(
                "规则文件的时区（%(rules)s）与单位时区（%(tenant)s）不一致",
                rules=rules.schedule.timezone,
                tenant=timezone,
            ),
            field="timezone",
        )


# --- lifecycle -------------------------------------------------------------------------------


def create_tenant(
    session: Session,
    *,
    slug: str,
    name: str,
    rules_toml: str,
    timezone: str = DEFAULT_TIMEZONE,
    locale: str = "zh",
    committee_name: str | None = None,
) -> Tenant:
    """Create a tenant with its root committee (工委) and version 1 of its rule set.

    Everything is checked first (slug, name, zone, locale, the whole rule file), so a refusal
    leaves nothing behind even in a session the caller goes on using.
    """
    slug = validate_slug(slug)
    name = name.strip()
    if not name:
        raise ServiceError(_("请填写单位名称"), field="name")
    if len(name) > NAME_MAX:
        raise ServiceError(_("单位名称最多 %(n)d 个字", n=NAME_MAX), field="name")
    committee = (committee_name or "").strip() or name
    if len(committee) > NAME_MAX:
        raise ServiceError(_("工委名称最多 %(n)d 个字", n=NAME_MAX), field="committee_name")
    if locale not in LOCALES:
        raise ServiceError(_("语言须为 zh 或 en"), field="locale")
    timezone = _validate_zone(timezone)
    rules = parse_rules(rules_toml)
    _check_zone_matches(rules, timezone)
    if session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise ServiceError(_("单位代码 %(slug)s 已被使用", slug=slug), field="slug")
    tenant = Tenant(slug=slug, name=name, timezone=timezone, locale=locale, status=TenantStatus.ACTIVE)
    session.add(tenant)
    session.flush()
    with tenant_context(tenant.id):
        audit.record(session, "tenant.create", tenant, after=audit.snapshot(tenant, TENANT_FIELDS))
        events.tenant_created.send(tenant, session=session, committee_name=committee)
        _store_version(session, tenant, rules, rules_toml, note=_("初始版本"))
    return tenant


def timezone_of(session: Session, tenant_id: int) -> str:
    """A district's time zone (its deadlines, dates and wall-clock times), in one small query."""
    return session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or DEFAULT_TIMEZONE


def get_tenant(session: Session, slug: str) -> Tenant:
    """The tenant with this slug, or a `NotFoundError` naming it."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug.strip().lower()))
    if tenant is None:
        raise NotFoundError(_("没有代码为 %(slug)s 的单位", slug=slug.strip()), field="slug")
    return tenant


def _set_status(session: Session, tenant: Tenant, status: TenantStatus, reason: str | None) -> Tenant:
    if tenant.status is status:
        raise ServiceError(
            _("该单位已处于暂停状态") if status is TenantStatus.SUSPENDED else _("该单位已处于正常状态")
        )
    if reason and len(reason) > REASON_MAX:
        raise ServiceError(_("原因最多 %(n)d 个字", n=REASON_MAX), field="reason")
    before = audit.snapshot(tenant, TENANT_FIELDS)
    tenant.status = status
    tenant.status_reason = reason or None
    after: dict[str, object] = dict(audit.snapshot(tenant, TENANT_FIELDS))
    if status is TenantStatus.SUSPENDED:
        after["sessions_revoked"] = events.answers_total(events.tenant_suspended.send(tenant, session=session))
    action = "tenant.suspend" if status is TenantStatus.SUSPENDED else "tenant.resume"
    audit.record(session, action, tenant, before=before, after=after, reason=reason, tenant_id=tenant.id)
    session.flush()
    return tenant


def suspend_tenant(session: Session, tenant: Tenant, reason: str) -> Tenant:
    """Suspend a tenant: its pages answer "suspended", nobody can log in, its data stays untouched."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("暂停须说明原因"), field="reason")
    return _set_status(session, tenant, TenantStatus.SUSPENDED, reason)


def resume_tenant(session: Session, tenant: Tenant, reason: str | None = None) -> Tenant:
    return _set_status(session, tenant, TenantStatus.ACTIVE, (reason or "").strip() or None)


# --- rule-set versions -----------------------------------------------------------------------


def add_rules_version(session: Session, tenant: Tenant, rules_toml: str, *, note: str | None = None) -> RuleSetVersion:
    """Validate a rule-set document and store it as the tenant's next version.

    Rounds pin the version they opened with, so a new version never changes a running round;
    stored versions are never edited. A document whose rules equal the current version's (the
    rule engine's content hash: comments and formatting do not count) is refused.
    """
    rules = parse_rules(rules_toml)
    _check_zone_matches(rules, tenant.timezone)
    note = (note or "").strip() or None
    if note and len(note) > NOTE_MAX:
        raise ServiceError(_("说明最多 %(n)d 个字", n=NOTE_MAX), field="note")
    with tenant_context(tenant.id):
        latest = current_rules(session, tenant)
        if latest is not None and latest.content_hash == rules.content_hash:
            raise ServiceError(
                _("规则内容与当前版本（第 %(n)d 版）相同，未新建版本", n=latest.version), field="rules"
            )
        return _store_version(session, tenant, rules, rules_toml, note=note)


def _store_version(
    session: Session, tenant: Tenant, rules: RuleSet, rules_toml: str, *, note: str | None
) -> RuleSetVersion:
    version_no = (
        session.scalar(select(func.max(RuleSetVersion.version)).where(RuleSetVersion.tenant_id == tenant.id)) or 0
    ) + 1
    version = RuleSetVersion(
        tenant_id=tenant.id,
        version=version_no,
        source_toml=rules_toml,
        document=rules.to_document(),
        content_hash=rules.content_hash,
        note=note,
        created_by=audit.current_actor().name[:120],
    )
    session.add(version)
    audit.record(
        session,
        "rules.version",
        version,
        after={"version": version_no, "content_hash": rules.content_hash, "name": rules.meta.name},
        reason=note,
        tenant_id=tenant.id,
    )
    return version


def current_rules(session: Session, tenant: Tenant) -> RuleSetVersion | None:
    """The newest rule-set version of `tenant` (the one a new round would pin)."""
    with tenant_context(tenant.id):
        return session.scalar(
            select(RuleSetVersion)
            .where(RuleSetVersion.tenant_id == tenant.id)
            .order_by(RuleSetVersion.version.desc())
            .limit(1)
        )


def rules_version(session: Session, tenant: Tenant, version: int) -> RuleSetVersion:
    with tenant_context(tenant.id):
        found = session.scalar(
            select(RuleSetVersion).where(RuleSetVersion.tenant_id == tenant.id, RuleSetVersion.version == version)
        )
    if found is None:
        raise NotFoundError(_("没有第 %(n)d 版规则", n=version))
    return found


def rules_history(session: Session, tenant: Tenant) -> list[RuleSetVersion]:
    """All versions, newest first, without their (large) documents: one query."""
    with tenant_context(tenant.id):
        return list(
            session.scalars(
                select(RuleSetVersion)
                .where(RuleSetVersion.tenant_id == tenant.id)
                .options(defer(RuleSetVersion.source_toml), defer(RuleSetVersion.document))
                .order_by(RuleSetVersion.version.desc())
            )
        )


_RULES_BY_VERSION: dict[tuple[int, str], RuleSet] = {}


def pinned_rules(session: Session, rules_version_id: int) -> RuleSet:
    """The rule set of a stored version, as rounds pin it (never the tenant's latest).

    Versions never change once stored, so the parsed rules are kept per (version id, content hash):
    the hash is read each time (one small query) because an id alone can be reused after a rolled
    back transaction (SQLite reuses row ids; the tests roll back every test), and stale rules would
    silently score a round by another rule set.
    """
    content_hash = session.scalar(select(RuleSetVersion.content_hash).where(RuleSetVersion.id == rules_version_id))
    if content_hash is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFoundError(_("找不到本轮评定所用的规则版本"))
    key = (rules_version_id, content_hash)
    cached = _RULES_BY_VERSION.get(key)
    if cached is not None:
        return cached
    version = session.scalar(select(RuleSetVersion).where(RuleSetVersion.id == rules_version_id))
    if version is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFoundError(_("找不到本轮评定所用的规则版本"))
    rules = version_rules(version)
    if len(_RULES_BY_VERSION) > 256:
        _RULES_BY_VERSION.clear()
    _RULES_BY_VERSION[key] = rules
    return rules


def version_rules(version: RuleSetVersion) -> RuleSet:
    """The validated rule set of a stored version, from its normalised document (no TOML parsing)."""
    return load_rules_data(version.document)


__all__ = [
    "COMMON_TIMEZONES",
    "LOCALES",
    "RulesInvalidError",
    "add_rules_version",
    "create_tenant",
    "current_rules",
    "decode_rules_upload",
    "get_tenant",
    "parse_rules",
    "resume_tenant",
    "rules_history",
    "rules_version",
    "suspend_tenant",
    "validate_slug",
    "version_rules",
]
