"""Read-side queries of the organisation tree: one organisation, its label in a choice, the order of kinds.

What a principal may *see* of the tree (with member counts) is `fivestar.accounts.visibility`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind
from fivestar.labels import label
from fivestar.orgs.models import Organisation

KIND_ORDER = [
    OrgKind.COMMITTEE,
    OrgKind.PARTY_COMMITTEE,
    OrgKind.GENERAL_BRANCH,
    OrgKind.BRANCH,
    OrgKind.RETIREE_BRANCH,
]


def kind_order(kind: OrgKind) -> int:
    """Where a kind sorts among siblings of the same sort order: committees first, retirees' branches last."""
    return KIND_ORDER.index(kind)


def load_org(session: Session, org_id: int) -> Organisation | None:
    """One organisation of the current tenant (the tenant hook filters it), or None.

    A SELECT rather than `session.get`, so an object of another tenant that happens to sit in the
    identity map is never returned from there.
    """
    return session.scalar(select(Organisation).where(Organisation.id == org_id))


def choice_label(org: Organisation, names: dict[int, str] | None = None) -> str:
    """`上级 / 名称` so two branches called 第一党支部 under different committees can be told apart."""
    if names:
        parent = names.get(org.parent_id) if org.parent_id is not None else None
        if parent and org.kind is not OrgKind.COMMITTEE:
            return f"{parent} / {org.name}（{label(org.kind)}）"
    return f"{org.name}（{label(org.kind)}）"
