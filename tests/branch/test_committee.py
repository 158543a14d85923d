"""The committee's services for the year's branch rating: the rounds overview, the shortcuts, extending a
deadline (with every refusal), and the table of all branches with the rules' quota guidance."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from fivestar.branch_rounds import committee
from fivestar.branch_rounds.models import BranchRound, BranchRoundState, RatingStep
from fivestar.enums import Role
from fivestar.errors import ConflictError, ServiceError
from fivestar.tenancy import tenant_context
from tests.branch.committee_support import BEIJING, events, principal, put_at, rules_with


def test_the_overview_counts_branches_per_step_in_the_persons_scope(session: Session, opened: dict[str, Any]) -> None:
    put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    with tenant_context(opened["tenant"].id):
        [row] = committee.rounds_overview(session, principal(opened, Role.TENANT_ADMIN))
        assert row.round.year == 2025 and row.branches == 2
        assert row.steps[RatingStep.ORG_REVIEW] == 1 and row.steps[RatingStep.RECOMMEND] == 1
        [scoped] = committee.rounds_overview(
            session, principal(opened, Role.ORG_STAFF, opened["party"], account="org_staff")
        )
        assert scoped.branches == 1 and scoped.steps[RatingStep.ORG_REVIEW] == 1  # only branch one is theirs


def test_secretaries_get_their_branchs_rating_as_a_shortcut(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        mine = committee.my_ratings(
            session, principal(opened, Role.BRANCH_SECRETARY, opened["one"], account="secretary")
        )
        assert [(rating.id, branch_round.year) for rating, branch_round in mine] == [(opened["rating_one"].id, 2025)]
        assert committee.my_ratings(session, principal(opened, Role.COMMITTEE_MEMBER)) == []


# --- extending a deadline -------------------------------------------------------------------------------


def test_the_committee_extends_a_deadline_with_a_reason(session: Session, opened: dict[str, Any]) -> None:
    branch_round = opened["round"]
    before = branch_round.self_report_due_at
    version = branch_round.version
    with tenant_context(opened["tenant"].id):
        committee.extend_deadline(session, branch_round, "self_report", dt.date(2026, 2, 10), "  春节假期顺延  ",
                                  version=version)
        local = branch_round.self_report_due_at.astimezone(BEIJING)
        assert (local.date(), local.hour, local.minute) == (dt.date(2026, 2, 10), 23, 59)
        assert branch_round.version == version + 1
        [event] = events(session, opened, "branch_round.extend_deadline")
    assert event.reason == "春节假期顺延"
    assert event.before == {"deadline": "self_report", "self_report_due_at": before.isoformat()}
    assert event.after == {"deadline": "self_report", "self_report_due_at": branch_round.self_report_due_at.isoformat()}


@pytest.mark.parametrize(
    ("which", "day", "reason", "message", "field"),
    [
        ("self_report", dt.date(2026, 2, 10), "   ", "须填写原因", "reason"),
        ("self_report", dt.date(2026, 1, 20), "会议推迟", "须晚于当前的自评上报截止日期 2026-01-31", "new_day"),
        ("self_report", dt.date(2026, 1, 5), "会议推迟", "已经过去", "new_day"),
        ("self_report", dt.date(2026, 3, 31), "会议推迟", "须早于工委定星截止日期 2026-03-31；请先延长工委定星期限",
         "new_day"),
        ("meeting", dt.date(2026, 2, 10), "会议推迟", "请选择要延期的环节", "which"),
    ],
)
def test_extensions_are_refused_without_a_reason_or_a_later_day(
    session: Session, opened: dict[str, Any], which: str, day: dt.date, reason: str, message: str, field: str
) -> None:
    branch_round = opened["round"]
    before = (branch_round.self_report_due_at, branch_round.committee_due_at, branch_round.version)
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError, match=message) as refused:
        committee.extend_deadline(session, branch_round, which, day, reason, version=branch_round.version)
    assert refused.value.field == field
    assert (branch_round.self_report_due_at, branch_round.committee_due_at, branch_round.version) == before
    assert events(session, opened, "branch_round.extend_deadline") == []


def test_the_committee_deadline_moves_freely_later(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        committee.extend_deadline(session, opened["round"], "committee", dt.date(2026, 4, 15), "等待上级通知")
    assert opened["round"].committee_due_at.astimezone(BEIJING).date() == dt.date(2026, 4, 15)


def test_a_finalised_round_or_a_stale_form_is_refused(session: Session, opened: dict[str, Any]) -> None:
    branch_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError, match="已被他人修改"):
            committee.extend_deadline(session, branch_round, "committee", dt.date(2026, 4, 15), "原因",
                                      version=branch_round.version - 1)
        session.execute(update(BranchRound).where(BranchRound.id == branch_round.id)
                        .values(state=BranchRoundState.FINALISED))
        session.refresh(branch_round)
        with pytest.raises(ServiceError, match="已定星公布"):
            committee.extend_deadline(session, branch_round, "committee", dt.date(2026, 4, 15), "原因")


def test_someone_saving_the_round_meanwhile_is_a_conflict(session: Session, opened: dict[str, Any]) -> None:
    branch_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        session.execute(update(BranchRound).where(BranchRound.id == branch_round.id)
                        .values(version=BranchRound.version + 1).execution_options(synchronize_session=False))
        with pytest.raises(ConflictError):
            committee.extend_deadline(session, branch_round, "committee", dt.date(2026, 4, 15), "原因")
    assert events(session, opened, "branch_round.extend_deadline") == []


# --- the table and its quota guidance ---------------------------------------------------------------------


def test_the_table_lists_every_branch_with_its_parent_and_levels(session: Session, opened: dict[str, Any]) -> None:
    put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, proposed=4, opinion=5, previous=3)
    with tenant_context(opened["tenant"].id):
        rows = committee.branch_table(session, principal(opened, Role.COMMITTEE_MEMBER), opened["round"])
    by_name = {row.rating.branch.name: row for row in rows}
    assert set(by_name) == {"预算科党支部", "区档案馆党支部"}
    one = by_name["预算科党支部"]
    assert one.parent_name == "区财政局机关党委" and one.projected_level == 5 and not one.decided
    assert by_name["区档案馆党支部"].projected_level is None  # nothing proposed yet
    assert one.ballot is None  # the ballot part gives no table figure (yet): the page shows —


def test_guidance_counts_decisions_and_marks_the_undecided(
    session: Session, opened_with_rules: Any
) -> None:
    world = opened_with_rules(rules_with(quota="advisory", five_share="0.5"))
    put_at(session, world, world["rating_one"], RatingStep.DECIDED, opinion=5)
    put_at(session, world, world["rating_direct"], RatingStep.COMMITTEE, opinion=5)
    with tenant_context(world["tenant"].id):
        world["rating_one"].decided_level = 5
        session.flush()
        rules = committee.core.round_rules(session, world["round"])
        rows = committee.branch_table(session, principal(world, Role.TENANT_ADMIN), world["round"])
    guidance = committee.table_guidance(rules, rows)
    five = next(line for line in guidance.lines if line.level == 5)
    assert guidance.mode == "advisory" and guidance.total == 2 and guidance.undecided_counted == 1
    assert (five.decided, five.projected, five.allowed, five.max_share) == (1, 1, 1, "50")
    assert five.over and not five.decided_over
    [warning] = guidance.warnings
    assert "五星 2 个" in warning and "超出指导比例" in warning and "即 1 个" in warning


def test_without_a_quota_there_is_no_guidance(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        rules = committee.core.round_rules(session, opened["round"])
        rows = committee.branch_table(session, principal(opened, Role.TENANT_ADMIN), opened["round"])
    guidance = committee.table_guidance(rules, rows)
    assert not guidance.has_quota and guidance.warnings == ()
