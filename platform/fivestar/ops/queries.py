"""The operator's view of the tenants: how big each is, in counts only, never names.

These read the directory of every tenant (organisations, members, accounts), so they live with the
operator's pages above those packages rather than in `fivestar.tenants`, which every feature stands on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account
from fivestar.enums import MemberStatus
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant


@dataclass(frozen=True)
class TenantRow:
    """One line of the operator's tenant list: facts and counts, never member data."""

    tenant: Tenant
    rules_version: int | None
    rules_updated_at: dt.datetime | None
    active_members: int


@dataclass(frozen=True)
class TenantCounts:
    organisations: int
    active_members: int
    accounts: int


def list_tenants(session: Session) -> list[TenantRow]:
    """Every tenant with its newest rules version and active member count: one grouped query."""
    with cross_tenant("operator listing"):
        rules = (
            select(
                RuleSetVersion.tenant_id.label("tenant_id"),
                func.max(RuleSetVersion.version).label("version"),
                func.max(RuleSetVersion.created_at).label("updated_at"),
            )
            .group_by(RuleSetVersion.tenant_id)
            .subquery()
        )
        members = (
            select(Member.tenant_id.label("tenant_id"), func.count().label("members"))
            .where(Member.status == MemberStatus.ACTIVE)
            .group_by(Member.tenant_id)
            .subquery()
        )
        rows: list[Any] = list(
            session.execute(
                select(Tenant, rules.c.version, rules.c.updated_at, func.coalesce(members.c.members, 0))
                .outerjoin(rules, rules.c.tenant_id == Tenant.id)
                .outerjoin(members, members.c.tenant_id == Tenant.id)
                .order_by(Tenant.slug)
            )
        )
    return [
        TenantRow(
            tenant=row[0],
            rules_version=None if row[1] is None else int(row[1]),
            rules_updated_at=row[2],
            active_members=int(row[3] or 0),
        )
        for row in rows
    ]


def tenant_counts(session: Session, tenant: Tenant) -> TenantCounts:
    """How big a tenant is, for the operator: counts only, never names."""
    with tenant_context(tenant.id):
        orgs = session.scalar(select(func.count()).select_from(Organisation)) or 0
        members = (
            session.scalar(select(func.count()).select_from(Member).where(Member.status == MemberStatus.ACTIVE)) or 0
        )
        accounts = session.scalar(select(func.count()).select_from(Account)) or 0
    return TenantCounts(organisations=int(orgs), active_members=int(members), accounts=int(accounts))


__all__ = ["TenantCounts", "TenantRow", "list_tenants", "tenant_counts"]
