"""Nothing changes silently after a branch rating is finalised (定星并公布; 不得随意更改测评和考核结果).

Every public function of the branch-rating services is classified below: a writer of levels,
decisions or what they rest on (荐星 scores, answers, evidence, the 议星 meeting and its ballots and
tallies, the opinion, the organisation's forwarding or return, the committee's decisions, the
meeting that finalised them, deadlines) is listed with a call proving it refuses (409, the same
message) and writes nothing; the rest are read-only or allowed for a stated reason. A new public
function fails `test_every_service_function_is_classified` until someone decides which it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.branch_rounds import (
    ballot_casting,
    ballot_closing,
    ballot_codes,
    ballot_meeting,
    ballot_tallies,
    committee,
    core,
    decision,
    evidence,
    models,
    opinion,
    org_review,
    recommend,
)
from fivestar.branch_rounds.models import (
    BallotCode,
    BallotMeeting,
    BranchRating,
    BranchRound,
    BranchRoundState,
    EvidenceFile,
    MeetingState,
    VoterGroup,
)
from fivestar.tenancy import tenant_context
from tests.branch.ballot_support import BOX_SECRET
from tests.finalised_support import Case, assert_classified, assert_refused_and_unchanged, snapshot, tenant_models

FINALISED = "本年度星级评定已定星公布，不能再更改"
PACKAGE = "fivestar.branch_rounds"
CODE = ballot_codes.new_code()

# Read-only: they compute, format, check, load or list; none writes the database.
READ_ONLY = {
    "ballot_meeting.ballot_shortfalls", "ballot_meeting.context_for", "ballot_meeting.form_count",
    "ballot_meeting.form_text", "ballot_meeting.group_label", "ballot_meeting.issued_counts",
    "ballot_meeting.load_meeting", "ballot_meeting.meeting_or_refuse", "ballot_meeting.public_minimum",
    "ballot_meeting.public_shortfall", "ballot_meeting.refuse", "ballot_meeting.state_label",
    "ballot_codes.ballots_cast", "ballot_codes.code_hash", "ballot_codes.code_hashes", "ballot_codes.format_code",
    "ballot_codes.legacy_code_hash", "ballot_codes.new_code", "ballot_codes.normalise_code",
    "ballot_casting.check_code", "ballot_casting.choice_field", "ballot_casting.parse_choice",
    "ballot_closing.electronic_per_group",
    "ballot_tallies.paper_ballots", "ballot_tallies.paper_tallies", "ballot_tallies.tally_field",
    "ballot_results.group_counts", "ballot_results.has_results", "ballot_results.results",
    "ballot_results.results_for_rating", "ballot_results.results_for_ratings", "ballot_results.summary_text",
    "ballot_results.weighted_summaries",
    "ballot_box.count", "ballot_box.open_box", "ballot_box.plain", "ballot_box.seal", "ballot_box.unseal",
    "ballot_slips.draw_qr", "ballot_slips.slips_pdf",
    "committee.ballot_summaries", "committee.branch_table", "committee.deadline_label",
    "committee.my_ratings", "committee.quota_guidance", "committee.quota_message", "committee.ratings_by_step",
    "committee.round_state_label", "committee.rounds_overview", "committee.table_guidance",
    "core.answers_of", "core.branch_input", "core.ensure_open", "core.evaluate", "core.facts_for",
    "core.middle_organisation", "core.round_rules", "core.scores_of",
    "decision.ballot_result", "decision.build_dossier", "decision.decision_time", "decision.level_ceiling",
    "decision.org_history", "decision.parse_level", "decision.quarterly_as_decided", "decision.quarterly_of_year",
    "decision.reference_level", "decision.round_guidance",
    "evidence.clean_name", "evidence.download_name",
    "evidence.files_by_criterion", "evidence.inspect_upload",
    "evidence.load", "evidence.path_of", "evidence.read", "worklist.pending",
    "opening.default_deadlines",
    "org_review.queue",
    "publication.plaque_facts", "publication.public_page_url", "publication.published_round",
    "publication.published_years",
    "quarterly.branch_reviews", "quarterly.check_field", "quarterly.checked_quarter", "quarterly.enabled",
    "quarterly.find_review", "quarterly.is_rated_branch", "quarterly.load_review", "quarterly.parse_checks",
    "quarterly.quarter_label", "quarterly.quarter_of", "quarterly.quarter_overview", "quarterly.quarter_start",
    "quarterly.started_quarters", "quarterly.tenant_rules",
    "recommend.answer_name", "recommend.context_for", "recommend.edit_refusal", "recommend.evaluate_input",
    "recommend.evaluate_stored", "recommend.explanation_name", "recommend.form_values", "recommend.guard_editable",
    "recommend.missing_fields", "recommend.note_name", "recommend.parse", "recommend.parse_number",
    "recommend.plain", "recommend.preview", "recommend.questions", "recommend.reason_text",
    "recommend.result_document", "recommend.score_name", "recommend.stored", "recommend.validate",
    "recommend_pages.anchor", "recommend_pages.dashboard", "recommend_pages.evaluate_rows",
    "recommend_pages.local_day", "recommend_pages.open_ratings", "recommend_pages.recommend_page",
    "workflow.finalised_refusal", "workflow.meeting_refusal", "workflow.next_after_opinion", "workflow.refusal",
    "workflow.round_refusal", "workflow.step_label",
}

# Writers that are not results, or that never change a finalised round.
ALLOWED = {
    # 一季一小评 is the branch's running self-check, not part of a round; a finalised round's dossier
    # shows only the reviews and comments made by the decision (decision.quarterly_as_decided).
    "quarterly.save_review": "not a result; the decided dossier leaves later reviews out",
    "quarterly.comment": "not a result; the decided dossier leaves later comments out",
    "opening.open_branch_round": "a new year's round; a finalised one is never reopened",
    "publication.notify_results": "the result notices of a finalised round (outbox), refused before it",
    "ballot_meeting.flush_or_conflict": "the flush helper the guarded 议星 writers call after their refusal",
    "ballot_box.put": "drops a sealed ballot into the box; only cast_ballot calls it, after its refusal",
    "ballot_box.empty_box": "empties the box; only close_voting calls it, after its refusal",
    "ballot_box.checkpoint": "truncates SQLite's write-ahead log after a close; writes no row",
    "decision.record_final_levels": "writes the level history at finalising; never a round's result",
}


def _rating(session: Session, world: Mapping[str, Any]) -> BranchRating:
    return core.load_rating(session, world["published_one"].id)


def _round(session: Session, world: Mapping[str, Any]) -> BranchRound:
    return core.load_round(session, world["published_round"].id)


def _rctx(session: Session, world: Mapping[str, Any]) -> recommend.RatingContext:
    return recommend.context_for(session, _rating(session, world))


def _mctx(session: Session, world: Mapping[str, Any]) -> ballot_meeting.MeetingContext:
    return ballot_meeting.context_for(session, _rating(session, world))


def _v(world: Mapping[str, Any], key: str = "published_one") -> int:
    return int(world[key].version)


REFUSED = [
    Case("recommend.save", lambda s, w: recommend.save(s, _rctx(s, w), {}, version=_v(w))),
    Case("recommend.submit", lambda s, w: recommend.submit(s, _rctx(s, w), version=_v(w))),
    Case("recommend.take_step", lambda s, w: recommend.take_step(
        s, _rctx(s, w), "submit_recommendation", version=_v(w))),
    Case("evidence.store", lambda s, w: evidence.store(
        s, _rctx(s, w), "leadership", "secretary", [evidence.Upload("述职.pdf", b"%PDF-1.4\n")], root=w["root"],
        limits=evidence.Limits())),
    Case("evidence.delete", lambda s, w: evidence.delete(
        s, _rctx(s, w), evidence.load(s, w["evidence"].id), root=w["root"])),
    Case("ballot_meeting.save_meeting", lambda s, w: ballot_meeting.save_meeting(
        s, _mctx(s, w), {"meeting_date": "2025-02-01", "place": "会议室", "members_count": "3"},
        w["meeting"].version)),
    Case("ballot_codes.issue_slips", lambda s, w: ballot_codes.issue_slips(
        s, _mctx(s, w), w["meeting"].version, secret_key=BOX_SECRET)),
    Case("ballot_codes.reissue_slips", lambda s, w: ballot_codes.reissue_slips(
        s, _mctx(s, w), w["meeting"].version, secret_key=BOX_SECRET)),
    Case("ballot_closing.close_voting", lambda s, w: ballot_closing.close_voting(
        s, _mctx(s, w), w["meeting"].version, secret_key=BOX_SECRET)),
    Case("ballot_tallies.save_tallies", lambda s, w: ballot_tallies.save_tallies(
        s, _mctx(s, w), {}, w["meeting"].version)),
    # The voter's page claims the code first (one conditional UPDATE, see cast_ballot); the refusal
    # is a 409 and the page's rollback gives the code back.
    Case("ballot_casting.cast_ballot", lambda s, w: ballot_casting.cast_ballot(
        s, w["tenant"].id, CODE, {"level": "5"}, secret_key=BOX_SECRET), claims_first=True),
    Case("opinion.save_opinion", lambda s, w: opinion.save_opinion(
        s, _mctx(s, w), {"opinion_level": "5", "opinion_statement": "建议五星"}, _v(w))),
    Case("opinion.submit_opinion", lambda s, w: opinion.submit_opinion(s, _mctx(s, w), _v(w))),
    Case("org_review.forward", lambda s, w: org_review.forward(
        s, _round(s, w), _rating(s, w), "同意报送", version=_v(w))),
    Case("org_review.org_return", lambda s, w: org_review.org_return(
        s, _round(s, w), _rating(s, w), "请补充材料", version=_v(w))),
    Case("decision.decide", lambda s, w: decision.decide(
        s, _round(s, w), _rating(s, w), 5, "重新研究", version=_v(w))),
    Case("decision.finalise_round", lambda s, w: decision.finalise_round(
        s, _round(s, w), meeting_date=dt.date(2025, 2, 20), participants="工委委员丙",
        version=w["published_round"].version)),
    Case("committee.extend_deadline", lambda s, w: committee.extend_deadline(
        s, _round(s, w), "committee", dt.date(2025, 3, 31), "延期")),
]


@pytest.fixture
def finalised(session: Session, published: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The finalised 2024 round of `published`, with an evidence file and a 议星 meeting left voting with
    an unused code on branch one's rating (which no service path leaves behind: the worst case)."""
    tenant_id = published["tenant"].id
    rating = published["published_one"]
    with tenant_context(tenant_id):
        file = EvidenceFile(
            tenant_id=tenant_id, rating_id=rating.id, indicator_key="leadership", criterion_key="secretary",
            original_name="党课记录.pdf", content_type="application/pdf", size=10, sha256="0" * 64,
            storage_key="k-finalised", uploaded_by="赵书记",
        )
        meeting = BallotMeeting(
            tenant_id=tenant_id, rating_id=rating.id, meeting_date=dt.date(2025, 1, 20), place="会议室",
            members_count=3, state=MeetingState.VOTING,
        )
        session.add_all([file, meeting])
        session.flush()
        session.add(BallotCode(tenant_id=tenant_id, meeting_id=meeting.id, group=VoterGroup.MEMBERS,
                               code_hash=ballot_codes.code_hash(CODE, BOX_SECRET), used=False))
        session.flush()
    assert published["published_round"].state is BranchRoundState.FINALISED
    return {**published, "evidence": file, "meeting": meeting, "root": tmp_path}


