"""Member pages through the Flask test client: search, scope by role, forms, conflicts, query counts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import MemberStatus, OrgKind, Position, Role, Standing
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context
from tests.support import count_queries


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}{path}"


def _stored(session: Session, world: dict[str, Any], member_id: int) -> Member:
    """The member as the database has it now (the app wrote through another session)."""
    session.expire_all()
    with tenant_context(world["tenant"].id):
        member = session.scalar(select(Member).where(Member.id == member_id))
    assert member is not None
    return member


def _member_form(member: Member, **changes: Any) -> dict[str, Any]:
    data = {
        "name": member.name,
        "gender": member.gender.value,
        "member_no": member.member_no,
        "phone": member.phone or "",
        "joined_on": member.joined_on.isoformat() if member.joined_on else "",
        "standing": member.standing.value,
        "position": member.position.value,
        "note": member.note or "",
        "version": str(member.version),
    }
    data.update(changes)
    return data



@pytest.fixture
def world(two_tenants: dict[str, Any], create_org: Any, create_member: Any, create_account: Any) -> dict[str, Any]:
    """District A with a second branch, a transferred-out member and accounts for every role."""
    a = dict(two_tenants["a"])
    tenant = a["tenant"]
    a["other"] = create_org(tenant, OrgKind.BRANCH, parent=a["party"], name="第二党支部", code="B003")
    a["other_members"] = [
        create_member(
            tenant, a["other"], name="李雷", member_no="L001", phone="13911112222", position=Position.SECRETARY
        ),
        create_member(tenant, a["other"], name="韩梅梅", member_no="L002", standing=Standing.PROBATIONARY),
    ]
    a["gone"] = create_member(
        tenant, a["branch"], name="王离开", member_no="G001", status=MemberStatus.TRANSFERRED_OUT
    )
    a["staff"] = create_account(tenant, roles=[(Role.ORG_STAFF, a["party"])], username="staff")
    a["committee"] = create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan")
    a["inspector"] = create_account(tenant, roles=[(Role.INSPECTOR, None)], username="ducha")
    a["plain"] = create_account(tenant, roles=[(Role.MEMBER, None)], member=a["other_members"][1], username="dangyuan")
    return a


# --- search -------------------------------------------------------------------------------------


def test_search_by_name_number_and_phone_fragment(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["admin"])
    page = _text(client.get(_url(world, "/people/?q=李")))
    assert "李雷" in page and "张1" not in page
    page = _text(client.get(_url(world, "/people/?q=no00")))  # member numbers, case-insensitive
    assert "张1" in page and "张3" in page and "李雷" not in page
    page = _text(client.get(_url(world, "/people/?q=1111222")))
    assert "李雷" in page and "韩梅梅" not in page
    page = _text(client.get(_url(world, "/people/?q=%25")))  # a LIKE wildcard is searched literally
    assert "没有符合条件的党员" in page


def test_filters_by_subtree_standing_position_and_status(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["admin"])
    page = _text(client.get(_url(world, f"/people/?org={world['other'].id}")))
    assert "李雷" in page and "韩梅梅" in page and "张1" not in page
    page = _text(client.get(_url(world, f"/people/?org={world['party'].id}")))
    assert "李雷" in page and "张1" in page
    page = _text(client.get(_url(world, "/people/?standing=probationary")))
    assert "韩梅梅" in page and "李雷" not in page
    page = _text(client.get(_url(world, "/people/?position=secretary")))
    assert "李雷" in page and "韩梅梅" not in page
    page = _text(client.get(_url(world, "/people/")))
    assert "王离开" not in page  # active members by default
    page = _text(client.get(_url(world, "/people/?status=transferred_out")))
    assert "王离开" in page and "张1" not in page
    page = _text(client.get(_url(world, "/people/?status=all")))
    assert "王离开" in page and "张1" in page
    # nonsense filter values are ignored, never a 500
    response = client.get(_url(world, "/people/?org=x&standing=zz&position=1&status=?&page=-3"))
    assert response.status_code == 200


def test_pagination(client: FlaskClient, login: Any, world: dict[str, Any], create_member: Any) -> None:
    for number in range(40):
        create_member(world["tenant"], world["other"], name=f"翻页{number:02d}", member_no=f"P{number:03d}")
    login(world["tenant"], world["admin"])
    first = _text(client.get(_url(world, f"/people/?org={world['other'].id}")))
    assert "第 1 / 2 页" in first and "共 42 人" in first
    next_link = re.search(r'href="([^"]+)" rel="next"|rel="next" href="([^"]+)"', first)
    assert next_link is not None
    second = _text(client.get((next_link.group(1) or next_link.group(2)).replace("&amp;", "&")))
    assert "第 2 / 2 页" in second
    shown_first = set(re.findall(r"翻页\d\d", first))
    shown_second = set(re.findall(r"翻页\d\d", second))
    assert shown_first and shown_second and not shown_first & shown_second
    assert len(shown_first | shown_second) == 40
    beyond = _text(client.get(_url(world, f"/people/?org={world['other'].id}&page=99")))
    assert "第 2 / 2 页" in beyond


@pytest.mark.parametrize("account", ["admin", "secretary"])
def test_search_runs_a_fixed_number_of_queries(
    client: FlaskClient,
    login: Any,
    world: dict[str, Any],
    create_member: Any,
    engine: Engine,
    account: str,
) -> None:
    login(world["tenant"], world[account])
    branch = world["branch"]

    def queries_for_page() -> int:
        with count_queries(engine) as statements:
            response = client.get(_url(world, "/people/?status=all"))
        assert response.status_code == 200
        return len(statements)

    # the branch holds 3 active members and 1 transferred out (see `world`)
    create_member(world["tenant"], branch)
    small = queries_for_page()  # 5 members
    for _ in range(55):
        create_member(world["tenant"], branch)
    large = queries_for_page()  # 60 members: two pages
    assert large == small, (small, large)
    assert small <= 15


def test_member_detail_and_org_pages_run_fixed_queries(
    client: FlaskClient, login: Any, world: dict[str, Any], create_member: Any, engine: Engine
) -> None:
    login(world["tenant"], world["admin"])
    paths = [
        f"/orgs/{world['branch'].id}",
        f"/orgs/{world['party'].id}",
        "/orgs/",
        "/",
    ]

    def counts() -> list[int]:
        result = []
        for path in paths:
            with count_queries(engine) as statements:
                assert client.get(_url(world, path)).status_code == 200
            result.append(len(statements))
        return result

    small = counts()
    for _ in range(30):
        create_member(world["tenant"], world["branch"])
    assert counts() == small


# --- who sees what ------------------------------------------------------------------------------


def test_secretary_sees_and_edits_only_their_branch(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["secretary"])
    page = _text(client.get(_url(world, "/people/")))
    assert "张2" in page and "李雷" not in page
    other = world["other_members"][0]
    assert client.get(_url(world, f"/people/{other.id}")).status_code == 404
    assert client.get(_url(world, f"/people/{other.id}/edit")).status_code == 404
    own = world["members"][1]
    assert client.get(_url(world, f"/people/{own.id}")).status_code == 200
    response = client.post(_url(world, f"/people/{own.id}/edit"), data=_member_form(own, phone="13700000000"))
    assert response.status_code == 302
    assert client.get(_url(world, f"/people/{own.id}/move")).status_code == 403  # moving is for org staff
    assert client.get(_url(world, f"/people/{own.id}/deactivate")).status_code == 200
    # the branch filter offers only their branch; a foreign org id in the query shows nothing more
    page = _text(client.get(_url(world, f"/people/?org={world['other'].id}")))
    assert "李雷" not in page


def test_committee_member_and_inspector_read_everything_but_change_nothing(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    member = world["members"][0]
    for key in ("committee", "inspector"):
        login(world["tenant"], world[key])
        page = _text(client.get(_url(world, "/people/")))
        assert "张1" in page and "李雷" in page
        assert client.get(_url(world, f"/people/{member.id}")).status_code == 200
        assert client.get(_url(world, f"/people/{member.id}/edit")).status_code == 403
        assert client.post(_url(world, f"/people/{member.id}/edit"), data=_member_form(member)).status_code == 403
        assert client.get(_url(world, "/people/new")).status_code == 403
        client.post(_url(world, "/logout"))


def test_plain_member_sees_their_branch(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["plain"])
    page = _text(client.get(_url(world, "/people/")))
    assert "李雷" in page and "张1" not in page
    assert client.get(_url(world, f"/people/{world['members'][0].id}")).status_code == 404
    assert client.get(_url(world, f"/people/{world['other_members'][0].id}/edit")).status_code == 403


def test_plain_member_sees_no_fellow_members_phone_numbers(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["plain"])
    fellow = world["other_members"][0]  # 李雷, 13911112222, same branch as the member
    assert "13911112222" not in _text(client.get(_url(world, "/people/")))
    assert "13911112222" not in _text(client.get(_url(world, f"/people/{fellow.id}")))
    # Nor can the number be found by searching for it.
    assert "李雷" not in _text(client.get(_url(world, "/people/?q=1111222")))
    own = world["other_members"][1]
    assert own.phone and own.phone in _text(client.get(_url(world, f"/people/{own.id}")))
    assert "韩梅梅" in _text(client.get(_url(world, f"/people/?q={own.phone[-6:]}")))


def test_secretary_sees_and_searches_phone_numbers_of_the_branch(
    client: FlaskClient, login: Any, world: dict[str, Any], create_account: Any
) -> None:
    secretary = create_account(world["tenant"], roles=[(Role.BRANCH_SECRETARY, world["other"])], username="shuji2")
    login(world["tenant"], secretary)
    assert "13911112222" in _text(client.get(_url(world, "/people/")))
    assert "李雷" in _text(client.get(_url(world, "/people/?q=1111222")))


def test_org_staff_moves_members_within_their_subtree(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["staff"])
    member = world["members"][2]
    page = _text(client.get(_url(world, f"/people/{member.id}/move")))
    assert "第二党支部" in page
    response = client.post(
        _url(world, f"/people/{member.id}/move"),
        data={"branch_id": str(world["other"].id), "reason": "", "version": str(member.version)},
    )
    assert response.status_code == 400 and "调整支部须填写原因" in _text(response)
    response = client.post(
        _url(world, f"/people/{member.id}/move"),
        data={"branch_id": str(world["other"].id), "reason": "岗位调整", "version": str(member.version)},
    )
    assert response.status_code == 302
    assert _stored(session, world, member.id).branch_id == world["other"].id


# --- forms --------------------------------------------------------------------------------------


def test_create_member_keeps_input_on_error_and_saves(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["admin"])
    page = _text(client.get(_url(world, f"/people/new?branch={world['other'].id}")))
    assert f'<option selected value="{world["other"].id}"' in page or f'value="{world["other"].id}" selected' in page
    data = {
        "branch_id": str(world["other"].id),
        "name": "赵六",
        "gender": "male",
        "member_no": "NO001",  # taken in this district
        "phone": "13655556666",
        "joined_on": "2015-07-01",
        "standing": "full",
        "position": "member",
        "note": "从外区转入",
    }
    response = client.post(_url(world, "/people/new"), data=data)
    assert response.status_code == 400
    page = _text(response)
    assert "党员编号 NO001 已被其他党员使用" in page and "赵六" in page and "从外区转入" in page
    response = client.post(_url(world, "/people/new"), data={**data, "member_no": "NO900"})
    assert response.status_code == 302
    with tenant_context(world["tenant"].id):
        created = session.scalar(select(Member).where(Member.member_no == "NO900"))
    assert created is not None and created.branch_id == world["other"].id and created.note == "从外区转入"
    # a branch of the form that is not offered (a party committee) is refused on its field
    response = client.post(
        _url(world, "/people/new"), data={**data, "member_no": "NO901", "branch_id": str(world["party"].id)}
    )
    assert response.status_code == 400 and "请选择所在支部" in _text(response)


def test_stale_edit_is_a_409_that_keeps_the_users_input(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["admin"])
    member = world["members"][1]
    opened = _member_form(member)
    assert client.post(_url(world, f"/people/{member.id}/edit"), data={**opened, "name": "先保存的"}).status_code == 302
    response = client.post(
        _url(world, f"/people/{member.id}/edit"), data={**opened, "name": "后保存的", "note": "我的备注"}
    )
    assert response.status_code == 409
    page = _text(response)
    assert "已被他人修改" in page and "后保存的" in page and "我的备注" in page and "先保存的" in page
    stored = _stored(session, world, member.id)
    assert stored.name == "先保存的"
    # the page now carries the current version: saving again is a deliberate overwrite
    hidden = re.search(r'<input[^>]*name="version"[^>]*>', page)
    assert hidden is not None
    version = re.search(r'value="(\d+)"', hidden.group(0))
    assert version is not None
    new_version = version.group(1)
    assert int(new_version) == stored.version
    response = client.post(
        _url(world, f"/people/{member.id}/edit"), data={**opened, "name": "后保存的", "version": new_version}
    )
    assert response.status_code == 302
    assert _stored(session, world, member.id).name == "后保存的"
    # a post without the version it was based on is treated as stale, never as a blind overwrite
    response = client.post(
        _url(world, f"/people/{member.id}/edit"), data={**opened, "name": "无版本", "version": ""}
    )
    assert response.status_code == 409
    assert _stored(session, world, member.id).name == "后保存的"


def test_transfer_out_and_reactivate_pages(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["admin"])
    member = world["members"][2]
    url = _url(world, f"/people/{member.id}/deactivate")
    response = client.post(url, data={"left_on": "2099-01-01", "reason": "调离", "version": str(member.version)})
    assert response.status_code == 400 and "日期不在合理范围内" in _text(response)
    response = client.post(url, data={"left_on": "2024-05-06", "reason": "调往外区", "version": str(member.version)})
    assert response.status_code == 302
    stored = _stored(session, world, member.id)
    assert stored.status is MemberStatus.TRANSFERRED_OUT
    page = _text(client.get(_url(world, f"/people/{member.id}")))
    assert "已转出" in page and "调往外区" in page  # the history shows the reason to an admin
    response = client.post(
        _url(world, f"/people/{member.id}/reactivate"),
        data={"branch_id": str(world["branch"].id), "reason": "转回", "version": str(stored.version)},
    )
    assert response.status_code == 302
    assert _stored(session, world, member.id).status is MemberStatus.ACTIVE
    events = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_type == "members", AuditEvent.object_id == str(member.id))
    ).all()
    assert "member.transfer_out" in events and "member.reactivate" in events


def test_forms_carry_csrf(client: FlaskClient, login: Any, world: dict[str, Any], csrf_enabled: None) -> None:
    login_page = _text(client.get(_url(world, "/login")))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
    assert token is not None
    client.post(
        _url(world, "/login"),
        data={"username": "admin", "password": "correct-horse-battery", "csrf_token": token.group(1)},
    )
    member = world["members"][0]
    page = _text(client.get(_url(world, f"/people/{member.id}/edit")))
    assert 'name="csrf_token"' in page
    response = client.post(_url(world, f"/people/{member.id}/edit"), data=_member_form(member, name="无令牌"))
    assert response.status_code == 400
