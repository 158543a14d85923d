"""What a principal may see of the directory: the organisation tree, an organisation's overview, the
members list and a branch's roll, and the organisations offered in a choice.

Every query filters with the policy's `org_scope` / `member_scope`, so a list shows exactly what
`authorize(principal, action, obj)` allows, and each runs a fixed number of statements whatever the
number of members (no per-row loading: `Member.branch` is raise_on_sql). They live beside the policy
because they join it to the organisations and people packages, which stand below accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from fivestar.accounts.policy import Action, member_scope, org_scope
from fivestar.accounts.principal import Principal
from fivestar.enums import MemberStatus, OrgKind, Position, Standing
from fivestar.orgs.models import Organisation
from fivestar.orgs.queries import kind_order
from fivestar.people.models import Member

# --- the organisation tree -------------------------------------------------------------------


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
        node.children.sort(key=lambda child: (child.org.sort_order, kind_order(child.org.kind), child.org.name))
    return roots


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
    children.sort(key=lambda c: (not c.org.active, c.org.sort_order, kind_order(c.org.kind), c.org.name))
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


# --- members ------------------------------------------------------------------------------------


PER_PAGE = 30
QUERY_MAX = 40

POSITION_ORDER = case(
    {Position.SECRETARY: 0, Position.DEPUTY_SECRETARY: 1, Position.COMMITTEE_MEMBER: 2},
    value=Member.position,
    else_=3,
)


@dataclass(frozen=True)
class MemberFilters:
    """What the search page asks for; empty values mean "any"."""

    q: str = ""
    org_path: str | None = None  # the subtree to search in (materialised path of an organisation)
    standing: Standing | None = None
    position: Position | None = None
    status: MemberStatus | None = MemberStatus.ACTIVE


@dataclass
class MemberPage:
    rows: list[Member]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _scoped(principal: Principal, action: Action) -> Select[Member]:
    return (
        select(Member)
        .join(Organisation, Member.branch_id == Organisation.id)
        .where(member_scope(principal, action))
        .options(contains_eager(Member.branch))
    )


def _filtered(statement: Select[Member], filters: MemberFilters, principal: Principal) -> Select[Member]:
    text = filters.q.strip()[:QUERY_MAX]
    if text:
        # A phone number finds only people whose number the searcher may see (not fellow members').
        phone_visible = or_(member_scope(principal, Action.MEMBER_CONTACT), Member.id == principal.member_id)
        statement = statement.where(
            or_(
                Member.name.icontains(text, autoescape=True),
                Member.member_no.icontains(text, autoescape=True),
                and_(Member.phone.contains(text, autoescape=True), phone_visible),
            )
        )
    if filters.org_path:
        statement = statement.where(Organisation.path.startswith(filters.org_path, autoescape=True))
    if filters.standing is not None:
        statement = statement.where(Member.standing == filters.standing)
    if filters.position is not None:
        statement = statement.where(Member.position == filters.position)
    if filters.status is not None:
        statement = statement.where(Member.status == filters.status)
    return statement


def search_members(
    session: Session,
    principal: Principal,
    filters: MemberFilters,
    *,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> MemberPage:
    """One page of the members `principal` may see that match `filters`: two queries (count, page)."""
    statement = _filtered(_scoped(principal, Action.MEMBER_VIEW), filters, principal)
    total = int(session.scalar(statement.with_only_columns(func.count(Member.id)).order_by(None)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = list(
        session.scalars(
            statement.order_by(Organisation.path, POSITION_ORDER, Member.member_no)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    return MemberPage(rows=rows, total=total, page=page, per_page=per_page)


def branch_roll(
    session: Session, principal: Principal, branch_ids: Iterable[int], *, status: MemberStatus | None = None
) -> list[Member]:
    """The members of some branches that `principal` may see (one query), secretaries first."""
    ids = list(branch_ids)
    if not ids:
        return []
    statement = _scoped(principal, Action.MEMBER_VIEW).where(Member.branch_id.in_(ids))
    if status is not None:
        statement = statement.where(Member.status == status)
    return list(session.scalars(statement.order_by(Organisation.path, Member.status, POSITION_ORDER, Member.member_no)))
