"""The branch's opinion after the ballot, and submitting it upward — with every refusal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import opinion
from fivestar.branch_rounds.ballot_meeting import FormError
from fivestar.branch_rounds.models import RatingStep
from fivestar.errors import ConflictError
from tests.branch.ballot_support import as_tenant, cast, close, codes_of, ctx_of, issue, setup_meeting, tally

OPINION = {"opinion_level": "4", "opinion_statement": "测评结果良好，支部委员会研究同意申报四星。"}


def _closed_with_results(session: Session, world: dict[str, Any], key: str = "rating_one", ballots: int = 5) -> None:
    rating = world[key]
    setup_meeting(session, world, members=max(ballots, 1), public=0, deputies=0, rating=rating)
    for code in codes_of(issue(session, world, rating), "members")[:ballots]:
        cast(session, world, code, level=4)
    close(session, world, rating)


def _save(session: Session, world: dict[str, Any], raw: dict[str, str] | None = None, key: str = "rating_one") -> None:
    ctx = ctx_of(session, world, world[key])
    with as_tenant(world):
        opinion.save_opinion(session, ctx, raw or OPINION, ctx.rating.version)
        session.flush()


def _submit(session: Session, world: dict[str, Any], key: str = "rating_one") -> RatingStep:
    ctx = ctx_of(session, world, world[key])
    with as_tenant(world):
        step = opinion.submit_opinion(session, ctx, ctx.rating.version)
        session.flush()
    return step


def test_opinion_before_closing_is_refused(session: Session, deliberating: dict[str, Any]) -> None:
    with pytest.raises(ConflictError, match="请先结束投票"):
        _save(session, deliberating)
    setup_meeting(session, deliberating)
    issue(session, deliberating)
    with pytest.raises(ConflictError, match="请先结束投票"):
        _save(session, deliberating)
    with pytest.raises(ConflictError, match="请先结束投票"):
        _submit(session, deliberating)


def test_opinion_is_validated(session: Session, deliberating: dict[str, Any]) -> None:
    _closed_with_results(session, deliberating)
    with pytest.raises(FormError) as info:
        _save(session, deliberating, {"opinion_level": "6", "opinion_statement": " "})
    assert set(info.value.errors) == {"opinion_level", "opinion_statement"}
    with pytest.raises(FormError) as info:
        _save(session, deliberating, {"opinion_level": "", "opinion_statement": "x" * 4001})
    assert set(info.value.errors) == {"opinion_level", "opinion_statement"}


def test_submit_without_opinion_or_below_the_minimum_is_refused(session: Session, deliberating: dict[str, Any]) -> None:
    _closed_with_results(session, deliberating, ballots=4)  # the notice sample's minimum is 5
    _save(session, deliberating)
    with pytest.raises(ConflictError, match="最低票数"):
        _submit(session, deliberating)
    assert deliberating["rating_one"].step is RatingStep.DELIBERATE

    _closed_with_results(session, deliberating, key="rating_direct")
    with pytest.raises(ConflictError, match="请先形成支部"):
        _submit(session, deliberating, key="rating_direct")


def test_paper_tallies_bring_the_results_to_the_minimum(session: Session, deliberating: dict[str, Any]) -> None:
    rating = deliberating["rating_one"]
    setup_meeting(session, deliberating, members=6, public=0, deputies=0)
    codes = codes_of(issue(session, deliberating), "members")
    for code in codes[:3]:
        cast(session, deliberating, code, level=4)
    close(session, deliberating)
    tally(session, deliberating, {"tally.members._.3": 2})
    _save(session, deliberating)
    assert _submit(session, deliberating) is RatingStep.ORG_REVIEW
    assert rating.opinion_level == 4 and rating.opinion_at is not None


def test_submit_goes_to_the_middle_level_or_straight_to_the_committee(
    session: Session, deliberating: dict[str, Any]
) -> None:
    _closed_with_results(session, deliberating)
    _save(session, deliberating)
    assert _submit(session, deliberating) is RatingStep.ORG_REVIEW  # under the 机关党委
    _closed_with_results(session, deliberating, key="rating_direct")
    _save(session, deliberating, key="rating_direct")
    assert _submit(session, deliberating, key="rating_direct") is RatingStep.COMMITTEE
    with as_tenant(deliberating):
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(("branch_rating.opinion", "branch_rating.submit_opinion")))
            .order_by(AuditEvent.id)
        ).all()
    assert [e.action for e in events] == ["branch_rating.opinion", "branch_rating.submit_opinion"] * 2
    assert events[1].before["step"] == "deliberate" and events[1].after["step"] == "org_review"
    assert events[0].after["opinion_level"] == 4
    # once submitted, nothing of the 议星 changes any more
    with pytest.raises(ConflictError, match="议星会议不能更改"):
        _save(session, deliberating)
    with pytest.raises(ConflictError, match="当前处于"):
        _submit(session, deliberating)


def test_submit_after_the_deadline_is_refused(
    session: Session, deliberating: dict[str, Any], frozen_now: Any
) -> None:
    _closed_with_results(session, deliberating)
    _save(session, deliberating)
    # the notice sample: self-ratings reported by the end of January
    frozen_now.move(dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    with pytest.raises(ConflictError, match="截止"):
        _submit(session, deliberating)
    assert deliberating["rating_one"].step is RatingStep.DELIBERATE


def test_a_stale_rating_version_conflicts(session: Session, deliberating: dict[str, Any]) -> None:
    _closed_with_results(session, deliberating)
    ctx = ctx_of(session, deliberating)
    stale = ctx.rating.version
    _save(session, deliberating)
    with as_tenant(deliberating), pytest.raises(ConflictError, match="他人修改"):
        opinion.save_opinion(session, ctx, OPINION, stale)
