"""Opening a member round: every rated branch and active member, pinned rules, deadlines, once."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.errors import ConflictError, ServiceError
from fivestar.member_rounds.models import Evaluation, RoundBranch
from fivestar.member_rounds.opening import open_round
from fivestar.tenancy import tenant_context


def test_opening_covers_rated_branches_and_their_active_members(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    assert member_round.period_key == "2026Q1"
    assert (member_round.period_start, member_round.period_end) == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    assert (opened["opened"].branches, opened["opened"].members) == (2, 6)
    with tenant_context(opened["tenant"].id):
        branch_ids = set(session.scalars(select(RoundBranch.branch_id).where(RoundBranch.round_id == member_round.id)))
        members = set(session.scalars(select(Evaluation.member_id).where(Evaluation.round_id == member_round.id)))
    assert branch_ids == {opened["one"].id, opened["two"].id}  # not the retirees' branch
    assert members == {m.id for m in opened["ones"] + opened["twos"]}


def test_deadlines_are_counted_in_working_days_in_the_tenant_zone(opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    local = member_round.self_due_at.astimezone(ZoneInfo("Asia/Shanghai"))
    # The notice sample gives the self-assessment some working days after the opening day; the
    # deadline is the end of that day in Beijing time and falls on a working day.
    assert (local.hour, local.minute) == (23, 59)
    assert local.date() > dt.date(2026, 4, 7)
    assert member_round.self_due_at < member_round.joint_due_at < member_round.review_due_at


def test_a_period_opens_once(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="已经开启"):
        open_round(session, opened["tenant"], period_key="2026Q1")


def test_a_period_that_has_not_ended_is_refused(session: Session, district: dict[str, Any], frozen_now: Any) -> None:
    with tenant_context(district["tenant"].id), pytest.raises(ServiceError, match="尚未结束"):
        open_round(session, district["tenant"], period_key="2026Q2")


@pytest.mark.parametrize("key", ["2026Q5", "2026H1", "Q1-2026", ""])
def test_a_malformed_period_is_refused(session: Session, district: dict[str, Any], frozen_now: Any, key: str) -> None:
    with tenant_context(district["tenant"].id), pytest.raises(ServiceError):
        open_round(session, district["tenant"], period_key=key or " ")
