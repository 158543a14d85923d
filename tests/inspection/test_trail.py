"""The audit trail page: filters, keyset pages, readable diffs, who may read it and the tenant wall."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from fivestar.inspection import trail
from tests.inspection.conftest import add_event, evaluation_of, url

UTC = dt.UTC


def _ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="event-(\d+)"', html)]


@pytest.fixture
def events(session: Session, world: dict[str, Any], member_round: Any) -> dict[str, Any]:
    """A handful of events about different things, by different people, on different days."""
    t = world["tenant"]
    one_member = world["members"]["one"][1]
    three_member = world["members"]["three"][0]
    evaluation = evaluation_of(session, world, member_round, one_member)
    made = {
        "member_update": add_event(
            session, t, "member.update", "members", one_member.id, at=dt.datetime(2026, 3, 1, 2, tzinfo=UTC),
            actor=world["secretary"], before={"name": "甲", "phone": "1"}, after={"name": "乙", "phone": "1"},
            reason="改名",
        ),
        "joint": add_event(
            session, t, "evaluation.joint", "member_evaluations", evaluation.id,
            at=dt.datetime(2026, 4, 10, 2, tzinfo=UTC), actor=world["secretary"],
            before={"scores": {"a": "1"}}, after={"scores": {"a": "2"}},
        ),
        "org_three": add_event(
            session, t, "org.update", "organisations", world["three"].id,
            at=dt.datetime(2026, 4, 11, 2, tzinfo=UTC), actor=world["admin"], after={"name": "第三党支部"},
        ),
        "member_three": add_event(
            session, t, "member.update", "members", three_member.id, at=dt.datetime(2026, 4, 12, 2, tzinfo=UTC),
            actor=world["admin"],
        ),
        "round": add_event(
            session, t, "member_round.extend_deadline", "member_rounds", member_round.id,
            at=dt.datetime(2026, 4, 13, 2, tzinfo=UTC), actor=world["admin"],
        ),
    }
    return made


def _get(client: Any, world: dict[str, Any], login: Any, query: str = "", who: str = "inspector") -> Any:
    login(world["tenant"], world[who])
    return client.get(url(world, f"/inspection/audit{query}"))


def test_trail_shows_who_when_what_reason_and_diff(client: Any, login: Any, world: dict[str, Any], events: Any) -> None:
    response = _get(client, world, login, "?family=member")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _ids(html) == [events["member_three"].id, events["member_update"].id]
    assert "修改党员信息" in html and "改名" in html
    # The time in the district's zone (Asia/Shanghai): 02:00 UTC is 10:00 there.
    assert "2026-03-01 10:00" in html
    # Only the changed field is listed on the trail, highlighted; the unchanged phone is not.
    entry = html.split(f'id="event-{events["member_update"].id}"')[1].split("</li>")[0]
    assert 'class="changed"' in entry and "甲" in entry and "乙" in entry and "phone" not in entry


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?actor=account:{admin}", ["round", "member_three", "org_three"]),
        ("?member=ONE002", ["joint", "member_update"]),
        ("?member=one2", ["joint", "member_update"]),
        ("?org={party}", ["joint", "member_update"]),
        ("?org={other_party}", ["member_three", "org_three"]),
        ("?round=m{round}&date_to=2026-04-30", ["round", "joint"]),
        ("?family=evaluation", ["joint"]),
        ("?date_from=2026-04-11&date_to=2026-04-12", ["member_three", "org_three"]),
        ("?org={other_party}&family=org", ["org_three"]),
    ],
)
def test_filters(
    client: Any, login: Any, world: dict[str, Any], member_round: Any, events: Any, query: str, expected: list[str]
) -> None:
    query = query.format(
        admin=world["admin"].id, party=world["party"].id, other_party=world["other_party"].id, round=member_round.id
    )
    response = _get(client, world, login, query)
    assert response.status_code == 200
    assert _ids(response.get_data(as_text=True)) == [events[key].id for key in expected]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?date_from=2026-13-01", "日期格式应为"),
        ("?date_from=2026-04-12&date_to=2026-04-11", "截止日期不能早于起始日期"),
        ("?member=nobody", "没有找到该党员"),
        ("?org=999999", "请从列表中选择"),
        ("?family=nothing", "请从列表中选择"),
        ("?after=garbage", "筛选条件有误"),
    ],
)
def test_bad_filters_answer_400_with_a_message(
    client: Any, login: Any, world: dict[str, Any], events: Any, query: str, message: str
) -> None:
    response = _get(client, world, login, query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_keyset_pages_walk_every_event_once_newest_first(
    session: Session, client: Any, login: Any, world: dict[str, Any]
) -> None:
    start = dt.datetime(2026, 5, 1, tzinfo=UTC)
    made = [
        add_event(session, world["tenant"], "org.update", "organisations", world["one"].id,
                  at=start + dt.timedelta(minutes=i // 2))  # pairs share a time: the id breaks the tie
        for i in range(trail.PAGE_SIZE * 2 + 3)
    ]
    login(world["tenant"], world["inspector"])
    seen: list[int] = []
    path = url(world, "/inspection/audit?family=org&date_from=2026-05-01&date_to=2026-05-02")
    pages = 0
    while path:
        html = client.get(path).get_data(as_text=True)
        seen += _ids(html)
        pages += 1
        found = re.search(r'href="([^"]+)">更早的记录', html)
        path = found.group(1).replace("&amp;", "&") if found else ""
    expected = sorted(made, key=lambda e: (e.occurred_at, e.id), reverse=True)
    assert seen == [e.id for e in expected]
    assert pages == 3


def test_query_count_does_not_grow_with_the_page(
    session: Session, client: Any, login: Any, world: dict[str, Any], member_round: Any, engine: Any
) -> None:
    login(world["tenant"], world["inspector"])

    def count(path: str) -> int:
        statements: list[str] = []

        def listen(*args: Any) -> None:
            statements.append(args[2])

        sa_event.listen(engine, "before_cursor_execute", listen)
        try:
            assert client.get(url(world, path)).status_code == 200
        finally:
            sa_event.remove(engine, "before_cursor_execute", listen)
        return len(statements)

    add_event(session, world["tenant"], "org.update", "organisations", world["one"].id)
    few = count("/inspection/audit")
    for key in ("one", "two", "three"):
        for member in world["members"][key]:
            evaluation = evaluation_of(session, world, member_round, member)
            add_event(session, world["tenant"], "member.update", "members", member.id)
            add_event(session, world["tenant"], "evaluation.joint", "member_evaluations", evaluation.id)
    add_event(session, world["tenant"], "member_round.score", "member_rounds", member_round.id)
    many = count("/inspection/audit")
    assert many == few


def test_event_page_and_the_tenant_wall(
    client: Any, login: Any, world: dict[str, Any], events: Any, two_tenants: dict[str, Any], session: Session
) -> None:
    other = two_tenants["a"]
    foreign = add_event(session, other["tenant"], "org.update", "organisations", other["branch"].id,
                        actor=other["admin"], before={"name": "x"}, after={"name": "y"})
    login(world["tenant"], world["inspector"])
    page = client.get(url(world, f"/inspection/audit/{events['member_update'].id}"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "改名" in html and "修改前后" in html and "phone" in html  # the full diff, unchanged fields too
    assert client.get(url(world, f"/inspection/audit/{foreign.id}")).status_code == 404
    listing = client.get(url(world, "/inspection/audit")).get_data(as_text=True)
    assert foreign.id not in _ids(listing)


@pytest.mark.parametrize("who", ["secretary", "member"])
def test_members_and_secretaries_may_not_read(
    client: Any, login: Any, world: dict[str, Any], events: Any, who: str
) -> None:
    login(world["tenant"], world[who])
    for path in ("/inspection/", "/inspection/audit", f"/inspection/audit/{events['joint'].id}",
                 "/inspection/spot-checks", "/inspection/anomalies"):
        assert client.get(url(world, path)).status_code == 403, path


@pytest.mark.parametrize("who", ["inspector", "committee", "admin"])
def test_readers_reach_the_pages_from_the_menu_and_home(
    client: Any, login: Any, world: dict[str, Any], events: Any, who: str
) -> None:
    login(world["tenant"], world[who])
    home = client.get(url(world, "/")).get_data(as_text=True)
    assert url(world, "/inspection/") in home  # the menu
    for path in ("/inspection/audit", "/inspection/spot-checks", "/inspection/anomalies"):
        assert url(world, path) in home  # the home page's 督查 card
        assert client.get(url(world, path)).status_code == 200
