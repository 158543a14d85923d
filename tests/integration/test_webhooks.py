"""Which group robots a reminder goes to (`webhooks_for`), on both databases: the tenant's active
district-wide robots and those of the given organisations, in one query, never another tenant's;
and the database refuses a robot pointing at another tenant's organisation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar.config import Settings
from fivestar.notify.encryption import encrypt
from fivestar.notify.models import Webhook, WebhookKind
from fivestar.notify.services import webhooks_for
from fivestar.tenancy import TenantScopeError, tenant_context
from tests.support import count_queries


def robot(session: Session, settings: Settings, tenant: Any, name: str, org: Any = None, **kw: Any) -> Webhook:
    with tenant_context(tenant.id):
        row = Webhook(
            name=name,
            kind=kw.pop("kind", WebhookKind.WECOM),
            organisation_id=org.id if org is not None else None,
            url_encrypted=encrypt(settings, f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={name}"),
            created_by="test",
            **kw,
        )
        session.add(row)
        session.flush()
    return row


def test_webhooks_for_picks_district_wide_and_the_given_organisations(
    session: Session, settings: Settings, engine: Engine, two_tenants: dict[str, Any], create_org: Any
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    other_branch = create_org(a["tenant"], parent=a["party"], name="第二党支部", code="B009")
    district = robot(session, settings, a["tenant"], "district")
    party = robot(session, settings, a["tenant"], "party", a["party"], kind=WebhookKind.DINGTALK)
    branch = robot(session, settings, a["tenant"], "branch", a["branch"])
    robot(session, settings, a["tenant"], "other-branch", other_branch)
    robot(session, settings, a["tenant"], "off", a["branch"], active=False)
    robot(session, settings, a["tenant"], "district-off", active=False)
    robot(session, settings, b["tenant"], "b-district")
    robot(session, settings, b["tenant"], "b-branch", b["branch"])
    with tenant_context(a["tenant"].id):
        with count_queries(engine, only=("SELECT",)) as queries:
            found = webhooks_for(session, [a["branch"].id, a["party"].id, b["branch"].id])
        assert len(queries) == 1
        assert [row.name for row in found] == [district.name, party.name, branch.name]
        assert [row.name for row in webhooks_for(session, [])] == ["district"]
        assert [row.name for row in webhooks_for(session, {other_branch.id})] == ["district", "other-branch"]
    with tenant_context(b["tenant"].id):
        assert [row.name for row in webhooks_for(session, [a["branch"].id, b["branch"].id])] == [
            "b-district",
            "b-branch",
        ]


def test_webhooks_for_needs_a_tenant(session: Session) -> None:
    with pytest.raises(TenantScopeError):
        webhooks_for(session, [1])


def test_a_robot_cannot_point_at_another_tenants_organisation(
    session: Session, settings: Settings, two_tenants: dict[str, Any]
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    with pytest.raises(IntegrityError), session.begin_nested():
        robot(session, settings, a["tenant"], "crossing", b["branch"])
