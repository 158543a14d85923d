"""Every change writes an audit event in the same transaction; events are append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fivestar import audit
from fivestar.audit.models import AuditEvent, AuditImmutableError
from fivestar.audit.recording import Actor, acting_as
from fivestar.tenancy import tenant_context


def test_tenant_creation_is_recorded_with_actor(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    with acting_as(Actor("operator", 7, "运营甲")):
        tenant = create_tenant(slug="audit-one")
    events = session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id)).all()
    actions = [event.action for event in events]
    assert actions[:3] == ["tenant.create", "org.create", "rules.version"]
    assert {(event.actor_kind, event.actor_id, event.actor_name) for event in events} == {("operator", 7, "运营甲")}
    assert events[0].after is not None and events[0].after["slug"] == "audit-one"


def test_event_rolls_back_with_the_change(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant()
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    nested = session.begin_nested()
    with tenant_context(tenant.id):
        audit.record(session, "test.change", object_type="thing", object_id=1, before={"a": 1}, after={"a": 2})
    session.flush()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before + 1
    nested.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_orm_refuses_to_change_or_delete_an_event(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant()
    event = session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id)).first()
    assert event is not None
    event.reason = "rewritten"
    with pytest.raises(AuditImmutableError):
        session.flush()
    session.rollback()


def test_record_many_writes_one_row_per_change(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant()
    with tenant_context(tenant.id):
        written = audit.record_many(
            session, "member.import", "members", [(1, None, {"name": "甲"}), (2, {"name": "乙"}, {"name": "丙"})]
        )
    assert written == 2
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "member.import")
    ).all()
    assert sorted((row.object_id, row.after["name"]) for row in rows) == [("1", "甲"), ("2", "丙")]