def test_every_service_function_is_classified() -> None:
    assert_classified(PACKAGE, READ_ONLY, ALLOWED, [case.name for case in REFUSED])


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_a_writer_refuses_on_a_finalised_round_and_writes_nothing(
    session: Session, finalised: dict[str, Any], case: Case
) -> None:
    with tenant_context(finalised["tenant"].id):
        assert_refused_and_unchanged(session, finalised, case, tenant_models(models), FINALISED)
    assert not any(finalised["root"].iterdir()), "no evidence file may be written either"


# --- the web layer answers 409 ------------------------------------------------------------------------------


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def test_pages_answer_409_on_a_finalised_round(
    client: FlaskClient, login: Any, session: Session, finalised: dict[str, Any]
) -> None:
    tenant_id = finalised["tenant"].id
    slug = finalised["tenant"].slug
    rating_id = finalised["published_one"].id
    version = str(finalised["published_one"].version)
    with tenant_context(tenant_id):
        before = snapshot(session, tenant_models(models), tenant_id)
    login(finalised["tenant"], finalised["org_staff"])
    forwarded = client.post(f"/t/{slug}/branch-rating/org-review/{rating_id}/forward",
                            data={"comment": "同意报送", "version": version})
    assert forwarded.status_code == 409 and FINALISED in _text(forwarded)
    client.post(f"/t/{slug}/logout")
    login(finalised["tenant"], finalised["committee"])
    decided = client.post(f"/t/{slug}/branch-rating/dossier/{rating_id}/decide",
                          data={"level": "5", "reason": "重新研究", "version": version})
    assert decided.status_code == 409 and FINALISED in _text(decided)
    with tenant_context(tenant_id):
        session.expire_all()
        assert snapshot(session, tenant_models(models), tenant_id) == before
