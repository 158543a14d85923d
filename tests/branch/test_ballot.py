"""议星 services: the meeting, single-use codes, casting, closing, paper tallies and results — each
step and its refusals, on both databases."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import (
    ballot_box,
    ballot_casting,
    ballot_codes,
    ballot_meeting,
    ballot_results,
    ballot_tallies,
)
from fivestar.branch_rounds.models import Ballot, BallotBoxEntry, BallotCode, MeetingState, PaperTally, VoterGroup
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from tests.branch.ballot_support import (
    BOX_SECRET,
    as_tenant,
    cast,
    close,
    codes_of,
    ctx_of,
    issue,
    meeting_of,
    setup_meeting,
    tally,
    use_rules,
)

D = Decimal


def _events(session: Session, world: dict[str, Any], action: str) -> list[AuditEvent]:
    with as_tenant(world):
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- codes -------------------------------------------------------------------------------------------


def test_codes_are_random_unambiguous_and_normalised() -> None:
    codes = {ballot_codes.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 10 and set(c) <= set(ballot_codes.CODE_ALPHABET) for c in codes)
    assert not set("0O1IL") & set(ballot_codes.CODE_ALPHABET)
    code = "ABCDE23456"
    assert ballot_codes.format_code(code) == "ABCDE-23456"
    assert ballot_codes.normalise_code(" abcde-23456 ") == code
    assert ballot_codes.normalise_code("ABCDE 23456") == code
    for bad in ("ABCDE2345", "ABCDE234567", "ABCDE2345O", "ABCDE23451", None, 12345):
        assert ballot_codes.normalise_code(bad) is None
    assert ballot_codes.legacy_code_hash(code) == hashlib.sha256(code.encode()).hexdigest()
    # stored keyed: without the instance's key a copy of the database cannot be searched for codes
    keyed = ballot_codes.code_hash(code, BOX_SECRET)
    assert len(keyed) == 64
    assert keyed not in (ballot_codes.legacy_code_hash(code), ballot_codes.code_hash(code, "other" * 9))


# --- the meeting -------------------------------------------------------------------------------------


def test_setup_records_the_meeting_and_audits_it(session: Session, deliberating: dict[str, Any]) -> None:
    saved = setup_meeting(session, deliberating, members=3, public=2, deputies=1)
    meeting = saved.meeting
    assert (meeting.members_count, meeting.public_count, meeting.deputies_count) == (3, 2, 1)
    assert meeting.state is MeetingState.SETUP and meeting.place == "三楼会议室"
    assert saved.warning is None  # the notice sample sets no minimum for the 议星 meeting
    again = setup_meeting(session, deliberating, members=4, public=2, deputies=0, place="党员活动室")
    assert again.meeting.id == meeting.id and again.meeting.members_count == 4
    events = _events(session, deliberating, "ballot_meeting.setup")
    assert len(events) == 2 and events[1].before["members_count"] == 3 and events[1].after["place"] == "党员活动室"


def test_setup_refuses_bad_input_field_by_field(session: Session, deliberating: dict[str, Any]) -> None:
    ctx = ctx_of(session, deliberating)
    with as_tenant(deliberating), pytest.raises(ballot_meeting.FormError) as info:
        ballot_meeting.save_meeting(
            session, ctx,
            {"meeting_date": "2026-13-01", "place": "", "members_count": "-1", "public_count": "x"}, 0,
        )
    assert set(info.value.errors) == {"meeting_date", "place", "members_count", "public_count"}
    with as_tenant(deliberating), pytest.raises(ballot_meeting.FormError) as info:
        ballot_meeting.save_meeting(session, ctx, {"meeting_date": "2026-01-20", "place": "会议室"}, 0)
    assert set(info.value.errors) == {"members_count"}  # nobody attends
    with as_tenant(deliberating), pytest.raises(ballot_meeting.FormError) as info:
        ballot_meeting.save_meeting(
            session, ctx, {"meeting_date": "2025-12-31", "place": "会议室", "members_count": "3"}, 0
        )
    assert "早于" in info.value.errors["meeting_date"]


def test_public_representatives_below_the_rules_minimum_is_a_warning_with_numbers(
    session: Session, deliberating: dict[str, Any]
) -> None:
    use_rules(session, deliberating, "zoucheng-public-weighted")  # 群众代表 ≥ 20 % of the members
    ctx = ctx_of(session, deliberating)
    assert ctx.members == 3 and ballot_meeting.public_minimum(ctx) == 1
    saved = setup_meeting(session, deliberating, members=3, public=0, deputies=1)
    assert saved.warning == "群众代表 0 人，少于本支部党员人数 3 的 20%（至少应有 1 人）"
    assert saved.meeting.id is not None  # recorded anyway, and the reason audited
    assert saved.warnings[0] == saved.warning
    assert _events(session, deliberating, "ballot_meeting.setup")[-1].reason == "；".join(saved.warnings)
    assert setup_meeting(session, deliberating, members=3, public=1, deputies=1).warning is None


def test_a_group_below_the_minimum_of_ballots_is_warned_at_setup(
    session: Session, deliberating: dict[str, Any]
) -> None:
    """Said when the meeting is set up, not found out as 票数不足 after the vote."""
    ctx = ctx_of(session, deliberating)
    assert ctx.ballot.min_ballots == 5  # the notice sample's minimum
    saved = setup_meeting(session, deliberating, members=6, public=4, deputies=0)
    assert saved.warnings == (
        "群众代表 4 人，少于规则要求的最低票数 5 张：该群体的测评结果将不予显示，也不计入加权结果",
    )
    assert _events(session, deliberating, "ballot_meeting.setup")[-1].reason == saved.warnings[0]
    # a group that does not attend is no shortfall; one at the minimum neither
    assert setup_meeting(session, deliberating, members=5, public=5, deputies=0).warnings == ()


def test_two_secretaries_saving_the_same_version_one_conflicts(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating)
    first = ctx_of(session, deliberating)
    assert first.meeting is not None
    opened_version = first.meeting.version
    raw = {"meeting_date": "2026-01-21", "place": "A", "members_count": "3"}
    with as_tenant(deliberating):
        ballot_meeting.save_meeting(session, first, raw, opened_version)
        session.flush()
        with pytest.raises(ConflictError):
            ballot_meeting.save_meeting(session, ctx_of(session, deliberating), {**raw, "place": "B"}, opened_version)
    assert meeting_of(session, deliberating).place == "A"


# --- issuing -----------------------------------------------------------------------------------------


def test_issuing_stores_only_hashes_starts_voting_and_never_audits_a_code(
    session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating, members=3, public=2, deputies=1)
    issued = issue(session, deliberating)
    assert sorted(s.group.value for s in issued.slips) == ["deputies", "members", "members", "members", "public",
                                                           "public"]
    meeting = meeting_of(session, deliberating)
    assert meeting.state is MeetingState.VOTING and meeting.slips_issued_at is not None
    with as_tenant(deliberating):
        rows = session.execute(select(BallotCode.group, BallotCode.code_hash, BallotCode.used)).all()
        events = session.scalars(select(AuditEvent)).all()
    assert sorted((g.value, h) for g, h, _u in rows) == sorted(
        (s.group.value, ballot_codes.code_hash(s.code, BOX_SECRET)) for s in issued.slips
    )
    assert not any(used for *_x, used in rows)
    dump = json.dumps([[e.action, e.before, e.after, e.reason] for e in events], ensure_ascii=False)
    for slip in issued.slips:
        assert slip.code not in dump and ballot_codes.format_code(slip.code) not in dump
        assert all(slip.code not in h for _g, h, _u in rows)
    issued_event = _events(session, deliberating, "ballot_meeting.issue_slips")[0]
    assert issued_event.after["codes"] == {"members": 3, "public": 2, "deputies": 1}


def test_setup_after_issuing_and_issuing_twice_are_refused(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating)
    issue(session, deliberating)
    with pytest.raises(ConflictError, match="测评已开始"):
        setup_meeting(session, deliberating, members=9)
    with pytest.raises(ConflictError, match="测评已开始"):
        issue(session, deliberating)
    with as_tenant(deliberating):
        assert session.scalar(select(func.count()).select_from(BallotCode)) == 14


def test_issuing_without_a_meeting_or_with_a_stale_version_is_refused(
    session: Session, deliberating: dict[str, Any]
) -> None:
    ctx = ctx_of(session, deliberating)
    with as_tenant(deliberating), pytest.raises(ConflictError, match="会议安排"):
        ballot_codes.issue_slips(session, ctx, 1, secret_key=BOX_SECRET)
    setup_meeting(session, deliberating)
    ctx = ctx_of(session, deliberating)
    with as_tenant(deliberating), pytest.raises(ConflictError, match="他人修改"):
        ballot_codes.issue_slips(session, ctx, 99, secret_key=BOX_SECRET)


def test_reissue_revokes_every_code_until_a_ballot_is_cast(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating, members=5, public=0, deputies=0)
    first = issue(session, deliberating)
    ctx = ctx_of(session, deliberating)
    assert ctx.meeting is not None
    with as_tenant(deliberating):
        second = ballot_codes.reissue_slips(session, ctx, ctx.meeting.version, secret_key=BOX_SECRET)
        session.flush()
    assert len(second.slips) == 5 and not {s.code for s in first.slips} & {s.code for s in second.slips}
    with pytest.raises(ServiceError, match="测评码无效"):
        cast(session, deliberating, first.slips[0].code, level=5)
    cast(session, deliberating, second.slips[0].code, level=5)
    ctx = ctx_of(session, deliberating)
    assert ctx.meeting is not None
    with as_tenant(deliberating), pytest.raises(ConflictError, match="已有 1 张"):
        ballot_codes.reissue_slips(session, ctx, ctx.meeting.version, secret_key=BOX_SECRET)
    assert _events(session, deliberating, "ballot_meeting.reissue")[0].after["revoked"] == 5


# --- casting -----------------------------------------------------------------------------------------


def test_a_code_casts_exactly_one_anonymous_ballot(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating, members=2, public=1, deputies=0)
    issued = issue(session, deliberating)
    public_code = codes_of(issued, "public")[0]
    with as_tenant(deliberating):
        voting = ballot_casting.check_code(
            session, deliberating["tenant"].id, ballot_codes.format_code(public_code).lower(), secret_key=BOX_SECRET
        )
    assert voting.group is VoterGroup.PUBLIC and voting.branch_name == "预算科党支部"
    cast(session, deliberating, public_code, level=4)
    with as_tenant(deliberating):
        hashed = ballot_codes.code_hash(public_code, BOX_SECRET)
        used = session.scalar(select(BallotCode.used).where(BallotCode.code_hash == hashed))
        (boxed,) = session.scalars(select(BallotBoxEntry)).all()
        assert not session.scalars(select(Ballot)).all(), "nothing is counted before the close"
    # sealed: neither the group nor the level can be read from the box, and every entry is one size
    assert used and len(boxed.id) == 32 and b"public" not in boxed.sealed and b'"l":4' not in boxed.sealed
    assert len(boxed.sealed) == 1 + 12 + ballot_box.PADDED_BYTES + 16
    with pytest.raises(ConflictError, match="已经使用过"):
        cast(session, deliberating, public_code, level=3)
    close(session, deliberating)
    with as_tenant(deliberating):
        (row,) = session.scalars(select(Ballot)).all()
        assert not session.scalars(select(BallotBoxEntry)).all(), "the box is empty once voting closed"
    assert (row.group, row.level, row.ratings) == (VoterGroup.PUBLIC, 4, None) and len(row.id) == 32
    assert row.id != boxed.id
    # no audit event per ballot: its time would line up with the code's use
    with as_tenant(deliberating):
        assert not session.scalars(select(AuditEvent).where(AuditEvent.action.like("%cast%"))).all()


def test_unknown_malformed_and_foreign_codes_are_refused_as_invalid(
    session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating)
    issue(session, deliberating)
    for text in ("ABCDE-FGHJK", "short", ""):
        with pytest.raises(ServiceError, match="测评码无效") as info:
            cast(session, deliberating, text, level=5)
        assert info.value.status == 400 and info.value.field == "code"
        assert "ABCDE" not in info.value.message


def test_a_bad_answer_leaves_the_code_unused(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating)
    code = codes_of(issue(session, deliberating), "members")[0]
    for answers in ({"level": 9}, {"level": "五"}, {}):
        nested = session.begin_nested()
        with pytest.raises(ballot_meeting.FormError) as info:
            cast(session, deliberating, code, **answers)
        nested.rollback()
        assert set(info.value.errors) == {"level"}
    cast(session, deliberating, code, level=0)  # 无星 is an answer too
    close(session, deliberating)
    with as_tenant(deliberating):
        assert session.scalar(select(Ballot.level)) == 0


def test_casting_after_closing_is_refused_and_remaining_codes_die(
    session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating, members=3, public=0, deputies=0)
    codes = codes_of(issue(session, deliberating), "members")
    cast(session, deliberating, codes[0], level=5)
    totals = close(session, deliberating)
    assert totals == {"members": 1, "public": 0, "deputies": 0}
    with pytest.raises(ConflictError, match="本次测评已结束"):
        cast(session, deliberating, codes[1], level=5)
    with as_tenant(deliberating):
        assert session.scalar(select(func.count()).select_from(BallotCode).where(BallotCode.used.is_(False))) == 0
    event = _events(session, deliberating, "ballot_meeting.close")[0]
    assert event.after["ballots"] == {"members": 1, "public": 0, "deputies": 0}
    assert event.after["codes_unused"] == 2 and event.after["codes"]["members"] == 3


def test_closing_twice_and_tallies_before_issuing_are_refused(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating)
    with pytest.raises(ConflictError, match="请先发放测评票"):
        tally(session, deliberating, {"tally.members._.5": 1})
    with pytest.raises(ConflictError, match="测评未在进行中"):
        close(session, deliberating)
    issue(session, deliberating)
    close(session, deliberating)
    with pytest.raises(ConflictError, match="测评未在进行中"):
        close(session, deliberating)


def test_nothing_changes_once_the_opinion_went_up(session: Session, deliberating: dict[str, Any]) -> None:
    from fivestar.branch_rounds.models import RatingStep

    setup_meeting(session, deliberating)
    codes = codes_of(issue(session, deliberating), "members")
    with as_tenant(deliberating):
        with seeding():
            deliberating["rating_one"].step = RatingStep.ORG_REVIEW
        session.flush()
    with pytest.raises(ConflictError, match="本次测评已结束"):
        cast(session, deliberating, codes[0], level=5)
    with pytest.raises(ConflictError, match="议星会议不能更改"):
        close(session, deliberating)


# --- tallies and results -----------------------------------------------------------------------------


def test_results_are_hidden_until_closed_and_below_the_minimum(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating, members=6, public=4, deputies=0)
    issued = issue(session, deliberating)
    for code in codes_of(issued, "members")[:5]:
        cast(session, deliberating, code, level=5)
    for code in codes_of(issued, "public"):
        cast(session, deliberating, code, level=1)
    assert ballot_results.results(session, ctx_of(session, deliberating)) is None  # voting: nothing shown
    close(session, deliberating)
    with as_tenant(deliberating):
        result = ballot_results.results(session, ctx_of(session, deliberating))
    assert result is not None
    members, public, deputies = result.groups
    assert (members.ballots, members.shown, members.mean) == (5, True, D("5.00"))
    assert (public.ballots, public.shown, public.items, public.mean) == (4, False, (), None)
    assert deputies.ballots == 0 and not deputies.shown
    # the hidden group is left out of the weighted result too (else its mean could be worked back)
    assert result.weighted == D("5.00") and result.left_out == ("public",) and result.used_groups == ("members",)


def test_weighted_result_of_mixed_electronic_and_paper_ballots_by_hand(
    session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating, members=8, public=6, deputies=2)
    issued = issue(session, deliberating)
    for code, level in zip(codes_of(issued, "members"), (5, 5, 4, 4, 4, 3), strict=False):
        cast(session, deliberating, code, level=level)
    cast(session, deliberating, codes_of(issued, "public")[0], level=4)
    cast(session, deliberating, codes_of(issued, "deputies")[0], level=5)
    close(session, deliberating)
    # paper: one member gave 三星; four public representatives: 2 × 四星, 2 × 三星
    tally(session, deliberating, {"tally.members._.3": 1, "tally.public._.4": 2, "tally.public._.3": 2})
    with as_tenant(deliberating):
        result = ballot_results.results(session, ctx_of(session, deliberating))
    assert result is not None
    members, public, deputies = result.groups
    # members: 5+5+4+4+4+3 electronic + 3 paper = 28 / 7 = 4.00
    assert (members.ballots, members.mean) == (7, D("4.00"))
    assert members.items[0].distribution == ((5, "五星", 2), (4, "四星", 3), (3, "三星", 2), (2, "二星", 0),
                                             (1, "一星", 0), (0, "无星", 0))
    # public: 4 electronic + 4+4+3+3 paper = 18 / 5 = 3.60
    assert (public.ballots, public.mean) == (5, D("3.60"))
    assert deputies.ballots == 1 and not deputies.shown
    # (0.5 × 4 + 0.3 × 3.6) / (0.5 + 0.3) = 3.08 / 0.8 = 3.85
    assert result.weighted == D("3.85") and result.used_groups == ("members", "public")
    assert result.left_out == ("deputies",) and result.satisfaction is None


def test_paper_only_results(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating, members=5, public=0, deputies=0)
    issue(session, deliberating)
    close(session, deliberating)
    tally(session, deliberating, {"tally.members._.5": 1, "tally.members._.4": 4})
    with as_tenant(deliberating):
        ctx = ctx_of(session, deliberating)
        result = ballot_results.results(session, ctx)
        assert ballot_results.has_results(session, ctx)
    assert result is not None and result.group("members").ballots == 5 and result.weighted == D("4.20")
    with as_tenant(deliberating):
        rows = session.scalar(select(func.count()).select_from(PaperTally))
    assert rows == 2
    event = _events(session, deliberating, "ballot_meeting.tally")[0]
    assert event.after == {"members/level/4": 4, "members/level/5": 1} and event.before == {}


def test_tallies_cannot_exceed_the_attendees_and_conflict_on_a_stale_version(
    session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating, members=3, public=0, deputies=0)
    codes = codes_of(issue(session, deliberating), "members")
    cast(session, deliberating, codes[0], level=5)
    with pytest.raises(ballot_meeting.FormError) as info:
        tally(session, deliberating, {"tally.members._.4": 3})
    assert "超过参会人数 3" in info.value.errors["tally.members"]
    with pytest.raises(ballot_meeting.FormError) as info:
        tally(session, deliberating, {"tally.members._.4": -1, "tally.public._.4": "many"})
    assert set(info.value.errors) == {"tally.members._.4", "tally.public._.4"}
    ctx = ctx_of(session, deliberating)
    assert ctx.meeting is not None
    version = ctx.meeting.version
    with as_tenant(deliberating):
        ballot_tallies.save_tallies(session, ctx, {"tally.members._.4": "2"}, version)
        session.flush()
        with pytest.raises(ConflictError):
            ballot_tallies.save_tallies(session, ctx_of(session, deliberating), {"tally.members._.3": "1"}, version)


def test_indicators_form_with_satisfaction(session: Session, deliberating: dict[str, Any]) -> None:
    use_rules(session, deliberating, "shizhi-110")  # 好/较好/一般/差 per indicator; 满意 = 较好 or better
    ctx = ctx_of(session, deliberating)
    keys = [item.key for item in ctx.items]
    assert ctx.ballot.form == "indicators" and len(keys) == 8
    setup_meeting(session, deliberating, members=0, public=5, deputies=0)
    issued = issue(session, deliberating)
    for index, code in enumerate(codes_of(issued, "public")):
        cast(session, deliberating, code, **{key: (4 if index < 3 else 2) for key in keys})
    close(session, deliberating)
    with as_tenant(deliberating):
        result = ballot_results.results(session, ctx_of(session, deliberating))
        stored = session.scalars(select(Ballot.ratings)).all()
    assert all(set(r or {}) == set(keys) for r in stored)
    assert result is not None and result.form == "indicators"
    public = result.group("public")
    assert public.shown and public.mean == D("3.20")  # (3 × 4 + 2 × 2) / 5 per indicator
    assert all(mean == D("3.20") for _item, mean in result.items) and result.weighted == D("3.20")
    assert result.satisfaction == D("0.6000")


def test_partial_indicator_ballots_are_refused(session: Session, deliberating: dict[str, Any]) -> None:
    use_rules(session, deliberating, "shizhi-110")
    setup_meeting(session, deliberating, members=1, public=0, deputies=0)
    code = codes_of(issue(session, deliberating), "members")[0]
    keys = [item.key for item in ctx_of(session, deliberating).items]
    with pytest.raises(ballot_meeting.FormError) as info:
        cast(session, deliberating, code, **{keys[0]: 4, keys[1]: 7})
    assert set(info.value.errors) == {f"item.{k}" for k in keys[1:]}


def test_results_for_another_part(session: Session, deliberating: dict[str, Any]) -> None:
    setup_meeting(session, deliberating, members=5, public=0, deputies=0)
    for code in codes_of(issue(session, deliberating), "members"):
        cast(session, deliberating, code, level=3)
    close(session, deliberating)
    with as_tenant(deliberating):
        result = ballot_results.results_for_rating(session, deliberating["rating_one"])
        none_yet = ballot_results.results_for_rating(session, deliberating["rating_direct"])
    assert result is not None and result.weighted == D("3.00") and none_yet is None
    assert dataclasses.asdict(result)["groups"][0]["ballots"] == 5
