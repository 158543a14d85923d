"""The committee's view of a round as services: progress, distributions, five-star lists, scope, and
returning a branch's results."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.audit.models import AuditEvent
from fivestar.enums import OrgKind, Role
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import committee, core, notice
from fivestar.member_rounds.models import BranchStep, ObjectionState, SelfState
from fivestar.member_rounds.opening import open_round
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import (
    NOT_RATED,
    add_objection,
    evaluation_of,
    finalise_directly,
    put_on_notice,
    round_branch_of,
)


def admin(world: dict[str, Any]) -> Principal:
    return Principal(
        session_token="t", display_name="工委", tenant_id=world["tenant"].id, account_id=world["admin"].id,
        grants=(Grant(Role.TENANT_ADMIN),),
    )


def org_staff(org: Any, world: dict[str, Any]) -> Principal:
    return Principal(
        session_token="s", display_name="机关党委", tenant_id=world["tenant"].id, account_id=1,
        grants=(Grant(Role.ORG_STAFF, org.id, org.path),),
    )


@pytest.fixture
def reported(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one reported (五星, 四星, 不予评星; one objection answered), branch two on notice
    (五星, 五星, 二星; one objection open)."""
    one = put_on_notice(session, opened)
    two = put_on_notice(session, opened, "two", dict(zip(opened["twos"], (5, 5, 2), strict=True)))
    answered = add_objection(session, opened, one)
    with tenant_context(opened["tenant"].id):
        answered.state = ObjectionState.DISMISSED
        answered.answer = "不属实"
        session.flush()
    add_objection(session, opened, two)
    finalise_directly(session, opened, one)
    return {**opened, "rb_one": one, "rb_two": two}


def test_rounds_overview_counts_branches_per_step(session: Session, reported: dict[str, Any]) -> None:
    with tenant_context(reported["tenant"].id):
        rows = committee.rounds_overview(session, admin(reported))
    assert len(rows) == 1
    assert rows[0].steps[BranchStep.FINALISED] == 1 and rows[0].steps[BranchStep.NOTICE] == 1
    assert rows[0].steps[BranchStep.SELF] == 0 and rows[0].branches == 2
    assert rows[0].period == "2026年第一季度"


def test_branch_progress_counts_each_step(session: Session, reported: dict[str, Any]) -> None:
    with tenant_context(reported["tenant"].id):
        evaluation = evaluation_of(session, reported, reported["twos"][2])
        evaluation.self_state = SelfState.DRAFT
        session.flush()
        progress = {p.branch_name: p for p in committee.branch_progress(session, admin(reported), reported["round"])}
    one, two = progress["第一党支部"], progress["第二党支部"]

    def counts(p: committee.BranchProgress) -> tuple[int, ...]:
        return (p.members, p.self_submitted, p.scored, p.objections_open, p.objections_answered)

    assert counts(one) == (3, 3, 3, 0, 1)
    assert counts(two) == (3, 2, 3, 1, 0)
    assert one.parent_name == "区财政局机关党委"
    assert one.round_branch.step is BranchStep.FINALISED and one.round_branch.finalised_at is not None


def test_level_distribution_per_branch_and_in_total(session: Session, reported: dict[str, Any]) -> None:
    with tenant_context(reported["tenant"].id):
        rules = core.round_rules(session, reported["round"])
        result = committee.level_distribution(session, admin(reported), reported["round"], rules)
    labels = dict(result.columns)
    assert [text for _bucket, text in result.columns] == ["五星", "四星", "三星", "二星", "不予评星"]
    one, two = reported["rb_one"].id, reported["rb_two"].id
    assert result.count(one, 5) == 1 and result.count(one, 4) == 1 and result.count(one, committee.NOT_RATED) == 1
    assert result.count(two, 5) == 2 and result.count(two, 2) == 1 and result.count(two, 3) == 0
    assert result.total == {5: 3, 4: 1, 2: 1, committee.NOT_RATED: 1}
    assert labels[committee.NOT_RATED] == "不予评星"


