"""Read-side queries of members: the search page, a branch's roll, one member with their branch.

Every query joins the member's branch and filters with `member_scope`, so a list shows exactly the
members `authorize(principal, MEMBER_VIEW, member)` allows; and each runs a fixed number of
statements whatever the number of members (no per-row loading: `Member.branch` is raise_on_sql).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, contains_eager

from fivestar.accounts.policy import Action, member_scope
from fivestar.accounts.principal import Principal
from fivestar.enums import MemberStatus, Position, Standing
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member

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
    return list(
        session.scalars(statement.order_by(Organisation.path, Member.status, POSITION_ORDER, Member.member_no))
    )


def load_member(session: Session, member_id: int) -> Member | None:
    """One member of the current tenant with its branch loaded (as `authorize` needs), or None."""
    return session.scalar(
        select(Member)
        .join(Organisation, Member.branch_id == Organisation.id)
        .where(Member.id == member_id)
        .options(contains_eager(Member.branch))
    )
