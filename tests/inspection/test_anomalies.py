"""The anomaly report (异常情况): each kind detected, nothing on a clean round, links to the evidence."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import Ballot, BallotMeeting, BranchRating, MeetingState, VoterGroup
from fivestar.inspection import anomalies
from fivestar.member_rounds.models import Objection, ObjectionState, RoundBranch
from fivestar.tenancy import tenant_context
from tests.inspection.conftest import add_event, evaluation_of, set_scores, url

CLEAN = {
    "one": [(90, 85), (80, 80), (70, 72)],
    "two": [(88, 88), (77, 79), (66, 66)],
    "three": [(90, 91), (85, 84), (60, 60)],
}


def _scores(world: dict[str, Any], table: dict[str, list[tuple[int, int]]]) -> dict[Any, tuple[int, int]]:
    return {
        member: pair for key, pairs in table.items() for member, pair in zip(world["members"][key], pairs, strict=True)
    }


def _report(session: Session, world: dict[str, Any], member_round: Any) -> anomalies.Report:
    with tenant_context(world["tenant"].id):
        return anomalies.member_round_report(session, world["tenant"].id, member_round)


def _round_branch(session: Session, world: dict[str, Any], member_round: Any, key: str) -> RoundBranch:
    with tenant_context(world["tenant"].id):
        found = session.scalar(
            select(RoundBranch).where(RoundBranch.round_id == member_round.id, RoundBranch.branch_id == world[key].id)
        )
        assert found is not None
        return found


def test_a_clean_member_round_has_no_anomaly(session: Session, world: dict[str, Any], member_round: Any) -> None:
    set_scores(session, world, member_round, _scores(world, CLEAN))
    rb = _round_branch(session, world, member_round, "one")
    ev = evaluation_of(session, world, member_round, world["members"]["one"][0])
    with tenant_context(world["tenant"].id):
        session.add(Objection(round_branch_id=rb.id, evaluation_id=ev.id, text="有异议",
                              state=ObjectionState.DISMISSED, answer="经核实，评分依据充分。"))
        session.flush()
    add_event(session, world["tenant"], "evaluation.joint", "member_evaluations", ev.id,
              at=dt.datetime(2026, 4, 19, tzinfo=dt.UTC))
    assert _report(session, world, member_round).lines == []


def test_each_member_round_kind_is_detected(session: Session, world: dict[str, Any], member_round: Any) -> None:
    table = {**CLEAN, "one": [(90, 79), (80, 70), (70, 72)], "three": [(80, 80), (81, 80), (79, 80)]}
    set_scores(session, world, member_round, _scores(world, table))
    rb_two = _round_branch(session, world, member_round, "two")
    ev = evaluation_of(session, world, member_round, world["members"]["two"][1])
    with tenant_context(world["tenant"].id):
        session.add(Objection(round_branch_id=rb_two.id, evaluation_id=ev.id, text="分数偏高",
                              state=ObjectionState.DISMISSED, answer="  "))
        member_round.joint_due_at = dt.datetime(2026, 4, 20, tzinfo=dt.UTC)
        session.flush()
    late = add_event(session, world["tenant"], "evaluation.joint", "member_evaluations", ev.id,
                     at=dt.datetime(2026, 4, 21, 6, tzinfo=dt.UTC), actor=world["secretary"])
    add_event(session, world["tenant"], "evaluation.joint", "member_evaluations", ev.id,
              at=dt.datetime(2026, 4, 19, tzinfo=dt.UTC))  # in time
    add_event(session, world["tenant"], "evaluation.review", "member_evaluations", ev.id,
              at=dt.datetime(2026, 4, 21, tzinfo=dt.UTC))  # review is due later: in time
    report = _report(session, world, member_round)
    # 11 points apart is beyond the sample rules' 10; exactly 10 is not.
    gaps = report.of("joint_gap")
    assert [(g.member_name, g.values["evaluation_id"]) for g in gaps] == [
        ("one1", evaluation_of(session, world, member_round, world["members"]["one"][0]).id)
    ]
    assert "11" in gaps[0].detail
    assert [(line.branch_name, line.values) for line in report.of("identical_scores")] == [
        ("第三党支部", {"round_branch_id": _round_branch(session, world, member_round, "three").id})
    ]
    assert [(line.branch_name, line.member_name) for line in report.of("objection_no_reason")] == [
        ("第二党支部", "two2")
    ]
    assert [line.values for line in report.of("late_change")] == [{"event_id": late.id}]
    assert "党群联评评分" in report.of("late_change")[0].detail


def test_a_tolerance_of_the_rules_is_used(
    session: Session, world: dict[str, Any], member_round: Any, monkeypatch: Any
) -> None:
    import dataclasses

    from fivestar.member_rounds import core

    set_scores(session, world, member_round, _scores(world, CLEAN))
    with tenant_context(world["tenant"].id):
        rules = core.round_rules(session, member_round)
    assert rules.member.joint_tolerance == 10
    # A stricter rule set lists the 5-point gap of one1 (90 → 85) and nothing at 4 or less.
    strict = dataclasses.replace(rules, member=dataclasses.replace(rules.member, joint_tolerance=4))
    monkeypatch.setattr(core, "round_rules", lambda _session, _round: strict)
    report = _report(session, world, member_round)
    assert [line.member_name for line in report.of("joint_gap")] == ["one1"]


def _rating(session: Session, world: dict[str, Any], branch_round: Any, key: str) -> BranchRating:
    with tenant_context(world["tenant"].id):
        found = session.scalar(
            select(BranchRating).where(
                BranchRating.round_id == branch_round.id, BranchRating.branch_id == world[key].id
            )
        )
        assert found is not None
        return found


def _closed_ballot(session: Session, world: dict[str, Any], rating: BranchRating, levels: list[int]) -> None:
    with tenant_context(world["tenant"].id):
        meeting = BallotMeeting(rating_id=rating.id, meeting_date=dt.date(2026, 4, 1), place="会议室",
                                members_count=len(levels), state=MeetingState.CLOSED)
        session.add(meeting)
        session.flush()
        for level in levels:
            session.add(Ballot(id=secrets.token_hex(16), meeting_id=meeting.id, group=VoterGroup.MEMBERS, level=level))
        session.flush()


def test_branch_round_kinds(session: Session, world: dict[str, Any], branch_round: Any) -> None:
    one, two, three = (_rating(session, world, branch_round, key) for key in ("one", "two", "three"))
    with tenant_context(world["tenant"].id):
        one.proposed_level, one.decided_level = 5, 3  # two above the decision
        two.proposed_level = 4  # two above the ballot (mean 2)
        three.proposed_level, three.decided_level = 4, 3  # one above: fine
        session.flush()
    _closed_ballot(session, world, two, [2, 2, 2, 2, 2])
    _closed_ballot(session, world, three, [3, 3, 4, 4, 3])
    with tenant_context(world["tenant"].id):
        report = anomalies.branch_round_report(session, world["tenant"].id, branch_round)
    lines = report.of("proposed_above")
    assert [(line.branch_name, line.values) for line in lines] == [
        ("第一党支部", {"rating_id": one.id}),
        ("第二党支部", {"rating_id": two.id}),
    ]
    assert "定星 3 星" in lines[0].detail and "测评结果 2 星" in lines[1].detail
    assert report.of("late_change") == []
    with tenant_context(world["tenant"].id):
        branch_round.committee_due_at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        session.flush()
    late = add_event(session, world["tenant"], "branch_rating.decide", "branch_ratings", one.id,
                     at=dt.datetime(2026, 6, 2, tzinfo=dt.UTC))
    with tenant_context(world["tenant"].id):
        report = anomalies.branch_round_report(session, world["tenant"].id, branch_round)
    assert [line.values for line in report.of("late_change")] == [{"event_id": late.id}]


def test_a_clean_branch_round_has_no_anomaly(session: Session, world: dict[str, Any], branch_round: Any) -> None:
    with tenant_context(world["tenant"].id):
        for key in ("one", "two", "three"):
            _rating(session, world, branch_round, key).proposed_level = 4
        session.flush()
        assert anomalies.branch_round_report(session, world["tenant"].id, branch_round).lines == []


def test_the_page_lists_each_kind_with_links(
    session: Session, client: Any, login: Any, world: dict[str, Any], member_round: Any
) -> None:
    table = {**CLEAN, "three": [(80, 80), (80, 80), (80, 80)], "one": [(90, 60), (80, 80), (70, 72)]}
    set_scores(session, world, member_round, _scores(world, table))
    login(world["tenant"], world["inspector"])
    page = client.get(url(world, f"/inspection/anomalies?round=m{member_round.id}"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    three = _round_branch(session, world, member_round, "three")
    evaluation = evaluation_of(session, world, member_round, world["members"]["one"][0])
    assert url(world, f"/inspection/round-branches/{three.id}") in html
    assert url(world, f"/inspection/evaluations/{evaluation.id}") in html
    record = client.get(url(world, f"/inspection/evaluations/{evaluation.id}")).get_data(as_text=True)
    assert "90" in record and "60" in record
    assert client.get(url(world, f"/inspection/anomalies?round=m{member_round.id + 1000}")).status_code == 404
    assert client.get(url(world, "/inspection/anomalies?round=zzz")).status_code == 404


def test_the_page_says_when_nothing_was_found(
    client: Any, login: Any, world: dict[str, Any], member_round: Any
) -> None:
    login(world["tenant"], world["committee"])
    html = client.get(url(world, "/inspection/anomalies")).get_data(as_text=True)
    assert html.count("未发现") == len(anomalies.MEMBER_KINDS)


def test_records_of_another_district_are_not_found(
    session: Session, client: Any, login: Any, world: dict[str, Any], member_round: Any, two_tenants: dict[str, Any]
) -> None:
    from fivestar.member_rounds.opening import open_round

    other = two_tenants["a"]
    with tenant_context(other["tenant"].id):
        foreign_round = open_round(session, other["tenant"]).round
        session.flush()
        foreign_rb = session.scalar(select(RoundBranch).where(RoundBranch.round_id == foreign_round.id))
        assert foreign_rb is not None
    foreign_ev = evaluation_of(session, {"tenant": other["tenant"]}, foreign_round, other["members"][0])
    login(world["tenant"], world["inspector"])
    assert client.get(url(world, f"/inspection/round-branches/{foreign_rb.id}")).status_code == 404
    assert client.get(url(world, f"/inspection/evaluations/{foreign_ev.id}")).status_code == 404
    assert client.get(url(world, f"/inspection/anomalies?round=m{foreign_round.id}")).status_code == 404


def test_the_report_runs_a_fixed_number_of_queries(
    session: Session, client: Any, login: Any, world: dict[str, Any], member_round: Any, engine: Any
) -> None:
    """One line of each kind, then three times as many: the same statements."""
    from tests.inspection.conftest import count_queries

    def odd(keys: tuple[str, ...]) -> None:
        set_scores(session, world, member_round, _scores(world, {key: [(90, 60)] * 3 for key in keys}))
        with tenant_context(world["tenant"].id):
            member_round.review_due_at = dt.datetime(2026, 4, 20, tzinfo=dt.UTC)
            for key in keys:
                for member in world["members"][key]:
                    ev = evaluation_of(session, world, member_round, member)
                    session.add(Objection(round_branch_id=ev.round_branch_id, evaluation_id=ev.id, text="异议",
                                          state=ObjectionState.DISMISSED))
                    add_event(session, world["tenant"], "evaluation.review", "member_evaluations", ev.id,
                              at=dt.datetime(2026, 4, 22, tzinfo=dt.UTC))
            session.flush()

    login(world["tenant"], world["inspector"])
    path = url(world, f"/inspection/anomalies?round=m{member_round.id}")
    odd(("one",))
    count_queries(engine, client, path)  # the rule set is read once and kept
    few = count_queries(engine, client, path)
    assert client.get(path).get_data(as_text=True).count('class="anomaly"') == 3 + 1 + 3 + 3
    odd(("two", "three"))
    assert client.get(path).get_data(as_text=True).count('class="anomaly"') == 9 + 3 + 9 + 9
    assert count_queries(engine, client, path) == few
