"""Opening a year's branch rating: rated branches only, pinned rules, deadlines, last year's level, once."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating
from fivestar.branch_rounds.opening import open_branch_round
from fivestar.errors import ConflictError, ServiceError
from fivestar.tenancy import tenant_context


def test_opening_rates_last_year_for_every_rated_branch(session: Session, opened: dict[str, Any]) -> None:
    branch_round = opened["round"]
    assert branch_round.year == 2025
    with tenant_context(opened["tenant"].id):
        branch_ids = set(
            session.scalars(select(BranchRating.branch_id).where(BranchRating.round_id == branch_round.id))
        )
    assert branch_ids == {opened["one"].id, opened["direct"].id}  # not the retirees' branch
    local = branch_round.self_report_due_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (local.year, local.month, local.hour, local.minute) == (2026, 1, 23, 59)  # end of month 1
    assert branch_round.committee_due_at > branch_round.self_report_due_at


def test_a_year_opens_once(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="已经开启"):
        open_branch_round(session, opened["tenant"], year=2025)


def test_an_unfinished_year_is_refused(session: Session, district: dict[str, Any], frozen_now: Any) -> None:
    with tenant_context(district["tenant"].id), pytest.raises(ServiceError, match="尚未结束"):
        open_branch_round(session, district["tenant"], year=2026)


def test_a_late_opening_needs_later_deadlines(session: Session, district: dict[str, Any], frozen_now: Any) -> None:
    frozen_now.move(dt.datetime(2026, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    with tenant_context(district["tenant"].id):
        with pytest.raises(ServiceError, match="已过"):
            open_branch_round(session, district["tenant"], year=2025)
        opened = open_branch_round(
            session,
            district["tenant"],
            year=2025,
            self_report_due=dt.date(2026, 12, 20),
            committee_due=dt.date(2026, 12, 31),
        )
    assert opened.branches == 2


def test_last_years_decided_level_comes_along(session: Session, opened: dict[str, Any], frozen_now: Any) -> None:
    with tenant_context(opened["tenant"].id):
        opened["rating_one"].decided_level = 3
        session.flush()
        frozen_now.move(dt.datetime(2027, 1, 6, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        result = open_branch_round(session, opened["tenant"], year=2026)
        previous = dict(
            session.execute(
                select(BranchRating.branch_id, BranchRating.previous_level).where(
                    BranchRating.round_id == result.round.id
                )
            ).all()
        )
    assert previous == {opened["one"].id: 3, opened["direct"].id: None}
