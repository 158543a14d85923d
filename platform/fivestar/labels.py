"""What people see for each stored value: Chinese first, English through the translation files."""

from __future__ import annotations

from enum import StrEnum

from flask_babel import LazyString

from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Role, Standing, TenantStatus
from fivestar.i18n import _l

# Pairs, not a dict literal: members of different StrEnums with the same value are equal and hash
# alike (MemberStatus.ACTIVE == TenantStatus.ACTIVE == "active", Position.COMMITTEE_MEMBER ==
# Role.COMMITTEE_MEMBER), so a dict keyed by the members would keep one label for both.
_PAIRS: tuple[tuple[StrEnum, LazyString], ...] = (
    (OrgKind.COMMITTEE, _l("工委")),
    (OrgKind.PARTY_COMMITTEE, _l("机关党委")),
    (OrgKind.GENERAL_BRANCH, _l("党总支")),
    (OrgKind.BRANCH, _l("党支部")),
    (OrgKind.RETIREE_BRANCH, _l("离退休支部")),
    (Gender.MALE, _l("男")),
    (Gender.FEMALE, _l("女")),
    (Standing.PROBATIONARY, _l("预备党员")),
    (Standing.FULL, _l("正式党员")),
    (Position.SECRETARY, _l("书记")),
    (Position.DEPUTY_SECRETARY, _l("副书记")),
    (Position.COMMITTEE_MEMBER, _l("支委")),
    (Position.MEMBER, _l("党员")),
    (MemberStatus.ACTIVE, _l("在册")),
    (MemberStatus.TRANSFERRED_OUT, _l("已转出")),
    (Role.TENANT_ADMIN, _l("工委工作人员")),
    (Role.COMMITTEE_MEMBER, _l("工委委员")),
    (Role.ORG_STAFF, _l("机关党委/党总支工作人员")),
    (Role.BRANCH_SECRETARY, _l("支部书记")),
    (Role.BRANCH_COMMITTEE, _l("支委")),
    (Role.MEMBER, _l("党员")),
    (Role.INSPECTOR, _l("督查组")),
    (TenantStatus.ACTIVE, _l("正常")),
    (TenantStatus.SUSPENDED, _l("已暂停")),
)
LABELS: dict[tuple[type[StrEnum], str], LazyString] = {(type(key), key.value): text for key, text in _PAIRS}


def label(value: StrEnum | None) -> str:
    if value is None:
        return ""
    found = LABELS.get((type(value), value.value)) if isinstance(value, StrEnum) else None
    return str(found) if found is not None else str(value)


def choices(enum_cls: type[StrEnum]) -> list[tuple[str, str]]:
    """(value, label) pairs for a select field, in declaration order."""
    return [(member.value, label(member)) for member in enum_cls]