def test_unscored_members_show_as_not_yet_rated(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        rules = core.round_rules(session, opened["round"])
        result = committee.level_distribution(session, admin(opened), opened["round"], rules)
    assert result.columns[-1] == (committee.UNSCORED, "未评定")
    assert result.total == {committee.UNSCORED: 6}


def test_five_star_lists_hold_reported_branches_only(session: Session, reported: dict[str, Any]) -> None:
    with tenant_context(reported["tenant"].id):
        rows = committee.five_star_rows(session, admin(reported), reported["round"])
        mine = committee.five_star_rows(session, admin(reported), reported["round"], reported["rb_two"].id)
    assert [(r.name, r.branch_name, r.parent_name, r.total) for r in rows] == [
        ("赵书记", "第一党支部", "区财政局机关党委", Decimal("95.00"))
    ]
    assert mine == []  # branch two has two five-star members but has not reported yet
    finalise_directly(session, reported, reported["rb_two"])
    with tenant_context(reported["tenant"].id):
        rows = committee.five_star_rows(session, admin(reported), reported["round"])
    assert [r.name for r in rows] == ["赵书记", "李1", "李2"]


def test_org_staff_see_only_their_subtree(
    session: Session, reported: dict[str, Any], create_org: Any, create_member: Any
) -> None:
    tenant = reported["tenant"]
    other_party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="区教育局机关党委", code="P02")
    school = create_org(tenant, OrgKind.BRANCH, parent=other_party, name="教育局第一党支部", code="E01")
    create_member(tenant, school, name="吴老师", member_no="E001")
    with tenant_context(tenant.id):
        open_round(session, tenant, period_key="2025Q4")
        staff = org_staff(other_party, reported)
        progress = committee.branch_progress(session, staff, reported["round"])
        overview = committee.rounds_overview(session, staff)
        finance = committee.branch_progress(session, org_staff(reported["party"], reported), reported["round"])
        fives = committee.five_star_rows(session, staff, reported["round"])
    assert progress == [] and fives == []  # the school branch is not in the 2026Q1 round
    assert {row.round.period_key: row.branches for row in overview} == {"2026Q1": 0, "2025Q4": 1}
    assert {p.branch_name for p in finance} == {"第一党支部", "第二党支部"}


def test_returning_needs_a_reason_and_a_branch_on_notice_or_reported(
    session: Session, reported: dict[str, Any]
) -> None:
    one = reported["rb_one"]
    self_step = round_branch_of(session, reported, "one")
    with tenant_context(reported["tenant"].id):
        with pytest.raises(ServiceError, match="请填写退回原因") as refused:
            committee.return_branch(session, one, reason="  ", version=one.version)
        assert refused.value.field == "reason"
        with pytest.raises(ConflictError):
            committee.return_branch(session, one, reason="分数偏高", version=one.version - 1)
        assert one.step is BranchStep.FINALISED
        with seeding():
            self_step.step = BranchStep.SELF
        session.flush()
        with pytest.raises(ServiceError, match="当前处于“个人自评”阶段"):
            committee.return_branch(session, self_step, reason="分数偏高", version=self_step.version)


def test_returning_sends_the_branch_back_to_review_with_its_reason(
    session: Session, reported: dict[str, Any], frozen_now: Any
) -> None:
    one = reported["rb_one"]
    token = one.notice_token or ""
    with tenant_context(reported["tenant"].id):
        committee.return_branch(session, one, reason="五星比例偏高，请复核", version=one.version)
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "round_branch.return"))
        assert notice.find_notice(session, token) is None  # the public page is gone while it reviews
        fives = committee.five_star_rows(session, admin(reported), reported["round"])
    assert (one.step, one.return_reason, one.returned_at, one.finalised_at) == (
        BranchStep.REVIEW, "五星比例偏高，请复核", frozen_now.at, None
    )
    assert one.notice_token == token  # kept: the branch's next notice uses the same link
    assert fives == []
    assert event is not None and event.reason == "五星比例偏高，请复核"
    assert event.before is not None and event.before["step"] == "finalised"


def test_a_branch_on_notice_can_be_returned_too(session: Session, reported: dict[str, Any]) -> None:
    two = reported["rb_two"]
    with tenant_context(reported["tenant"].id):
        committee.return_branch(session, two, reason="请先核实异议", version=two.version)
    assert two.step is BranchStep.REVIEW


def test_flag_threshold_comes_from_the_rules(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        rules = core.round_rules(session, opened["round"])
    assert committee.flag_threshold(rules) == 2
    assert committee.flag_threshold(None) == 2


def test_openable_periods_start_with_the_one_just_past(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        periods = committee.openable_periods(session, opened["tenant"])
    assert [key for key, _label in periods] == ["2025Q4", "2025Q3", "2025Q2"]  # 2026Q1 is open already


def test_member_level_text_names_every_outcome() -> None:
    assert notice.member_level_text(5, True, None, "无星") == "五星"
    assert notice.member_level_text(0, True, None, "不合格") == "不合格"
    assert notice.member_level_text(None, False, "x", "无星") == "不予评星"
    assert notice.member_level_text(None, None, None, "无星") == "—"
    assert NOT_RATED == "not_rated"
