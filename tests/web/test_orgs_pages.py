"""Organisation pages through the Flask test client: the tree, one organisation, and tree changes."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import MemberStatus, OrgKind, Role
from fivestar.orgs.models import Organisation
from fivestar.tenancy import tenant_context


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}{path}"


def _org(session: Session, world: dict[str, Any], **where: Any) -> Organisation | None:
    session.expire_all()
    with tenant_context(world["tenant"].id):
        return session.scalar(select(Organisation).filter_by(**where))


@pytest.fixture
def world(two_tenants: dict[str, Any], create_org: Any, create_account: Any) -> dict[str, Any]:
    a = dict(two_tenants["a"])
    tenant = a["tenant"]
    a["general"] = create_org(tenant, OrgKind.GENERAL_BRANCH, parent=a["party"], name="教研党总支", code="G001")
    a["inner"] = create_org(tenant, OrgKind.BRANCH, parent=a["general"], name="教研第一支部", code="G001-1")
    a["health"] = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="卫健委机关党委", code="P002")
    a["staff"] = create_account(tenant, roles=[(Role.ORG_STAFF, a["party"])], username="staff")
    a["committee"] = create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan")
    return a


def test_tree_links_every_node_with_counts(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["admin"])
    page = _text(client.get(_url(world, "/orgs/")))
    for key in ("party", "branch", "retirees", "general", "inner", "health"):
        assert f'href="/t/district-a/orgs/{world[key].id}"' in page, key
    assert "3 名党员" in page  # the first branch


def test_detail_shows_facts_children_members_and_actions(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["admin"])
    page = _text(client.get(_url(world, f"/orgs/{world['party'].id}")))
    assert "P001" in page and "教研党总支" in page and "第一党支部" in page
    assert f"/orgs/{world['party'].id}/edit" in page and f"/orgs/{world['party'].id}/move" in page
    page = _text(client.get(_url(world, f"/orgs/{world['branch'].id}")))
    assert "张1" in page and "张3" in page and "添加党员" in page
    assert f"/orgs/{world['branch'].id}/new" not in page  # nothing can sit under a branch


def test_scoped_roles_see_their_part_of_the_tree(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["secretary"])
    page = _text(client.get(_url(world, "/orgs/")))
    assert "第一党支部" in page and "卫健委机关党委" not in page and "教研党总支" not in page
    assert client.get(_url(world, f"/orgs/{world['branch'].id}")).status_code == 200
    assert client.get(_url(world, f"/orgs/{world['party'].id}")).status_code == 404
    assert client.get(_url(world, f"/orgs/{world['branch'].id}/edit")).status_code == 403
    assert "修改</a>" not in _text(client.get(_url(world, f"/orgs/{world['branch'].id}")))
    client.post(_url(world, "/logout"))

    login(world["tenant"], world["staff"])
    page = _text(client.get(_url(world, "/orgs/")))
    assert "教研第一支部" in page and "卫健委机关党委" not in page
    assert client.get(_url(world, f"/orgs/{world['general'].id}/edit")).status_code == 200
    assert client.get(_url(world, f"/orgs/{world['health'].id}")).status_code == 404
    client.post(_url(world, "/logout"))

    login(world["tenant"], world["committee"])
    page = _text(client.get(_url(world, "/orgs/")))
    assert "卫健委机关党委" in page and "教研第一支部" in page
    assert client.get(_url(world, f"/orgs/{world['health'].id}/edit")).status_code == 403


def test_create_child_generates_a_code_and_refuses_duplicates(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["staff"])
    url = _url(world, f"/orgs/{world['general'].id}/new")
    page = _text(client.get(url))
    assert 'value="branch"' in page and 'value="party_committee"' not in page
    response = client.post(url, data={"kind": "branch", "name": "教研第二支部", "code": "", "sort_order": "2"})
    assert response.status_code == 302
    created = _org(session, world, name="教研第二支部")
    assert created is not None and created.code == "B003" and created.parent_id == world["general"].id
    assert created.path == f"{world['general'].path}{created.id}/"
    response = client.post(url, data={"kind": "branch", "name": "教研第三支部", "code": "G001-1"})
    assert response.status_code == 400
    page = _text(response)
    assert "组织代码 G001-1 已被使用" in page and "教研第三支部" in page
    response = client.post(url, data={"kind": "party_committee", "name": "不该在这里"})
    assert response.status_code == 400 and "不能设在" in _text(response)
    # staff cannot add under the root (outside their subtree): not even visible
    root_id = int(world["party"].path.strip("/").split("/")[0])
    assert client.get(_url(world, f"/orgs/{root_id}/new")).status_code == 404


def test_edit_and_move_with_set_based_paths(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["admin"])
    response = client.post(
        _url(world, f"/orgs/{world['general'].id}/edit"),
        data={
            "kind": "general_branch",
            "name": "教研党总支（新）",
            "code": "",
            "sort_order": "1",
            "version": str(world["general"].version),
        },
    )
    assert response.status_code == 302
    general = _org(session, world, id=world["general"].id)
    assert general is not None and general.name == "教研党总支（新）" and general.code == "G001"

    move_url = _url(world, f"/orgs/{world['general'].id}/move")
    page = _text(client.get(move_url))
    assert "卫健委机关党委" in page and "教研第一支部" not in page  # never under its own subtree
    response = client.post(move_url, data={"parent_id": str(world["inner"].id), "reason": "x"})
    assert response.status_code == 400 and "请选择新的上级组织" in _text(response)
    moving = _org(session, world, id=world["general"].id)
    assert moving is not None
    stale = client.post(
        move_url, data={"parent_id": str(world["health"].id), "reason": "旧页面的原因", "version": moving.version - 1}
    )
    assert stale.status_code == 409 and "已被他人修改" in _text(stale) and "旧页面的原因" in _text(stale)
    response = client.post(
        move_url, data={"parent_id": str(world["health"].id), "reason": "机构改革", "version": moving.version}
    )
    assert response.status_code == 302
    inner = _org(session, world, id=world["inner"].id)
    assert inner is not None
    assert inner.path == f"{world['health'].path}{world['general'].id}/{world['inner'].id}/"
    with tenant_context(world["tenant"].id):
        reason = session.scalar(
            select(AuditEvent.reason).where(
                AuditEvent.action == "org.move", AuditEvent.object_id == str(world["general"].id)
            )
        )
    assert reason == "机构改革"


def test_deactivate_is_refused_with_members_and_works_when_empty(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["admin"])
    url = _url(world, f"/orgs/{world['branch'].id}/deactivate")
    page = _text(client.get(url))
    assert "3 名在册党员" in page
    response = client.post(url, data={"reason": "合并", "version": world["branch"].version})
    assert response.status_code == 400 and "3 名在册党员" in _text(response)
    branch = _org(session, world, id=world["branch"].id)
    assert branch is not None and branch.active

    with tenant_context(world["tenant"].id):
        for member in world["members"]:
            member.status = MemberStatus.TRANSFERRED_OUT
        session.flush()
    branch = _org(session, world, id=world["branch"].id)
    assert branch is not None
    response = client.post(url, data={"reason": "合并", "version": branch.version})
    assert response.status_code == 302
    branch = _org(session, world, id=world["branch"].id)
    assert branch is not None and not branch.active
    assert "第一党支部" not in _text(client.get(_url(world, "/orgs/")))
    assert "第一党支部" in _text(client.get(_url(world, "/orgs/?inactive=1")))
    page = _text(client.get(_url(world, f"/orgs/{world['branch'].id}")))
    assert f'name="version" value="{branch.version}"' in page  # the reactivate button carries it
    stale = client.post(_url(world, f"/orgs/{world['branch'].id}/reactivate"), data={"version": branch.version - 1})
    assert stale.status_code == 409 and "已被他人修改" in _text(stale)
    response = client.post(_url(world, f"/orgs/{world['branch'].id}/reactivate"), data={"version": branch.version})
    assert response.status_code == 302
    branch = _org(session, world, id=world["branch"].id)
    assert branch is not None and branch.active


def test_root_can_be_renamed_not_moved_or_deactivated(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["admin"])
    root_id = int(world["party"].path.strip("/").split("/")[0])
    page = _text(client.get(_url(world, f"/orgs/{root_id}")))
    assert f"/orgs/{root_id}/move" not in page and f"/orgs/{root_id}/deactivate" not in page
    root = _org(session, world, id=root_id)
    assert root is not None
    response = client.post(
        _url(world, f"/orgs/{root_id}/edit"), data={"kind": "committee", "name": "新名称工委", "version": root.version}
    )
    assert response.status_code == 302
    root = _org(session, world, id=root_id)
    assert root is not None and root.name == "新名称工委"
    assert client.get(_url(world, f"/orgs/{root_id}/move")).status_code == 302
    response = client.post(_url(world, f"/orgs/{root_id}/deactivate"), data={"reason": "x", "version": root.version})
    assert response.status_code == 400 and "不能停用" in _text(response)


def test_a_party_committees_own_staff_rename_it_and_nothing_above_or_beside(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    """Staff scoped to a 机关党委 edit that 机关党委 itself (its name is theirs to keep right), through the
    same versioned form; the root and another 机关党委 stay out of reach."""
    login(world["tenant"], world["staff"])
    party_id = world["party"].id
    page = _text(client.get(_url(world, f"/orgs/{party_id}")))
    assert f"/orgs/{party_id}/edit" in page
    form = _text(client.get(_url(world, f"/orgs/{party_id}/edit")))
    assert 'name="version"' in form
    data = {
        "kind": "party_committee",
        "name": "财政局机关党委（更名）",
        "code": "P001",
        "sort_order": "0",
        "version": str(world["party"].version),
    }
    response = client.post(_url(world, f"/orgs/{party_id}/edit"), data=data)
    assert response.status_code == 302, _text(response)[:2000]
    party = _org(session, world, id=party_id)
    assert party is not None and party.name == "财政局机关党委（更名）"
    with tenant_context(world["tenant"].id):
        event = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "org.update", AuditEvent.object_id == str(party_id))
        )
    assert event is not None and event.after["name"] == "财政局机关党委（更名）"
    root_id = int(party.path.strip("/").split("/")[0])
    for other in (root_id, world["health"].id):
        assert client.post(_url(world, f"/orgs/{other}/edit"), data={**data, "name": "不该改"}).status_code in (
            403,
            404,
        )
