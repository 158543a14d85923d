"""What the organisation tree does when a tenant is created: receivers of `fivestar.kernel.events`.

Connected once per process by `fivestar.features.connect_receivers()`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.enums import OrgKind
from fivestar.kernel import events
from fivestar.orgs.models import Organisation
from fivestar.tenants.models import Tenant


def on_tenant_created(tenant: Tenant, *, session: Session, committee_name: str, **_: Any) -> None:
    """Every tenant's tree starts at its root committee (工委), created with the tenant, in its context."""
    root = Organisation(kind=OrgKind.COMMITTEE, name=committee_name, code="ROOT", sort_order=0)
    session.add(root)
    session.flush()
    root.path = f"/{root.id}/"
    audit.record(session, "org.create", root, after=audit.snapshot(root))


def connect() -> None:
    """Connect the receivers (strong references: they live as long as the process)."""
    events.tenant_created.connect(on_tenant_created, weak=False)
