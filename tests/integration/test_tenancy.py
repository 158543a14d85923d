"""The tenancy layers 1–4 (CONTRIBUTING.md "Tenancy", fivestar/tenancy.py) on a real database.

The ORM hook refuses to query tenant-owned tables without a tenant, scopes every ORM statement
to the current tenant, refuses to flush a row of another tenant, and the composite foreign keys
make the database itself reject a cross-tenant link (Core inserts, bypassing the ORM).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from fivestar.accounts.models import Account, RoleGrant
from fivestar.enums import Gender, MemberStatus, OrgKind, Role
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import TenantScopeError, cross_tenant, current_tenant_id, tenant_context
from fivestar.tenants.models import Tenant


@pytest.fixture
def world(two_tenants: dict[str, Any], session: Session) -> dict[str, Any]:
    """two_tenants with nothing left in the identity map, so every read really goes to the database."""
    session.expunge_all()
    return two_tenants


# --- layer 3: no tenant, no query ---------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(lambda: select(Member), id="select"),
        pytest.param(lambda: select(Member.name).where(Member.member_no == "NO001"), id="select-columns"),
        pytest.param(
            lambda: select(Tenant.slug).join(Organisation, Organisation.tenant_id == Tenant.id), id="join-from-tenants"
        ),
        pytest.param(
            lambda: select(Tenant.slug).join_from(Tenant, Member, Member.tenant_id == Tenant.id), id="join-from-2"
        ),
        pytest.param(
            lambda: select(Tenant.id).where(exists().where(Member.tenant_id == Tenant.id)), id="exists-subquery"
        ),
        pytest.param(lambda: select(Tenant.id).where(Tenant.id.in_(select(Organisation.tenant_id))), id="in-subquery"),
        pytest.param(lambda: update(Member).values(name="x"), id="bulk-update"),
        pytest.param(lambda: delete(Member).where(Member.member_no == "NO001"), id="bulk-delete"),
        pytest.param(lambda: update(Organisation).values(active=False), id="bulk-update-orgs"),
    ],
)
def test_tenant_tables_cannot_be_queried_without_a_tenant(
    session: Session, world: dict[str, Any], statement: Any
) -> None:
    assert current_tenant_id() is None
    with pytest.raises(TenantScopeError):
        session.execute(statement())


def test_platform_tables_need_no_tenant(session: Session, world: dict[str, Any]) -> None:
    slugs = set(session.scalars(select(Tenant.slug)))
    assert {"district-a", "district-b"} <= slugs


def test_session_get_without_a_tenant_is_refused(session: Session, world: dict[str, Any]) -> None:
    with pytest.raises(TenantScopeError):
        session.get(Member, world["b"]["members"][0].id)


# --- layer 3: scoping ---------------------------------------------------------------------------


def test_select_and_get_see_only_the_current_tenant(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with tenant_context(a["tenant"].id):
        numbers = session.scalars(select(Member.member_no).order_by(Member.member_no)).all()
        assert numbers == ["NO001", "NO002", "NO003"]  # B has the same numbers: only A's rows count
        owners = set(session.scalars(select(Member.tenant_id)))
        assert owners == {a["tenant"].id}
        assert session.get(Member, b["members"][0].id) is None
        assert session.get(Organisation, b["branch"].id) is None
        assert session.scalar(select(Organisation).where(Organisation.code == "B001")).id == a["branch"].id  # type: ignore[union-attr]
        # joins and aliases are scoped too
        joined = session.execute(
            select(Member.id, Organisation.id).join(Organisation, Member.branch_id == Organisation.id)
        ).all()
        assert {row[0] for row in joined} == {member.id for member in a["members"]}
        assert {row[1] for row in joined} == {a["branch"].id}


def test_bulk_update_in_a_tenant_touches_only_that_tenant(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with tenant_context(a["tenant"].id):
        session.execute(update(Member).values(note="只改甲区"))
    with cross_tenant("test reads both districts"):
        notes = dict(session.execute(select(Member.id, Member.note)).all())
    assert all(notes[member.id] == "只改甲区" for member in a["members"])
    assert all(notes[member.id] is None for member in b["members"])


def test_relationship_loads_are_scoped(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with tenant_context(a["tenant"].id):
        members = session.scalars(select(Member).options(selectinload(Member.branch))).all()
        assert {member.branch.id for member in members} == {a["branch"].id}
        orgs = session.scalars(select(Organisation).options(joinedload(Organisation.parent))).unique().all()
        assert {org.tenant_id for org in orgs} == {a["tenant"].id}
        assert all(org.parent is None or org.parent.tenant_id == a["tenant"].id for org in orgs)
    # An object of B that sits in the identity map (the documented hole) still loads nothing of B
    # through a relationship while acting for A: the lazy load is an ORM select and gets scoped.
    with cross_tenant("test loads district B's admin"):
        b_admin = session.scalar(select(Account).where(Account.id == b["admin"].id))
        assert b_admin is not None and len(b_admin.grants) == 1
    session.expire(b_admin, ["grants"])
    with tenant_context(a["tenant"].id):
        assert b_admin.grants == []
    session.expire(b_admin, ["grants"])
    with tenant_context(b["tenant"].id):
        assert [grant.role for grant in b_admin.grants] == [Role.TENANT_ADMIN]


def test_raise_on_sql_relationships_must_be_loaded_explicitly(session: Session, world: dict[str, Any]) -> None:
    with tenant_context(world["a"]["tenant"].id):
        member = session.scalar(select(Member).limit(1))
        assert member is not None
        with pytest.raises(Exception, match=r"raise_on_sql|lazy load"):
            _ = member.branch


# --- layer 3: writes ----------------------------------------------------------------------------


def test_flush_refuses_changing_a_row_of_another_tenant(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with cross_tenant("test loads district B's member"):
        intruded = session.scalar(select(Member).where(Member.id == b["members"][0].id))
    assert intruded is not None
    with tenant_context(a["tenant"].id):
        intruded.name = "甲区改了乙区"
        with pytest.raises(TenantScopeError, match="written while acting for tenant"):
            session.flush()
    session.rollback()


def test_flush_refuses_new_rows_for_another_tenant_or_without_one(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with tenant_context(a["tenant"].id):
        session.add(
            Member(tenant_id=b["tenant"].id, branch_id=b["branch"].id, member_no="X1", name="x", gender=Gender.MALE)
        )
        with pytest.raises(TenantScopeError):
            session.flush()
    session.rollback()
    session.add(Member(branch_id=a["branch"].id, member_no="X2", name="x", gender=Gender.MALE))
    with pytest.raises(TenantScopeError, match="has no tenant"):
        session.flush()
    session.rollback()


def test_flush_refuses_deleting_a_row_of_another_tenant(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with cross_tenant("test loads district B's grant"):
        grant = session.scalar(select(RoleGrant).where(RoleGrant.account_id == b["admin"].id))
    assert grant is not None
    with tenant_context(a["tenant"].id):
        session.delete(grant)
        with pytest.raises(TenantScopeError):
            session.flush()
    session.rollback()


def test_rows_cannot_move_to_another_tenant(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with tenant_context(a["tenant"].id):
        member = session.scalar(select(Member).where(Member.member_no == "NO003"))
        assert member is not None
        member.tenant_id = b["tenant"].id
        with pytest.raises(TenantScopeError):
            session.flush()
    session.rollback()


def test_new_rows_get_the_current_tenant(session: Session, world: dict[str, Any]) -> None:
    a = world["a"]
    with tenant_context(a["tenant"].id):
        member = Member(branch_id=a["branch"].id, member_no="NEW1", name="新人", gender=Gender.FEMALE)
        session.add(member)
        session.flush()
        assert member.tenant_id == a["tenant"].id


# --- layer 4: the database rejects cross-tenant links -------------------------------------------


def _core_insert_fails(session: Session, table: Any, values: dict[str, Any]) -> None:
    """A Core INSERT on the session's connection (no ORM, no hook), inside a savepoint so the
    failure leaves the test's transaction usable on PostgreSQL too."""
    connection = session.connection()
    savepoint = connection.begin_nested()
    with pytest.raises(IntegrityError):
        connection.execute(insert(table).values(**values))
    savepoint.rollback()


