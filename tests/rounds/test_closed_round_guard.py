"""Nothing changes silently after a member round is closed (不得随意更改测评和考核结果).

Closing (closing.close_round) is when a member round's results are final. Every public function of
the member-round services is classified below: a writer of scores, levels, decisions or what they
rest on is listed with a call proving it refuses (409, the same message) and writes nothing; the
rest are read-only or allowed for a stated reason. A new public function fails
`test_every_service_function_is_classified` until someone decides which it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import Role
from fivestar.member_rounds import (
    branch,
    closing,
    committee,
    core,
    models,
    notice,
    scoring,
    self_assessment,
)
from fivestar.member_rounds.models import Evaluation, Objection, RoundBranch, RoundState
from fivestar.tenancy import tenant_context
from tests.finalised_support import Case, assert_classified, assert_refused_and_unchanged, snapshot, tenant_models
from tests.rounds.notice_support import add_objection, evaluation_of, finalise_directly, put_on_notice, round_branch_of

CLOSED = "本轮评定已结束，不能再更改"
PACKAGE = "fivestar.member_rounds"

# Read-only: they compute, format, load or list; none writes.
READ_ONLY = {
    "branch.branch_evaluations", "branch.cell_name", "branch.context_for", "branch.evaluation_in_branch",
    "branch.meeting_shortfall", "branch.minimum_public", "branch.parse_review_row", "branch.posted_version",
    "branch.public_min_share", "branch.row_input",
    "branch_pages.dashboard", "branch_pages.fmt", "branch_pages.joint_grid", "branch_pages.preview",
    "branch_pages.preview_row", "branch_pages.result_label", "branch_pages.review_grid", "branch_pages.scheme_total",
    "closing.branches_by_step", "closing.deadline_label",
    "committee.branch_progress", "committee.current_rule_set", "committee.five_star_rows",
    "committee.flag_threshold", "committee.flagged_members", "committee.level_distribution",
    "committee.my_round_branches", "committee.objection_state_label", "committee.openable_periods",
    "committee.round_state_label", "committee.rounds_overview", "committee.rules_version_number",
    "committee.self_state_label",
    "core.bonus_fields", "core.ensure_open", "core.evaluate", "core.facts_for",
    "core.load_evaluation", "core.member_input", "core.now",
    "core.parse_scores", "core.read_scores", "core.round_rules", "core.score_fields",
    # Workbooks and PDFs written to a file or bytes, from stored results.
    "notice_paper.notice_pdf",
    "workbooks.download_filename", "workbooks.workbook_header", "workbooks.generated_stamp",
    "workbooks.result_headers", "workbooks.results_statement", "workbooks.streaming_workbook",
    "workbooks.workbook_formats", "workbooks.write_about", "workbooks.write_five_star", "workbooks.write_results",
    "followups.default_due", "followups.follow_up_page", "followups.needs_mentors",
    "followups.needs_rectification", "followups.needs_talk",
    "honour.honour_roll", "honour.member_ratings", "honour.period_label", "honour.results_published",
    "honour.rounds_for_honour", "worklist.pending",
    "notice.find_notice", "notice.is_running", "notice.load_objection", "notice.member_level_text",
    "notice.notice_length_text", "notice.notice_rows", "notice.notice_view",
    "opening.period_by_key", "opening.previous_period",
    "scoring.level_expression",
    "self_assessment.as_form_values", "self_assessment.context", "self_assessment.field_groups",
    "self_assessment.field_name", "self_assessment.refusal", "self_assessment.state_label",
    "self_assessment.stored_scores", "self_assessment.validate",
    "workflow.closed_refusal", "workflow.edit_refusal", "workflow.follow_up_refusal", "workflow.refusal",
    "workflow.round_refusal", "workflow.self_refusal", "workflow.step_label",
}

# Writers that are not results, or that never reach a closed round.
ALLOWED = {
    # 帮扶与整改 follow the results and go on after the round (a rectification's result is recorded
    # when its deadline comes); they change no score, level or decision.
    "followups.assign_mentors": "follow-up of a result, not a result",
    "followups.record_talk": "follow-up of a result, not a result",
    "followups.set_rectification": "follow-up of a result, not a result",
    "followups.record_rectification_result": "recorded after the round, by design",
    "closing.record_final_levels": "writes the level history as the round closes; never a result",
    # A member joining, leaving or moving touches only OPEN rounds (membership._open_rounds).
    "membership.member_joined": "open rounds only",
    "membership.member_left": "open rounds only",
    "membership.member_moved": "open rounds only",
    # The receivers of the people package's events (kernel.events) call the three above, nothing else.
    "reactions.on_member_joined": "open rounds only (membership.member_joined)",
    "reactions.on_member_left": "open rounds only (membership.member_left)",
    "reactions.on_member_moved": "open rounds only (membership.member_moved)",
    "reactions.connect": "connects the receivers; writes nothing",
    "opening.open_round": "a new round; a closed one is never reopened",
    # The building block of the joint grid, the review and an upheld objection, each guarded first.
    "core.write_scores": "called only after the callers' guard",
}


def principal_for(account: Any, member: Any) -> Principal:
    """The member as the policy sees them (what the login loader builds)."""
    return Principal(session_token="t", display_name=member.name, tenant_id=account.tenant_id,
                     account_id=account.id, member_id=member.id, grants=(Grant(Role.MEMBER),))


def _ctx(session: Session, world: Mapping[str, Any]) -> branch.BranchContext:
    return branch.context_for(session, core.load_round_branch(session, world["rb_one"].id))


def _evaluation(session: Session, world: Mapping[str, Any]) -> Evaluation:
    return core.load_evaluation(session, world["evaluation"].id)


def _objection(session: Session, world: Mapping[str, Any]) -> Objection:
    return notice.load_objection(session, world["objection"].id)


REFUSED = [
    Case("self_assessment.save", lambda s, w: self_assessment.save(
        s, _evaluation(s, w), principal_for(w["member"], w["ones"][2]), {}, "承诺", "小结", submit=True,
        version=w["evaluation"].version)),
    Case("self_assessment.write_self", lambda s, w: self_assessment.write_self(
        s, _evaluation(s, w), {}, "承诺", "小结")),
    Case("branch.take_step", lambda s, w: branch.take_step(s, _ctx(s, w), "start_joint")),
    Case("branch.return_self", lambda s, w: branch.return_self(
        s, _ctx(s, w), _evaluation(s, w), "请重填", w["evaluation"].version)),
    Case("branch.enter_self", lambda s, w: branch.enter_self(
        s, _ctx(s, w), _evaluation(s, w), {"pledge": "x"}, w["evaluation"].version)),
    Case("branch.save_meeting", lambda s, w: branch.save_meeting(
        s, _ctx(s, w), {"meeting_date": "2026-04-10", "members_present": "3", "public_present": "2"},
        w["rb_one"].version)),
    Case("branch.save_joint", lambda s, w: branch.save_joint(s, _ctx(s, w), {})),
    Case("branch.save_review", lambda s, w: branch.save_review(s, _ctx(s, w), {})),
    Case("notice.file_objection", lambda s, w: notice.file_objection(
        s, core.load_round_branch(s, w["rb_one"].id), text="评定不实")),
    Case("notice.answer_objection", lambda s, w: notice.answer_objection(
        s, core.load_round_branch(s, w["rb_one"].id), _objection(s, w), upheld=False, reason="不予采纳",
        version=w["objection"].version)),
    Case("notice.finalise", lambda s, w: notice.finalise(s, core.load_round_branch(s, w["rb_one"].id))),
    Case("committee.return_branch", lambda s, w: committee.return_branch(
        s, core.load_round_branch(s, w["rb_one"].id), reason="请复核", version=w["rb_one"].version)),
    Case("closing.close_round", lambda s, w: closing.close_round(s, core.load_round(s, w["round"].id))),
    Case("closing.extend_deadline", lambda s, w: closing.extend_deadline(
        s, core.load_round(s, w["round"].id), "review", dt.date(2026, 12, 30), "延期")),
    Case("scoring.score_round", lambda s, w: scoring.score_round(s, core.load_round(s, w["round"].id))),
]


@pytest.fixture
def closed(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """The opened round with branch one scored (五星, 四星, 不予评星) and an objection still open on its
    notice, both branches reported and the round closed."""
    rb_one = put_on_notice(session, opened, "one")
    evaluation = evaluation_of(session, opened, opened["ones"][2])
    objection = add_objection(session, opened, rb_one, evaluation=evaluation)
    finalise_directly(session, opened, rb_one)
    finalise_directly(session, opened, round_branch_of(session, opened, "two"))
    with tenant_context(opened["tenant"].id):
        closing.close_round(session, opened["round"])
        session.flush()
    assert opened["round"].state is RoundState.CLOSED
    return {**opened, "rb_one": rb_one, "evaluation": evaluation, "objection": objection}


def test_every_service_function_is_classified() -> None:
    assert_classified(PACKAGE, READ_ONLY, ALLOWED, [case.name for case in REFUSED])


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_a_writer_refuses_on_a_closed_round_and_writes_nothing(
    session: Session, closed: dict[str, Any], case: Case
) -> None:
    with tenant_context(closed["tenant"].id):
        assert_refused_and_unchanged(session, closed, case, tenant_models(models), CLOSED)


def test_the_guard_lets_an_open_round_through(session: Session, opened: dict[str, Any]) -> None:
    """The same guard on an open round: no refusal (the writers' own checks then apply)."""
    with tenant_context(opened["tenant"].id):
        core.ensure_open(opened["round"])
        assert scoring.score_round(session, opened["round"]) == 0  # nothing scored yet, and not refused


# --- the web layer answers 409 ------------------------------------------------------------------------------


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def test_pages_answer_409_on_a_closed_round(
    client: FlaskClient, login: Any, session: Session, closed: dict[str, Any]
) -> None:
    tenant_id = closed["tenant"].id
    slug = closed["tenant"].slug
    rb_id = closed["rb_one"].id
    with tenant_context(tenant_id):
        before = snapshot(session, tenant_models(models), tenant_id)
    login(closed["tenant"], closed["admin"])
    returned = client.post(f"/t/{slug}/rounds/branches/{rb_id}/return",
                           data={"reason": "请复核", "version": str(closed["rb_one"].version)})
    assert returned.status_code == 409 and CLOSED in _text(returned)
    client.post(f"/t/{slug}/logout")
    login(closed["tenant"], closed["secretary"])
    stepped = client.post(f"/t/{slug}/rounds/branch/{rb_id}/step", data={"transition": "start_joint"})
    assert stepped.status_code == 409 and CLOSED in _text(stepped)
    with tenant_context(tenant_id):
        session.expire_all()
        assert snapshot(session, tenant_models(models), tenant_id) == before
        assert session.scalar(select(RoundBranch.step).where(RoundBranch.id == rb_id)) == "finalised"
