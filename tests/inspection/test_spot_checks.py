"""Spot checks (随机抽查): a documented, seeded draw that anyone can repeat; recorded and audited."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ServiceError
from fivestar.inspection import services
from fivestar.inspection.models import SpotCheck
from fivestar.tenancy import tenant_context
from tests.inspection.conftest import url


def test_draw_follows_the_documented_algorithm() -> None:
    population = [17, 3, 250, 41, 8, 99, 120]
    seed = "a1b2c3"
    by_hand = sorted(population, key=lambda i: (hashlib.sha256(f"{seed}:branch:{i}".encode()).hexdigest(), i))[:3]
    assert services.draw(seed, "branch", population, 3) == by_hand
    # The order the database returns the population in does not matter; the seed does.
    assert services.draw(seed, "branch", list(reversed(population)), 3) == by_hand
    assert services.draw("other", "branch", population, 7) != services.draw(seed, "branch", population, 7)
    assert services.draw(seed, "branch", population, 0) == []


def _draw(session: Session, world: dict[str, Any], **kw: Any) -> SpotCheck:
    with tenant_context(world["tenant"].id):
        check = services.draw_spot_check(session, **kw)
        session.flush()
        return check


def test_a_draw_is_stored_audited_and_repeatable(session: Session, world: dict[str, Any], member_round: Any) -> None:
    check = _draw(session, world, round_kind="member", round_id=member_round.id, branches="2", members="4")
    assert len(check.seed) == 16 and check.branch_population == 3 and check.member_population == 9
    assert len(check.branch_ids) == 2 and len(set(check.member_ids)) == 4
    again = _draw(session, world, round_kind="member", round_id=member_round.id, branches=2, members=4, seed=check.seed)
    assert (again.branch_ids, again.member_ids) == (check.branch_ids, check.member_ids)
    with tenant_context(world["tenant"].id):
        assert services.repeat(session, check)[2] is True
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "spot_check.draw", AuditEvent.tenant_id == world["tenant"].id)
    ).all()
    assert {e.object_id for e in events} == {str(check.id), str(again.id)}
    assert events[0].after is not None and events[0].after["seed"] == check.seed


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"branches": "4", "members": "0"}, "branches"),
        ({"branches": "0", "members": "10"}, "members"),
        ({"branches": "0", "members": "0"}, "branches"),
        ({"branches": "-1", "members": "1"}, "branches"),
        ({"branches": "x", "members": "1"}, "branches"),
        ({"branches": "1", "members": "1", "seed": "含中文"}, "seed"),
    ],
)
def test_bad_draws_are_refused_on_their_field(
    session: Session, world: dict[str, Any], member_round: Any, kw: dict[str, Any], field: str
) -> None:
    with pytest.raises(ServiceError) as info:
        _draw(session, world, round_kind="member", round_id=member_round.id, **kw)
    assert info.value.field == field
    with tenant_context(world["tenant"].id):
        assert session.scalar(select(SpotCheck.id)) is None


def test_branch_rounds_draw_branches_only(session: Session, world: dict[str, Any], branch_round: Any) -> None:
    with pytest.raises(ServiceError) as info:
        _draw(session, world, round_kind="branch", round_id=branch_round.id, branches=1, members=1)
    assert info.value.field == "members"
    check = _draw(session, world, round_kind="branch", round_id=branch_round.id, branches=3, members=0)
    assert sorted(check.branch_ids) == sorted([world["one"].id, world["two"].id, world["three"].id])


def test_the_page_draws_and_links_each_branch_and_member(
    client: Any, login: Any, world: dict[str, Any], member_round: Any
) -> None:
    login(world["tenant"], world["inspector"])
    response = client.post(
        url(world, "/inspection/spot-checks"),
        data={"round": f"m{member_round.id}", "branches": "2", "members": "3", "seed": "seed-42"},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "seed-42" in html and "结果一致" in html
    branch_links = re.findall(r'href="([^"]*/inspection/round-branches/\d+)"', html)
    member_links = re.findall(r'href="([^"]*/inspection/evaluations/\d+)"', html)
    assert len(branch_links) == 2 and len(member_links) == 3
    for link in branch_links + member_links:
        assert client.get(link).status_code == 200, link
    # The same seed draws the same again, from the page too.
    again = client.post(
        url(world, "/inspection/spot-checks"),
        data={"round": f"m{member_round.id}", "branches": "2", "members": "3", "seed": "seed-42"},
    )
    second = client.get(again.headers["Location"]).get_data(as_text=True)
    assert re.findall(r"/inspection/(?:round-branches|evaluations)/\d+", second) == re.findall(
        r"/inspection/(?:round-branches|evaluations)/\d+", html
    )
    assert "SHA-256" in client.get(url(world, "/inspection/spot-checks")).get_data(as_text=True)


def test_a_branch_round_draw_links_the_dossiers(
    client: Any, login: Any, world: dict[str, Any], branch_round: Any
) -> None:
    login(world["tenant"], world["inspector"])
    response = client.post(
        url(world, "/inspection/spot-checks"), data={"round": f"b{branch_round.id}", "branches": "2", "members": "0"}
    )
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    dossiers = re.findall(r'href="([^"]*/branch-rating/dossier/\d+)"', html)
    assert len(dossiers) == 2
    assert all(client.get(link).status_code == 200 for link in dossiers)


def test_bad_form_input_keeps_what_was_typed(
    client: Any, login: Any, world: dict[str, Any], member_round: Any
) -> None:
    login(world["tenant"], world["inspector"])
    response = client.post(
        url(world, "/inspection/spot-checks"), data={"round": f"m{member_round.id}", "branches": "50", "members": "1"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "不能抽查 50 个" in html and 'value="50"' in html
    forged = client.post(
        url(world, "/inspection/spot-checks"), data={"round": "m999999", "branches": "1", "members": "0"}
    )
    assert forged.status_code == 400


def test_the_tenant_wall_and_who_may_draw(
    session: Session, client: Any, login: Any, world: dict[str, Any], member_round: Any, two_tenants: dict[str, Any]
) -> None:
    other = two_tenants["a"]
    from fivestar.member_rounds.opening import open_round

    with tenant_context(other["tenant"].id):
        foreign_round = open_round(session, other["tenant"]).round
        foreign = services.draw_spot_check(
            session, round_kind="member", round_id=foreign_round.id, branches=1, members=1
        )
        session.flush()
    mine = _draw(session, world, round_kind="member", round_id=member_round.id, branches=1, members=1)
    login(world["tenant"], world["inspector"])
    assert client.get(url(world, f"/inspection/spot-checks/{mine.id}")).status_code == 200
    assert client.get(url(world, f"/inspection/spot-checks/{foreign.id}")).status_code == 404
    # Another district's round cannot be drawn from here either.
    refused = client.post(
        url(world, "/inspection/spot-checks"), data={"round": f"m{foreign_round.id}", "branches": "1", "members": "0"}
    )
    assert refused.status_code == 400
    client.post(url(world, "/logout"))
    login(world["tenant"], world["secretary"])
    assert client.get(url(world, f"/inspection/spot-checks/{mine.id}")).status_code == 403
    assert client.post(
        url(world, "/inspection/spot-checks"), data={"round": f"m{member_round.id}", "branches": "1", "members": "0"}
    ).status_code == 403


def test_a_draws_page_runs_a_fixed_number_of_queries(
    session: Session, client: Any, login: Any, world: dict[str, Any], member_round: Any, engine: Any
) -> None:
    from tests.inspection.conftest import count_queries

    small = _draw(session, world, round_kind="member", round_id=member_round.id, branches=1, members=1)
    large = _draw(session, world, round_kind="member", round_id=member_round.id, branches=3, members=9)
    login(world["tenant"], world["inspector"])
    count_queries(engine, client, url(world, f"/inspection/spot-checks/{small.id}"))  # rules and caches warm
    assert count_queries(engine, client, url(world, f"/inspection/spot-checks/{small.id}")) == count_queries(
        engine, client, url(world, f"/inspection/spot-checks/{large.id}")
    )
