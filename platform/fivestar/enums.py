"""String enumerations shared by models, forms and the importer.

Values are stable English identifiers stored in the database; what people see comes from
`fivestar.labels`, in Chinese first with English beside it.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum as SAEnum


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class OrgKind(StrEnum):
    COMMITTEE = "committee"  # 工委 — the root, one per tenant
    PARTY_COMMITTEE = "party_committee"  # 机关党委
    GENERAL_BRANCH = "general_branch"  # 党总支
    BRANCH = "branch"  # 党支部
    RETIREE_BRANCH = "retiree_branch"  # 离退休支部 — in the tree, never branch-rated

    @property
    def holds_members(self) -> bool:
        return self in (OrgKind.BRANCH, OrgKind.RETIREE_BRANCH)

    @property
    def is_branch_rated(self) -> bool:
        return self is OrgKind.BRANCH


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


class Standing(StrEnum):
    PROBATIONARY = "probationary"  # 预备党员
    FULL = "full"  # 正式党员


class Position(StrEnum):
    SECRETARY = "secretary"  # 书记
    DEPUTY_SECRETARY = "deputy_secretary"  # 副书记
    COMMITTEE_MEMBER = "committee_member"  # 支委
    MEMBER = "member"  # 党员


class MemberStatus(StrEnum):
    ACTIVE = "active"
    TRANSFERRED_OUT = "transferred_out"  # 已转出


class Role(StrEnum):
    TENANT_ADMIN = "tenant_admin"  # 工委工作人员
    COMMITTEE_MEMBER = "committee_member"  # 工委委员
    ORG_STAFF = "org_staff"  # 机关党委/党总支工作人员 — scoped to an organisation
    BRANCH_SECRETARY = "branch_secretary"  # 支部书记 — scoped to a branch
    BRANCH_COMMITTEE = "branch_committee"  # 支委 — scoped to a branch
    MEMBER = "member"  # 党员
    INSPECTOR = "inspector"  # 督查组 — read-only

    @property
    def needs_organisation(self) -> bool:
        return self in (Role.ORG_STAFF, Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)


def db_enum(enum_cls: type[StrEnum], name: str) -> SAEnum:
    """A portable enum column: VARCHAR plus a CHECK constraint, the same on SQLite and PostgreSQL."""
    return SAEnum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
