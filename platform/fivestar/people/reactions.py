"""What the people package answers for the packages below it: receivers of `fivestar.kernel.events`.

The organisation tree does not know members; before it closes a branch or changes its kind it asks how
many member records stand in it (`count_members_in_org`). Connected once per process by
`fivestar.features.connect_receivers()`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.enums import MemberStatus
from fivestar.kernel import events
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member


def count_members_in_org(org: Organisation, *, session: Session, active_only: bool, **_: Any) -> int:
    """Member records in `org` itself (not its subtree): only those on the roll if `active_only`."""
    statement = select(func.count()).select_from(Member).where(Member.branch_id == org.id)
    if active_only:
        statement = statement.where(Member.status == MemberStatus.ACTIVE)
    return int(session.scalar(statement) or 0)


def connect() -> None:
    """Connect the receivers (strong references: they live as long as the process)."""
    events.count_members_in_org.connect(count_members_in_org, weak=False)
