"""The permission policy's SQL scope says what `authorize` says, for every action and every organisation.

`accounts.policy.authorize` decides one object at a time; `org_scope` is the WHERE clause lists and work
lists use to show only what a person may open. If they drift apart, a list offers a branch whose page
then refuses (or hides one the person may act on). This walks every action over a real tree, for each
kind of principal, and compares the rows the clause selects with the organisations `authorize` allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize, org_scope
from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import OrgKind, Role
from fivestar.orgs.models import Organisation
from fivestar.tenancy import tenant_context

# Actions whose object is an organisation or what hangs under one: for these the scope and the check must
# agree organisation by organisation. The others are about accounts, one's own self-assessment, the
# platform, or the district as a whole (its home, its rules, its audit trail), which no list narrows by
# organisation.
NOT_BY_ORGANISATION = {
    Action.ACCOUNT_VIEW,
    Action.ACCOUNT_MANAGE,
    Action.SELF_ASSESS,
    Action.PLATFORM_MANAGE,
    Action.TENANT_VIEW,
    Action.RULES_VIEW,
    Action.AUDIT_VIEW,
}
ORG_ACTIONS = [action for action in Action if action not in NOT_BY_ORGANISATION]


@pytest.fixture
def tree(session: Session, create_tenant: Callable[..., Any], create_org: Callable[..., Any]) -> dict[str, Any]:
    tenant = create_tenant()
    party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="财政局机关党委")
    general = create_org(tenant, OrgKind.GENERAL_BRANCH, name="统计局党总支")
    orgs = {
        "P": party,
        "B1": create_org(tenant, parent=party, name="预算科党支部"),
        "B2": create_org(tenant, parent=party, name="国库科党支部"),
        "G": general,
        "B3": create_org(tenant, OrgKind.RETIREE_BRANCH, parent=general, name="离退休党支部"),
        "B4": create_org(tenant, name="直属党支部"),
    }
    with tenant_context(tenant.id):
        orgs["root"] = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
    return {"tenant": tenant, "orgs": orgs}


def _principal(
    tenant_id: int, orgs: dict[str, Any], *grants: tuple[Role, str | None], member_of: str | None = None
) -> Principal:
    return Principal(
        session_token="t",
        display_name="p",
        tenant_id=tenant_id,
        account_id=1,
        member_id=1 if member_of else None,
        member_branch_path=orgs[member_of].path if member_of else None,
        grants=tuple(
            Grant(role, orgs[name].id if name else None, orgs[name].path if name else None) for role, name in grants
        ),
    )


PRINCIPALS: dict[str, tuple[tuple[tuple[Role, str | None], ...], str | None]] = {
    "tenant admin": (((Role.TENANT_ADMIN, None),), None),
    "committee member": (((Role.COMMITTEE_MEMBER, None),), None),
    "inspector": (((Role.INSPECTOR, None),), None),
    "org staff of P": (((Role.ORG_STAFF, "P"),), None),
    "secretary of B1": (((Role.BRANCH_SECRETARY, "B1"),), "B1"),
    "branch committee of B3": (((Role.BRANCH_COMMITTEE, "B3"),), "B3"),
    "member of B2": (((Role.MEMBER, None),), "B2"),
    "secretary of B4 and org staff of G": (((Role.BRANCH_SECRETARY, "B4"), (Role.ORG_STAFF, "G")), "B4"),
}


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_the_sql_scope_selects_exactly_what_authorize_allows(session: Session, tree: dict[str, Any], who: str) -> None:
    tenant, orgs = tree["tenant"], tree["orgs"]
    grants, member_of = PRINCIPALS[who]
    principal = _principal(tenant.id, orgs, *grants, member_of=member_of)
    names = {org.id: name for name, org in orgs.items()}
    disagreements = []
    with tenant_context(tenant.id):
        for action in ORG_ACTIONS:
            selected = {
                names[org_id]
                for org_id in session.scalars(select(Organisation.id).where(org_scope(principal, action)))
                if org_id in names
            }
            allowed = {name for name, org in orgs.items() if authorize(principal, action, org)}
            if selected != allowed:
                disagreements.append(f"{action.value}: scope {sorted(selected)} but authorize {sorted(allowed)}")
    assert disagreements == [], f"{who}:\n" + "\n".join(disagreements)
