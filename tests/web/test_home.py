"""A tenant's home: a people search, a secretary's own branch, and the link to the organisation tree, which
has its own page (the work list itself: test_home_worklist.py)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from fivestar.enums import OrgKind, Position, Role


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def test_the_tree_with_counts_is_one_tap_from_the_home_page_which_keeps_a_search_box(
    client: FlaskClient, login: Any, two_tenants: dict[str, Any]
) -> None:
    a = two_tenants["a"]
    login(a["tenant"], a["admin"])
    home = _text(client.get("/t/district-a/"))
    assert 'href="/t/district-a/orgs/"' in home and f'href="/t/district-a/orgs/{a["party"].id}"' not in home
    assert 'action="/t/district-a/people/"' in home and 'name="q"' in home
    assert "本支部党员" not in home  # an administrator has no branch of their own
    page = _text(client.get("/t/district-a/orgs/"))
    assert f'href="/t/district-a/orgs/{a["party"].id}"' in page
    assert f'href="/t/district-a/orgs/{a["branch"].id}"' in page
    assert "3 名党员" in page and "0 名党员" in page  # the branch and the retirees' branch


def test_secretary_sees_their_branch_members_on_the_home_page(
    client: FlaskClient, login: Any, two_tenants: dict[str, Any], create_member: Any
) -> None:
    a = two_tenants["a"]
    create_member(a["tenant"], a["retirees"], name="退休老王")
    create_member(a["tenant"], a["branch"], name="组织委员小李", position=Position.COMMITTEE_MEMBER)
    login(a["tenant"], a["secretary"])
    page = _text(client.get("/t/district-a/"))
    assert "本支部党员" in page and "4 名在册党员" in page
    # labels of equal-valued enums stay apart: 支委 (position) is not 工委委员 (role), 在册 not 正常
    assert ">支委<" in page and "工委委员" not in page
    assert ">在册<" in page and ">正常<" not in page
    for member in a["members"]:
        assert f'href="/t/district-a/people/{member.id}"' in page and member.name in page
    assert "退休老王" not in page
    tree = _text(client.get("/t/district-a/orgs/"))
    assert "第一党支部" in tree and "财政局机关党委" not in tree  # the tree shows only what the secretary may see


def test_member_without_roles_over_a_branch_sees_their_own_branch(
    client: FlaskClient,
    login: Any,
    two_tenants: dict[str, Any],
    create_org: Any,
    create_member: Any,
    create_account: Any,
) -> None:
    a = two_tenants["a"]
    other = create_org(a["tenant"], OrgKind.BRANCH, parent=a["party"], name="第三党支部", code="B003")
    me = create_member(a["tenant"], other, name="普通党员甲")
    colleague = create_member(a["tenant"], other, name="同支部党员乙")
    account = create_account(a["tenant"], roles=[(Role.MEMBER, None)], member=me, username="putong")
    login(a["tenant"], account)
    page = _text(client.get("/t/district-a/"))
    assert "普通党员甲" in page and "同支部党员乙" in page and colleague.member_no in page
    assert "张1" not in page


def test_home_needs_login_and_shows_no_other_district(
    client: FlaskClient, login: Any, two_tenants: dict[str, Any]
) -> None:
    response = client.get("/t/district-a/")
    assert response.status_code == 302 and "/t/district-a/login" in response.headers["Location"]
    b = two_tenants["b"]
    login(two_tenants["a"]["tenant"], two_tenants["a"]["admin"])
    for path in ("/t/district-a/", "/t/district-a/orgs/"):
        page = _text(client.get(path))
        assert f'/orgs/{b["branch"].id}"' not in page and f'/orgs/{b["party"].id}"' not in page