def test_database_rejects_a_member_of_a_in_a_branch_of_b(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    row = {
        "tenant_id": a["tenant"].id,
        "member_no": "CROSS1",
        "name": "越界",
        "gender": Gender.MALE.value,
        "standing": "full",
        "position": "member",
        "status": MemberStatus.ACTIVE.value,
        "version": 1,
    }
    _core_insert_fails(session, Member.__table__, {**row, "branch_id": b["branch"].id})
    # the same row pointing at A's own branch is accepted: the failure above is the tenant check
    connection = session.connection()
    connection.execute(insert(Member.__table__).values(**row, branch_id=a["branch"].id))


def test_database_rejects_other_cross_tenant_links(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    _core_insert_fails(
        session,
        Organisation.__table__,
        {
            "tenant_id": a["tenant"].id,
            "parent_id": b["party"].id,
            "kind": OrgKind.BRANCH.value,
            "name": "越界支部",
            "code": "CROSS",
            "path": "/",
            "sort_order": 0,
            "active": True,
        },
    )
    _core_insert_fails(
        session,
        RoleGrant.__table__,
        {
            "tenant_id": a["tenant"].id,
            "account_id": a["admin"].id,
            "role": Role.BRANCH_SECRETARY.value,
            "organisation_id": b["branch"].id,
        },
    )
    _core_insert_fails(
        session,
        Account.__table__,
        {
            "tenant_id": a["tenant"].id,
            "username": "cross",
            "display_name": "越界",
            "member_id": b["members"][0].id,
            "active": True,
            "must_change_password": False,
        },
    )


# --- opting out, by name ------------------------------------------------------------------------


def test_cross_tenant_sees_both_and_restores_the_tenant(session: Session, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    with tenant_context(a["tenant"].id):
        with cross_tenant("test counts members of every district"):
            assert current_tenant_id() is None
            owners = {tenant_id for (tenant_id,) in session.execute(select(Member.tenant_id).distinct())}
            assert {a["tenant"].id, b["tenant"].id} <= owners
            numbers = session.scalars(select(Member.member_no).where(Member.member_no == "NO001")).all()
            assert len(numbers) >= 2
        assert current_tenant_id() == a["tenant"].id
        assert set(session.scalars(select(Member.tenant_id))) == {a["tenant"].id}
    with pytest.raises(ValueError), cross_tenant(""):
        pass


def test_cross_tenant_by_execution_option(session: Session, world: dict[str, Any]) -> None:
    owners = set(session.scalars(select(Member.tenant_id).execution_options(cross_tenant="test option")))
    assert {world["a"]["tenant"].id, world["b"]["tenant"].id} <= owners


def test_subqueries_are_scoped_too(session: Session, world: dict[str, Any]) -> None:
    a = world["a"]
    with tenant_context(a["tenant"].id):
        in_subquery = set(session.scalars(select(Tenant.slug).where(Tenant.id.in_(select(Member.tenant_id)))))
        assert in_subquery == {"district-a"}
        with_exists = set(
            session.scalars(select(Tenant.slug).where(select(Member.id).where(Member.tenant_id == Tenant.id).exists()))
        )
        assert with_exists == {"district-a"}
