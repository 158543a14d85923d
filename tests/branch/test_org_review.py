"""The middle level (机关党委/党总支): its queue, forwarding with comments, returning with a reason, and
every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds import org_review, workflow
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.enums import OrgKind, Role
from fivestar.errors import ConflictError, ServiceError
from fivestar.tenancy import tenant_context
from tests.branch.committee_support import events, local, principal, put_at


def test_the_queue_holds_the_ratings_waiting_for_the_persons_organisation(
    session: Session, opened: dict[str, Any], create_org: Any
) -> None:
    put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    other = create_org(opened["tenant"], OrgKind.GENERAL_BRANCH, name="区教育局党总支", code="G01")
    with tenant_context(opened["tenant"].id):
        mine = org_review.queue(session, principal(opened, Role.ORG_STAFF, opened["party"], account="org_staff"))
        assert [(row.rating.id, row.year, row.parent_name) for row in mine] == [
            (opened["rating_one"].id, 2025, "区财政局机关党委")
        ]
        assert org_review.queue(session, principal(opened, Role.ORG_STAFF, other, account="org_staff")) == []
        assert len(org_review.queue(session, principal(opened, Role.TENANT_ADMIN))) == 1
        assert org_review.queue(session, principal(opened, Role.TENANT_ADMIN), pending=False) == []


def test_a_branch_directly_under_the_committee_skips_the_middle_level() -> None:
    assert workflow.next_after_opinion(False) is RatingStep.COMMITTEE
    assert workflow.next_after_opinion(True) is RatingStep.ORG_REVIEW


def test_forwarding_sends_the_rating_to_the_committee_with_the_comment(
    session: Session, opened: dict[str, Any]
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    with tenant_context(opened["tenant"].id):
        org_review.forward(session, opened["round"], rating, "  同意该支部评为四星。  ", version=rating.version)
        assert rating.step is RatingStep.COMMITTEE
        assert rating.org_comment == "同意该支部评为四星。" and rating.forwarded_at is not None
        assert rating.forwarded_by == "system"
        [event] = events(session, opened, "branch_rating.forward")
        done = org_review.queue(session, principal(opened, Role.TENANT_ADMIN), pending=False)
    assert event.before["step"] == "org_review" and event.after["step"] == "committee"
    assert event.after["org_comment"] == "同意该支部评为四星。"
    assert [row.rating.id for row in done] == [rating.id]


def test_returning_needs_a_reason_and_goes_back_to_recommend(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="退回须填写原因") as refused:
            org_review.org_return(session, opened["round"], rating, "  ", version=rating.version)
        assert refused.value.field == "reason" and rating.step is RatingStep.ORG_REVIEW
        org_review.org_return(session, opened["round"], rating, "证明材料不全", version=rating.version)
        assert rating.step is RatingStep.RECOMMEND and rating.return_reason == "证明材料不全"
        assert rating.returned_at is not None
        [event] = events(session, opened, "branch_rating.org_return")
    assert event.reason == "证明材料不全" and event.after["step"] == "recommend"


def test_forwarding_needs_a_comment(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError, match="请填写审核意见"):
        org_review.forward(session, opened["round"], rating, "", version=rating.version)


@pytest.mark.parametrize("step", [RatingStep.RECOMMEND, RatingStep.DELIBERATE, RatingStep.COMMITTEE,
                                  RatingStep.DECIDED])
def test_only_a_rating_at_the_middle_level_is_forwarded_or_returned(
    session: Session, opened: dict[str, Any], step: RatingStep
) -> None:
    rating = put_at(session, opened, opened["rating_one"], step)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="当前处于"):
            org_review.forward(session, opened["round"], rating, "同意", version=rating.version)
        with pytest.raises(ServiceError, match="当前处于"):
            org_review.org_return(session, opened["round"], rating, "不同意", version=rating.version)
    assert events(session, opened, "branch_rating.forward") == []


def test_forwarding_after_the_self_report_deadline_is_refused(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    frozen_now.move(local(2026, 2, 2))
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="自评上报已于 1月31日 截止"):
            org_review.forward(session, opened["round"], rating, "同意", version=rating.version)
        # returning stays possible: the branch has to act on it anyway
        org_review.org_return(session, opened["round"], rating, "请补充材料", version=rating.version)


def test_a_finalised_round_refuses_the_middle_level(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    with tenant_context(opened["tenant"].id):
        session.execute(update(BranchRound).where(BranchRound.id == opened["round"].id)
                        .values(state=BranchRoundState.FINALISED))
        session.refresh(opened["round"])
        with pytest.raises(ServiceError, match="已定星公布"):
            org_review.forward(session, opened["round"], rating, "同意", version=rating.version)


def test_a_stale_form_or_a_concurrent_save_is_a_conflict(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError):
            org_review.forward(session, opened["round"], rating, "同意", version=rating.version + 1)
        session.execute(update(BranchRating).where(BranchRating.id == rating.id)
                        .values(version=BranchRating.version + 1).execution_options(synchronize_session=False))
        with pytest.raises(ConflictError):
            org_review.forward(session, opened["round"], rating, "同意", version=rating.version)
        # the session is still usable for the refusal page, and nothing was written
        assert session.scalar(select(BranchRating.step).where(BranchRating.id == rating.id)) is RatingStep.ORG_REVIEW
    assert events(session, opened, "branch_rating.forward") == []
