"""What accounts do when a tenant is suspended or a member moves: receivers of `fivestar.kernel.events`.

Connected once per process by `fivestar.features.connect_receivers()`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from fivestar.accounts.branch_grants import withdraw_grants_left_behind
from fivestar.accounts.models import AuthSession
from fivestar.db import utcnow
from fivestar.kernel import events
from fivestar.people.models import Member
from fivestar.tenants.models import Tenant


def on_tenant_suspended(tenant: Tenant, *, session: Session, **_: Any) -> int:
    """End every login of the tenant's accounts: a suspension takes effect at once, everywhere.

    Returns how many logins were ended (the suspension's audit event records it)."""
    result = session.execute(
        update(AuthSession)
        .where(AuthSession.tenant_id == tenant.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def on_member_moved(member: Member, *, session: Session, old_branch_id: int, reason: str, **_: Any) -> int:
    """The roles the member's account held only for the branch they left are revoked, audited with the
    move's reason: a secretary who moves on stops being the old branch's secretary at once."""
    return withdraw_grants_left_behind(session, {member.id: (old_branch_id, member.branch_id)}, reason=reason)


def connect() -> None:
    """Connect the receivers (strong references: they live as long as the process)."""
    events.tenant_suspended.connect(on_tenant_suspended, weak=False)
    events.member_moved.connect(on_member_moved, weak=False)
