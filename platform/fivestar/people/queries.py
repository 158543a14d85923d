"""Read-side queries of members: one member with their branch.

The lists a principal may see (the search page, a branch's roll) are `fivestar.accounts.visibility`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from fivestar.orgs.models import Organisation
from fivestar.people.models import Member


def load_member(session: Session, member_id: int) -> Member | None:
    """One member of the current tenant with its branch loaded (as `authorize` needs), or None."""
    return session.scalar(
        select(Member)
        .join(Organisation, Member.branch_id == Organisation.id)
        .where(Member.id == member_id)
        .options(contains_eager(Member.branch))
    )
