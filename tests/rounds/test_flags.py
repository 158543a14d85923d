"""Members not rated or at two stars or below four periods running: flagged for people to decide."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import MemberStatus, Role
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import committee
from fivestar.member_rounds.models import EvaluationStatus, MemberRound, RoundState
from fivestar.member_rounds.opening import open_round
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import (
    NOT_RATED,
    evaluation_of,
    finalise_directly,
    round_branch_of,
    score,
    text_of,
)
from tests.support import count_queries

# Levels per member in 2025Q1, Q2, Q3, Q4 and 2026Q1 (None: not part of that round).
HISTORY: dict[str, tuple[int | str | None, ...]] = {
    "赵书记": (2, 2, 2, 2, 5),  # improved in the latest round: not flagged
    "钱支委": (5, 2, NOT_RATED, 2, 2),  # the last four all low: flagged
    "孙党员": (2, 2, 2, 3, 2),  # one three-star period breaks the run
    "李1": (2, 2, 2, 2, 2),  # branch two has not reported 2026Q1: the four 2025 rounds count; flagged
    "李2": (None, 2, 2, 2, 2),  # only three counted rounds so far
    "李3": (5, 2, 2, 2, 2),
}


def _admin(world: dict[str, Any]) -> Principal:
    return Principal(session_token="t", display_name="工委", tenant_id=world["tenant"].id, account_id=1,
                     grants=(Grant(Role.TENANT_ADMIN),))


@pytest.fixture
def history(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    tenant = opened["tenant"]
    members = {m.name: m for m in opened["ones"] + opened["twos"]}
    rounds: list[MemberRound] = []
    with tenant_context(tenant.id):
        for key in ("2025Q1", "2025Q2", "2025Q3", "2025Q4"):
            rounds.append(open_round(session, tenant, period_key=key).round)
    rounds.append(opened["round"])
    for index, member_round in enumerate(rounds):
        levels = {members[name]: levels[index] for name, levels in HISTORY.items() if levels[index] is not None}
        score(session, opened, levels, member_round)
        with tenant_context(tenant.id):
            for name, levels_of in HISTORY.items():
                if levels_of[index] is None:  # transferred in later: withdrawn from this round
                    evaluation_of(session, opened, members[name], member_round).status = EvaluationStatus.WITHDRAWN
            if member_round is not opened["round"]:
                with seeding():
                    member_round.state = RoundState.CLOSED
            session.flush()
    finalise_directly(session, opened, round_branch_of(session, opened, "one"))  # 2026Q1: branch one reported
    return {**opened, "rounds": rounds, "members": members}


def test_four_low_periods_running_are_flagged_in_one_query(
    session: Session, history: dict[str, Any], engine: Engine
) -> None:
    with tenant_context(history["tenant"].id), count_queries(engine) as statements:
        flagged = committee.flagged_members(session, _admin(history), 2, "无星")
    assert len(statements) == 1
    assert [f.name for f in flagged] == ["钱支委", "李1"]
    qian, li = flagged
    assert qian.periods == [
        ("2026年第一季度", "二星"),
        ("2025年第四季度", "二星"),
        ("2025年第三季度", "不予评星"),
        ("2025年第二季度", "二星"),
    ]
    assert [period for period, _level in li.periods] == [
        "2025年第四季度", "2025年第三季度", "2025年第二季度", "2025年第一季度"
    ]
    assert (qian.member_no, qian.branch_name) == ("A002", "第一党支部")


def test_the_threshold_decides_what_counts_as_low(session: Session, history: dict[str, Any]) -> None:
    with tenant_context(history["tenant"].id):
        names = [f.name for f in committee.flagged_members(session, _admin(history), 3, "无星")]
    assert names == ["钱支委", "孙党员", "李1"]


def test_members_who_left_are_not_listed(session: Session, history: dict[str, Any]) -> None:
    with tenant_context(history["tenant"].id):
        history["members"]["李1"].status = MemberStatus.TRANSFERRED_OUT
        session.flush()
        names = [f.name for f in committee.flagged_members(session, _admin(history), 2, "无星")]
    assert names == ["钱支委"]


def test_nothing_is_flagged_before_four_counted_rounds(session: Session, opened: dict[str, Any]) -> None:
    score(session, opened, dict.fromkeys(opened["ones"], 2))
    finalise_directly(session, opened, round_branch_of(session, opened, "one"))
    with tenant_context(opened["tenant"].id):
        assert committee.flagged_members(session, _admin(opened), 2, "无星") == []


def test_the_flags_page_says_people_decide_and_is_scoped(
    client: FlaskClient, login: Any, history: dict[str, Any]
) -> None:
    url = f"/t/{history['tenant'].slug}/rounds/flags"
    login(history["tenant"], history["committee"])
    page = text_of(client.get(url))
    assert "连续四期未评星或二星及以下" in page
    assert "系统不会对党员自动采取任何措施" in page
    assert "钱支委" in page and "李1" in page and "2025年第三季度：不予评星" in page
    client.post(f"/t/{history['tenant'].slug}/logout")
    login(history["tenant"], history["secretary"])  # branch one's secretary sees branch one only
    page = text_of(client.get(url))
    assert "钱支委" in page and "李1" not in page
    client.post(f"/t/{history['tenant'].slug}/logout")
    login(history["tenant"], history["member"])
    assert client.get(url).status_code == 403
