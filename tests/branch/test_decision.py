"""定星: the dossier, deciding a branch's level under the rules (reasons, vetoes and caps, one level a
year, quotas), optimistic locking, and finalising the round in a committee meeting."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from fivestar.branch_rounds import committee, decision, org_review
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    EvidenceFile,
    QuarterlyReview,
    RatingStep,
)
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.tenancy import tenant_context
from tests.branch.committee_support import answer, events, local, put_at, rules_with, score


def _decide(session: Session, world: dict[str, Any], rating: BranchRating, level: int, reason: str = "") -> Any:
    with tenant_context(world["tenant"].id):
        return decision.decide(session, world["round"], rating, level, reason, version=rating.version)


# --- deciding ---------------------------------------------------------------------------------------------


def test_deciding_the_branchs_opinion_needs_no_reason(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, proposed=3, opinion=4)
    version = rating.version
    outcome = _decide(session, opened, rating, 4)
    assert outcome.warnings == ()
    assert rating.step is RatingStep.DECIDED and rating.decided_level == 4 and rating.decision_reason is None
    assert rating.decided_by == "system" and rating.decided_at is not None and rating.version == version + 1
    with tenant_context(opened["tenant"].id):
        [event] = events(session, opened, "branch_rating.decide")
    assert event.before["step"] == "committee" and event.before["decided_level"] is None
    assert event.after["decided_level"] == 4 and event.after["reference_level"] == 4


def test_a_level_different_from_the_opinion_needs_a_reason(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, proposed=4, opinion=4)
    with pytest.raises(ServiceError, match="定为三星与支部意见（四星）不同，须填写理由") as refused:
        _decide(session, opened, rating, 3, "   ")
    assert refused.value.field == "reason" and rating.decided_level is None
    _decide(session, opened, rating, 3, "群众测评满意率偏低")
    assert rating.decided_level == 3 and rating.decision_reason == "群众测评满意率偏低"
    with tenant_context(opened["tenant"].id):
        [event] = events(session, opened, "branch_rating.decide")
    assert event.reason == "群众测评满意率偏低"


def test_without_an_opinion_the_proposal_is_the_reference(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_direct"], RatingStep.COMMITTEE, proposed=2, opinion=None)
    with pytest.raises(ServiceError, match="与支部意见（二星）不同"):
        _decide(session, opened, rating, 3)
    _decide(session, opened, rating, 2)
    assert rating.decided_level == 2


def test_a_decided_branch_may_be_decided_again_while_the_round_is_open(
    session: Session, opened: dict[str, Any]
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    _decide(session, opened, rating, 4)
    _decide(session, opened, rating, 3, "复核后调整")
    assert rating.decided_level == 3 and rating.step is RatingStep.DECIDED
    with tenant_context(opened["tenant"].id):
        assert [e.after["decided_level"] for e in events(session, opened, "branch_rating.decide")] == [4, 3]


@pytest.mark.parametrize("step", [RatingStep.RECOMMEND, RatingStep.DELIBERATE, RatingStep.ORG_REVIEW])
def test_only_a_branch_with_the_committee_is_decided(session: Session, opened: dict[str, Any], step: RatingStep
                                                     ) -> None:
    rating = put_at(session, opened, opened["rating_one"], step)
    with pytest.raises(ServiceError, match="当前处于"):
        _decide(session, opened, rating, 4)


def test_a_bad_level_is_refused(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE)
    for bad in ("", "6", "四星", "-1"):
        with tenant_context(opened["tenant"].id), pytest.raises(ServiceError, match="请选择定星星级"):
            decision.decide(session, opened["round"], rating, bad, "理由", version=rating.version)


def test_deciding_after_the_committee_deadline_is_refused(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE)
    frozen_now.move(local(2026, 4, 1))
    with pytest.raises(ServiceError, match="定星期限已于 3月31日 截止"):
        _decide(session, opened, rating, 4)


# --- the rules: vetoes, caps, one level a year --------------------------------------------------------------


def test_a_veto_caps_the_decision_with_the_engines_reason(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    answer(session, opened, rating, AnswerKind.VETO, "major_incident", True, "发生舆情事件")
    with pytest.raises(ServiceError, match="不能定为四星：按评定规则该支部最高为二星（一票否决") as refused:
        _decide(session, opened, rating, 4)
    assert refused.value.field == "level"
    _decide(session, opened, rating, 2, "一票否决")
    assert rating.decided_level == 2


def test_a_removing_veto_allows_no_star_only(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=0)
    answer(session, opened, rating, AnswerKind.VETO, "falsification", True)
    with pytest.raises(ServiceError, match="最高为无星"):
        _decide(session, opened, rating, 1, "理由")
    _decide(session, opened, rating, 0)


def test_one_level_a_year_limits_the_decision(session: Session, opened_with_rules: Any) -> None:
    world = opened_with_rules(rules_with(quota=None))
    rating = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=4, previous=2)
    with pytest.raises(ServiceError, match="不能定为四星：按评定规则该支部最高为三星（逐级晋升：上年二星"):
        _decide(session, world, rating, 4)
    with tenant_context(world["tenant"].id):
        assert decision.level_ceiling(session, committee.core.round_rules(session, world["round"]), rating).level == 3
    _decide(session, world, rating, 3, "逐级晋升")
    assert rating.decided_level == 3


def test_the_rules_exception_fact_lifts_the_one_level_limit(session: Session, opened_with_rules: Any) -> None:
    world = opened_with_rules(rules_with(quota=None))
    rating = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=4, previous=2)
    answer(session, world, rating, AnswerKind.FACT, "municipal_honour", True, "获市级先进基层党组织表彰")
    _decide(session, world, rating, 4)
    assert rating.decided_level == 4


# --- quotas --------------------------------------------------------------------------------------------------


def test_an_enforced_quota_refuses_the_decision_that_exceeds_it(session: Session, opened_with_rules: Any) -> None:
    world = opened_with_rules(rules_with(quota="enforced", five_share="0.5", promotion=False))
    one = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=5)
    direct = put_at(session, world, world["rating_direct"], RatingStep.COMMITTEE, opinion=5)
    _decide(session, world, one, 5)  # 1 of 2 at 五星: within 50 %
    with pytest.raises(ServiceError) as refused:
        _decide(session, world, direct, 5)
    assert refused.value.message == "不能定为五星：规则限定五星最多 1 个（2 个支部的 50%），定星后将有 2 个"
    assert direct.decided_level is None
    _decide(session, world, direct, 4, "名额限制")
    assert direct.decided_level == 4


def test_an_advisory_quota_only_warns(session: Session, opened_with_rules: Any) -> None:
    world = opened_with_rules(rules_with(quota="advisory", five_share="0.5", promotion=False))
    one = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=5)
    direct = put_at(session, world, world["rating_direct"], RatingStep.COMMITTEE, opinion=5)
    assert _decide(session, world, one, 5).warnings  # the other branch's opinion already counts
    outcome = _decide(session, world, direct, 5)
    assert direct.decided_level == 5
    [warning] = outcome.warnings
    assert "五星 2 个（已定星 2 个）" in warning and "超出指导比例" in warning


# --- optimistic locking ----------------------------------------------------------------------------------------


def test_a_stale_form_and_a_concurrent_decision_are_conflicts(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError, match="已被他人修改"):
            decision.decide(session, opened["round"], rating, 4, "", version=rating.version - 1)
        # another committee member saved between loading and saving: the UPDATE matches no row
        session.execute(update(BranchRating).where(BranchRating.id == rating.id)
                        .values(version=BranchRating.version + 1).execution_options(synchronize_session=False))
        with pytest.raises(ConflictError):
            decision.decide(session, opened["round"], rating, 4, "", version=rating.version)
    assert events(session, opened, "branch_rating.decide") == []


# --- finalising ------------------------------------------------------------------------------------------------


def _decide_all(session: Session, world: dict[str, Any], levels: tuple[int, int] = (4, 3)) -> None:
    for rating, level in zip((world["rating_one"], world["rating_direct"]), levels, strict=True):
        put_at(session, world, rating, RatingStep.COMMITTEE, opinion=level)
        _decide(session, world, rating, level)


def _finalise(session: Session, world: dict[str, Any], day: dt.date | None = dt.date(2026, 1, 6),
              who: str | None = "张主任、李委员、王委员") -> BranchRound:
    with tenant_context(world["tenant"].id):
        return decision.finalise_round(session, world["round"], meeting_date=day, participants=who,
                                       version=world["round"].version)


def test_finalising_records_the_meeting_and_publishes(session: Session, opened: dict[str, Any]) -> None:
    _decide_all(session, opened)
    branch_round = _finalise(session, opened)
    assert branch_round.state is BranchRoundState.FINALISED and branch_round.finalised_at is not None
    assert branch_round.decision_meeting_date == dt.date(2026, 1, 6)
    assert branch_round.decision_participants == "张主任、李委员、王委员"
    with tenant_context(opened["tenant"].id):
        [event] = events(session, opened, "branch_round.finalise")
    assert event.before["state"] == "open" and event.after["state"] == "finalised"
    assert event.after["levels"]["4"] == 1 and event.after["levels"]["3"] == 1


def test_finalising_needs_every_branch_decided(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    _decide(session, opened, rating, 4)
    with pytest.raises(ServiceError, match="还有 1 个党支部尚未定星"):
        _finalise(session, opened)
    assert opened["round"].state is BranchRoundState.OPEN


@pytest.mark.parametrize(
    ("day", "who", "message", "field"),
    [
        (None, "张主任", "请填写定星的工委会议日期", "meeting_date"),
        (dt.date(2026, 1, 7), "张主任", "还没有到", "meeting_date"),
        (dt.date(2025, 12, 30), "张主任", "不能早于本年度评定开启的日期", "meeting_date"),
        (dt.date(2026, 1, 6), "  ", "请填写参加会议的人员", "participants"),
        (dt.date(2026, 1, 6), None, "请填写参加会议的人员", "participants"),
    ],
)
def test_finalising_needs_the_meetings_date_and_participants(
    session: Session, opened: dict[str, Any], day: dt.date | None, who: str | None, message: str, field: str
) -> None:
    _decide_all(session, opened)
    with pytest.raises(ServiceError, match=message) as refused:
        _finalise(session, opened, day, who)
    assert refused.value.field == field and opened["round"].state is BranchRoundState.OPEN


def test_finalising_checks_an_enforced_quota_again(session: Session, opened_with_rules: Any) -> None:
    world = opened_with_rules(rules_with(quota="enforced", five_share="0.5", promotion=False))
    for rating in (world["rating_one"], world["rating_direct"]):
        put_at(session, world, rating, RatingStep.DECIDED, opinion=5)
        rating.decided_level = 5  # recorded before the quota applied (e.g. straight in the database)
    session.flush()
    with pytest.raises(ServiceError, match="定星结果超过规则限额，请先调整：五星 2 个，最多 1 个"):
        _finalise(session, world)


def test_nothing_changes_after_finalising(session: Session, opened: dict[str, Any]) -> None:
    _decide_all(session, opened)
    _finalise(session, opened)
    one = opened["rating_one"]
    with pytest.raises(ServiceError, match="已定星公布"):
        _decide(session, opened, one, 5, "再议")
    with pytest.raises(ServiceError, match="已定星公布"):
        _finalise(session, opened)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="已定星公布"):
            committee.extend_deadline(session, opened["round"], "committee", dt.date(2026, 4, 30), "延期")
        with seeding():
            one.step = RatingStep.ORG_REVIEW  # even a rating somehow back at the middle level
        with pytest.raises(ServiceError, match="已定星公布"):
            org_review.forward(session, opened["round"], one, "同意", version=one.version)
    assert one.decided_level == 4


# --- the dossier ------------------------------------------------------------------------------------------------


def test_the_dossier_gathers_everything_the_committee_weighs(session: Session, opened: dict[str, Any]) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW, proposed=4, opinion=4, previous=3)
    score(session, opened, rating, "leadership", "secretary", "5.5", "书记带头讲党课四次")
    answer(session, opened, rating, AnswerKind.VETO, "serious_discipline", False, "无违纪情况")
    tenant_id = opened["tenant"].id
    with tenant_context(tenant_id):
        session.add(EvidenceFile(
            tenant_id=tenant_id, rating_id=rating.id, indicator_key="leadership", criterion_key="secretary",
            original_name="党课记录.pdf", content_type="application/pdf", size=10, sha256="0" * 64,
            storage_key="k-dossier", uploaded_by="赵书记",
        ))
        for year, quarter, comment in ((2025, 2, "按期完成"), (2025, 1, None), (2024, 4, "旧的")):
            session.add(QuarterlyReview(tenant_id=tenant_id, branch_id=rating.branch_id, year=year, quarter=quarter,
                                        checks={"leadership": f"{year}Q{quarter} 班子自查"}, committee_comment=comment))
        session.flush()
        org_review.org_return(session, opened["round"], rating, "请补充党课记录", version=rating.version)
        put_at(session, opened, rating, RatingStep.ORG_REVIEW, proposed=4, opinion=4)
        org_review.forward(session, opened["round"], rating, "同意四星", version=rating.version)
        found = decision.build_dossier(session, opened["round"], rating)
    leadership = next(i for i in found.indicators if i.key == "leadership")
    secretary = next(c for c in leadership.criteria if c.key == "secretary")
    assert str(secretary.score) == "5.50" and secretary.note == "书记带头讲党课四次"
    assert [e.original_name for e in secretary.evidence] == ["党课记录.pdf"]
    veto = next(v for v in found.vetoes if v.key == "serious_discipline")
    assert veto.value is False and veto.explanation == "无违纪情况"
    assert all(v.value is None for v in found.vetoes if v.key != "serious_discipline")
    assert [(e.action, e.text) for e in found.org_events] == [("org_return", "请补充党课记录"), ("forward", "同意四星")]
    assert [(q.year, q.quarter) for q in found.quarterly] == [(2025, 1), (2025, 2)]  # the rated year only
    assert found.middle is not None and found.middle.name == "区财政局机关党委"
    assert found.ceiling is not None and found.ceiling.level == 5
    assert found.result is not None and leadership.total is not None and found.reference_level == 4
    assert found.ballot is None or hasattr(found.ballot, "groups")
