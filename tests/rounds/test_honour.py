"""光荣榜: five-star members of branches whose results are final, per tenant and per branch."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind, Role
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.honour import honour_roll, member_ratings, period_label, rounds_for_honour
from fivestar.member_rounds.models import BranchStep, Evaluation, RoundBranch, RoundState
from fivestar.member_rounds.opening import open_round
from fivestar.paths import static_dir
from fivestar.tenancy import tenant_context


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def rate(session: Session, w: dict[str, Any], levels: dict[Any, int | None]) -> None:
    """Give members levels as the branch review would (scoring is another part's work)."""
    with tenant_context(w["tenant"].id):
        evaluations = session.scalars(select(Evaluation).where(Evaluation.round_id == w["round"].id))
        by_member = {e.member_id: e for e in evaluations}
        for member, level in levels.items():
            evaluation = by_member[member.id]
            evaluation.level = level
            evaluation.rated = level is not None
            evaluation.total = Decimal(60 + 8 * level) if level is not None else None
            if level is None:
                evaluation.disqualifier = "unpaid_dues"
        session.flush()


def set_step(session: Session, w: dict[str, Any], branch: Any, step: BranchStep) -> RoundBranch:
    with tenant_context(w["tenant"].id):
        round_branch = session.scalar(select(RoundBranch).where(RoundBranch.branch_id == branch.id))
        assert round_branch is not None
        with seeding():
            round_branch.step = step
        if step is BranchStep.FINALISED:
            round_branch.finalised_at = w["round"].opened_at + dt.timedelta(days=20)
        session.flush()
        return round_branch


@pytest.fixture
def world(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one finalised (赵书记 and 孙党员 five stars, 钱支委 four); branch two still in review
    with 李1 at five stars (not to be shown yet)."""
    w = dict(opened)
    ones, twos = w["ones"], w["twos"]
    rate(session, w, {ones[0]: 5, ones[1]: 4, ones[2]: 5, twos[0]: 5, twos[1]: 3, twos[2]: None})
    w["rb_one"] = set_step(session, w, w["one"], BranchStep.FINALISED)
    w["rb_two"] = set_step(session, w, w["two"], BranchStep.REVIEW)
    w["base"] = f"/t/{w['tenant'].slug}"
    return w


def test_the_tenant_roll_shows_only_finalised_branches(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["member"])
    response = client.get(f"{world['base']}/rounds/honour/round/{world['round'].id}")
    page = _text(response)
    assert response.status_code == 200
    assert "五星党员光荣榜" in page and "2026年第一季度" in page and world["tenant"].name in page
    assert "赵书记" in page and "孙党员" in page
    assert "钱支委" not in page  # four stars
    assert "李1" not in page and "第二党支部" not in page  # branch two has not reported yet
    assert "区财政局机关党委" in page  # grouped under the organisation above the branches
    assert "共 2 名五星党员" in page and "另有 1 个支部尚未上报" in page
    assert f'href="{world["base"]}/rounds/honour/branch/{world["rb_one"].id}"' in page


def test_a_branch_roll_and_a_branch_not_reported_yet(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["inspector"])
    page = _text(client.get(f"{world['base']}/rounds/honour/branch/{world['rb_one'].id}"))
    assert "第一党支部" in page and "2 名五星党员" in page and "赵书记" in page and "孙党员" in page
    response = client.get(f"{world['base']}/rounds/honour/branch/{world['rb_two'].id}")
    page = _text(response)
    assert response.status_code == 200
    assert "尚未上报" in page and "支部审评" in page and "李1" not in page


def test_a_returned_branch_leaves_the_roll_until_it_reports_again(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    set_step(session, world, world["one"], BranchStep.REVIEW)  # the committee returned it
    login(world["tenant"], world["member"])
    page = _text(client.get(f"{world['base']}/rounds/honour/round/{world['round'].id}"))
    assert "赵书记" not in page and "还没有支部上报评定结果" in page


def test_a_closed_round_shows_every_branch(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    with tenant_context(world["tenant"].id):
        with seeding():
            world["round"].state = RoundState.CLOSED
        session.flush()
    login(world["tenant"], world["other_secretary"])
    page = _text(client.get(f"{world['base']}/rounds/honour/round/{world['round'].id}"))
    assert "赵书记" in page and "孙党员" in page and "李1" in page and "共 3 名五星党员" in page
    assert "尚未上报" not in page


def test_the_roll_is_one_query_whatever_the_size(
    session: Session, world: dict[str, Any], engine: Engine, create_org: Any, create_member: Any
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with tenant_context(world["tenant"].id):
        event.listen(engine, "before_cursor_execute", count)
        try:
            roll = honour_roll(session, world["round"])
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert [b.branch_name for b in roll.published] == ["第一党支部"]
    assert sorted(m.name for m in roll.published[0].members) == sorted(["孙党员", "赵书记"])
    assert roll.pending == 1 and roll.honoured == 2
    assert all(not b.members for b in roll.branches if not b.published)  # nothing unpublished is read


def test_the_index_lists_rounds_with_their_progress(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    with tenant_context(world["tenant"].id):
        rows = rounds_for_honour(session)
    assert [(r.period_key, done, total) for r, done, total in rows] == [("2026Q1", 1, 2)]
    login(world["tenant"], world["member"])
    page = _text(client.get(f"{world['base']}/rounds/honour/"))
    assert "2026年第一季度五星党员光荣榜" in page and "1 / 2 个支部已上报" in page


def test_the_roll_is_printable(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["member"])
    page = _text(client.get(f"{world['base']}/rounds/honour/round/{world['round'].id}"))
    assert 'class="honour-roll"' in page and "<script>" not in page and "style=" not in page
    css = (static_dir() / "css" / "fivestar.css").read_text(encoding="utf-8")
    assert "@media print" in css and ".honour-branch" in css


def test_anonymous_visitors_must_log_in_and_other_tenants_ids_are_not_found(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any], create_tenant: Any,
    create_org: Any, create_member: Any, create_account: Any,
) -> None:
    url = f"{world['base']}/rounds/honour/round/{world['round'].id}"
    assert client.get(url).status_code == 302
    other = create_tenant(slug="honour-elsewhere", name="外区工委")
    branch = create_org(other, OrgKind.BRANCH, name="外区第一支部")
    create_member(other, branch, name="外区五星")
    outsider = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="waiqu")
    login(other, outsider)
    for path in (f"/rounds/honour/round/{world['round'].id}", f"/rounds/honour/branch/{world['rb_one'].id}"):
        response = client.get(f"/t/{other.slug}{path}")
        assert response.status_code == 404 and "赵书记" not in _text(response)


def test_member_ratings_and_period_labels(session: Session, world: dict[str, Any]) -> None:
    with tenant_context(world["tenant"].id):
        ratings = member_ratings(session, world["ones"][2].id)
    assert len(ratings) == 1
    rating = ratings[0]
    assert rating.published and rating.has_result and rating.level == 5 and not rating.not_rated
    assert period_label("2026Q1") == "2026年第一季度" and period_label("2025Q4") == "2025年第四季度"
    assert period_label("2026H2") == "2026年下半年" and period_label("2026") == "2026年度"
    assert period_label("odd") == "odd"


def test_a_second_round_does_not_mix_into_the_first(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    with tenant_context(world["tenant"].id):
        earlier = open_round(session, world["tenant"], period_key="2025Q4").round
        session.flush()
    login(world["tenant"], world["member"])
    page = _text(client.get(f"{world['base']}/rounds/honour/round/{earlier.id}"))
    assert "2025年第四季度" in page and "赵书记" not in page
