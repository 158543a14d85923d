"""Read-side queries of the organisation tree (set-based; one query per page part)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, org_scope
from fivestar.accounts.principal import Principal
from fivestar.enums import MemberStatus, OrgKind
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member


@dataclass
class TreeNode:
    org: Organisation
    active_members: int = 0
    children: list[TreeNode] = field(default_factory=list)

    @property
    def subtree_members(self) -> int:
        return self.active_members + sum(child.subtree_members for child in self.children)


def visible_tree(session: Session, principal: Principal, *, include_inactive: bool = False) -> list[TreeNode]:
    """The organisations `principal` may see, as a forest (roots are the top visible nodes).

    Two queries whatever the size: the organisations, and active member counts per branch.
    """
    statement = select(Organisation).where(org_scope(principal, Action.ORG_VIEW))
    if not include_inactive:
        statement = statement.where(Organisation.active.is_(True))
    orgs = list(session.scalars(statement.order_by(Organisation.path, Organisation.sort_order, Organisation.name)))
    counts: dict[int, int] = {
        branch_id: count
        for branch_id, count in session.execute(
            select(Member.branch_id, func.count())
            .where(Member.status == MemberStatus.ACTIVE)
            .group_by(Member.branch_id)
        )
    }
    nodes = {org.id: TreeNode(org, counts.get(org.id, 0)) for org in orgs}
    roots: list[TreeNode] = []
    for org in orgs:
        parent = nodes.get(org.parent_id) if org.parent_id is not None else None
        (parent.children if parent else roots).append(nodes[org.id])
    for node in nodes.values():
        node.children.sort(key=lambda child: (child.org.sort_order, _kind_order(child.org.kind), child.org.name))
    return roots


KIND_ORDER = [
    OrgKind.COMMITTEE,
    OrgKind.PARTY_COMMITTEE,
    OrgKind.GENERAL_BRANCH,
    OrgKind.BRANCH,
    OrgKind.RETIREE_BRANCH,
]


def _kind_order(kind: OrgKind) -> int:
    return KIND_ORDER.index(kind)


def load_org(session: Session, org_id: int) -> Organisation | None:
    """One organisation of the current tenant (the tenant hook filters it), or None.

    A SELECT rather than `session.get`, so an object of another tenant that happens to sit in the
    identity map is never returned from there.
    """
    return session.scalar(select(Organisation).where(Organisation.id == org_id))


@dataclass
class ChildSummary:
    org: Organisation
    active_members: int = 0
    transferred_members: int = 0
    descendants: int = 0


@dataclass
class OrgOverview:
    """What the organisation page shows besides the node itself (three queries in all)."""

    ancestors: list[Organisation]
    children: list[ChildSummary]
    active_members: int  # in the whole subtree visible to the principal
    transferred_members: int
    branches: int


def org_overview(session: Session, principal: Principal, org: Organisation) -> OrgOverview:
    """Ancestors, children with subtree counts, and totals for `org`, limited to what `principal`
    may see. Fixed query count: ancestors, the visible subtree, member counts per branch."""
    ancestor_ids = [ident for ident in org.ancestor_ids if ident != org.id]
    ancestors: list[Organisation] = []
    if ancestor_ids:
        ancestors = list(
            session.scalars(
                select(Organisation)
                .where(Organisation.id.in_(ancestor_ids), org_scope(principal, Action.ORG_VIEW))
                .order_by(Organisation.path)
            )
        )
    subtree = list(
        session.scalars(
            select(Organisation).where(
                Organisation.path.startswith(org.path, autoescape=True),
                Organisation.id != org.id,
                org_scope(principal, Action.ORG_VIEW),
            )
        )
    )
    counts: dict[tuple[int, MemberStatus], int] = {
        (branch_id, status): number
        for branch_id, status, number in session.execute(
            select(Member.branch_id, Member.status, func.count())
            .join(Organisation, Member.branch_id == Organisation.id)
            .where(Organisation.path.startswith(org.path, autoescape=True), org_scope(principal, Action.MEMBER_VIEW))
            .group_by(Member.branch_id, Member.status)
        )
    }
    paths = {node.id: node.path for node in [org, *subtree]}

    def tally(prefix: str, status: MemberStatus) -> int:
        return sum(
            number
            for (branch_id, state), number in counts.items()
            if state is status and paths.get(branch_id, "").startswith(prefix)
        )

    children = [
        ChildSummary(
            org=node,
            active_members=tally(node.path, MemberStatus.ACTIVE),
            transferred_members=tally(node.path, MemberStatus.TRANSFERRED_OUT),
            descendants=sum(1 for other in subtree if other.id != node.id and other.path.startswith(node.path)),
        )
        for node in subtree
        if node.parent_id == org.id
    ]
    children.sort(key=lambda c: (not c.org.active, c.org.sort_order, _kind_order(c.org.kind), c.org.name))
    return OrgOverview(
        ancestors=ancestors,
        children=children,
        active_members=tally(org.path, MemberStatus.ACTIVE),
        transferred_members=tally(org.path, MemberStatus.TRANSFERRED_OUT),
        branches=sum(1 for node in [org, *subtree] if node.kind.holds_members and node.active),
    )


def org_choices(
    session: Session,
    principal: Principal,
    action: Action,
    kinds: frozenset[OrgKind] | set[OrgKind],
    *,
    exclude_path: str | None = None,
) -> list[Organisation]:
    """Active organisations of `kinds` on which `principal` may take `action` (one query), for a
    select field: parents for a new or moved organisation, branches for a member."""
    if not kinds:
        return []
    statement = select(Organisation).where(
        Organisation.active.is_(True), Organisation.kind.in_(list(kinds)), org_scope(principal, action)
    )
    if exclude_path:
        statement = statement.where(~Organisation.path.startswith(exclude_path, autoescape=True))
    return list(session.scalars(statement.order_by(Organisation.path)))


def choice_label(org: Organisation, names: dict[int, str] | None = None) -> str:
    """`上级 / 名称` so two branches called 第一党支部 under different committees can be told apart."""
    from fivestar.labels import label

    if names:
        parent = names.get(org.parent_id) if org.parent_id is not None else None
        if parent and org.kind is not OrgKind.COMMITTEE:
            return f"{parent} / {org.name}（{label(org.kind)}）"
    return f"{org.name}（{label(org.kind)}）"
