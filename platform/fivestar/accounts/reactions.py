"""What accounts do when a tenant is suspended: receivers of `fivestar.kernel.events`.

Connected once per process by `fivestar.features.connect_receivers()`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from fivestar.accounts.models import AuthSession
from fivestar.db import utcnow
from fivestar.kernel import events
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


def connect() -> None:
    """Connect the receivers (strong references: they live as long as the process)."""
    events.tenant_suspended.connect(on_tenant_suspended, weak=False)
