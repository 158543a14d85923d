"""How open member rounds follow the roll: receivers of the people package's events.

The people package announces a member who joins, moves or leaves (`fivestar.kernel.events`); the round
follows the branch as it is (`membership.py` decides how). Connected once per process by
`fivestar.features.connect_receivers()`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fivestar.kernel import events
from fivestar.member_rounds import membership
from fivestar.people.models import Member


def on_member_joined(member: Member, *, session: Session, **_: Any) -> None:
    membership.member_joined(session, member)


def on_member_moved(member: Member, *, session: Session, old_branch_id: int, reason: str | None, **_: Any) -> None:
    membership.member_moved(session, member, old_branch_id, reason)


def on_member_left(member: Member, *, session: Session, reason: str | None, **_: Any) -> None:
    membership.member_left(session, member, reason)


def connect() -> None:
    """Connect the receivers (strong references: they live as long as the process)."""
    events.member_joined.connect(on_member_joined, weak=False)
    events.member_moved.connect(on_member_moved, weak=False)
    events.member_left.connect(on_member_left, weak=False)
