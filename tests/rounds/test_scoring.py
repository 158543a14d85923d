"""Scoring a round set-based: the SQL (or the fallback) must give what the rule engine gives.

* a property test per sample tenant: random final scores, bonus and disqualifiers → `score_round`
  equals `core.evaluate` for every member (on SQLite and PostgreSQL, by the fixtures);
* "the rule engine's results for every sample tenant": known inputs at the band edges → levels;
* scope (round branches, withdrawn members, other stages), one statement, re-scoring, refusals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind
from fivestar.errors import ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationStatus,
    MemberRound,
    PartKind,
    RoundBranch,
    RoundState,
    ScoreStage,
)
from fivestar.member_rounds.opening import open_round
from fivestar.member_rounds.scoring import score_round
from fivestar.rules import RuleSet
from fivestar.tenancy import tenant_context

D = Decimal
CENT = D("0.01")
TENANTS = Path(__file__).resolve().parents[2] / "tenants"
SAMPLES = ("notice-illustrative", "shizhi-110", "zoucheng-public-weighted")


@pytest.fixture
def sample_round(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, frozen_now: Any
) -> Callable[..., dict[str, Any]]:
    """`sample_round(name, per_branch=6)`: a tenant on a sample's rules, two branches, the round open."""

    def make(name: str, per_branch: int = 6) -> dict[str, Any]:
        tenant = create_tenant(slug=f"score-{name[:12]}", rules_toml=(TENANTS / f"{name}.toml").read_text("utf-8"))
        party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="机关党委")
        branches = [create_org(tenant, OrgKind.BRANCH, parent=party, name=f"第{i}支部") for i in (1, 2)]
        for branch in branches:
            for _ in range(per_branch):
                create_member(tenant, branch)
        with tenant_context(tenant.id):
            member_round = open_round(session, tenant).round
            rules = core.round_rules(session, member_round)
            evaluations = list(session.scalars(
                select(Evaluation).where(Evaluation.round_id == member_round.id).order_by(Evaluation.id)
            ))
            round_branches = list(session.scalars(
                select(RoundBranch).where(RoundBranch.round_id == member_round.id).order_by(RoundBranch.id)
            ))
        return {"tenant": tenant, "round": member_round, "rules": rules, "evaluations": evaluations,
                "round_branches": round_branches}

    return make


def spread(total: Decimal, fields: list[core.ScoreField]) -> dict[core.FieldKey, Decimal]:
    """Fill the fields in order until `total` is reached (exact); every field gets a row, as a
    submitted review form gives one (0 where nothing is left)."""
    left, out = total, {}
    for field in fields:
        take = min(left, field.max)
        out[field.key] = take
        left -= take
    assert left == 0, total
    return out


def scores_for(rules: RuleSet, total: Decimal) -> dict[core.FieldKey, Decimal]:
    """Final scores whose scheme total (before bonus) is exactly `total`."""
    fields = core.score_fields(rules)
    scheme = rules.member.scheme
    if scheme.type_name == "sum_of_aspects":
        return spread(total, fields)
    if scheme.type_name == "base_plus_adjustments":
        base: Decimal = scheme.base  # type: ignore[attr-defined]
        if total >= base:
            return spread(total - base, [f for f in fields if f.kind is PartKind.ADDITION])
        return spread(base - total, [f for f in fields if f.kind is PartKind.DEDUCTION])
    assert scheme.type_name == "named_stars"
    aspects = scheme.aspects  # type: ignore[attr-defined]
    return {(PartKind.ASPECT, a.key, ""): a.star_min if i < int(total) else a.star_min - CENT
            for i, a in enumerate(aspects)}


def bonus(rules: RuleSet, **points: str) -> dict[core.FieldKey, Decimal]:
    return {(PartKind.BONUS, key, ""): D(value) for key, value in points.items()}


def set_disqualifiers(session: Session, values: dict[int, str | None]) -> None:
    for evaluation_id, key in values.items():
        session.execute(
            update(Evaluation).where(Evaluation.id == evaluation_id).values(disqualifier=key)
            .execution_options(synchronize_session=False)
        )


def results(session: Session, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    rows = session.execute(
        select(Evaluation.id, Evaluation.total, Evaluation.level, Evaluation.rated, Evaluation.scored_at)
        .where(Evaluation.id.in_(ids))
    )
    return {row[0]: tuple(row[1:]) for row in rows}


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind().engine

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


# --- property: SQL = rule engine ------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_score_round_equals_the_rule_engine_for_every_member(
    session: Session, sample_round: Callable[..., dict[str, Any]], name: str
) -> None:
    world = sample_round(name, per_branch=3)
    rules: RuleSet = world["rules"]
    fields = core.score_fields(rules) + core.bonus_fields(rules)
    ids = [e.id for e in world["evaluations"]]
    dq_keys = [d.key for d in rules.member.disqualifiers]

    def hundredths(maximum: Decimal) -> st.SearchStrategy[Decimal]:
        return st.integers(0, int(maximum * 100)).map(lambda n: D(n) / 100)

    member = st.tuples(
        st.dictionaries(st.sampled_from([f.key for f in fields]), st.just(None), max_size=len(fields)),
        st.data(),
        st.one_of(st.none(), st.none(), st.none(), st.sampled_from(dq_keys)) if dq_keys else st.none(),
    )

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(members=st.lists(member, min_size=len(ids), max_size=len(ids)), noise=st.data())
    def check(members: list[Any], noise: st.DataObject) -> None:
        by_key = {f.key: f for f in fields}
        final: dict[int, dict[core.FieldKey, Decimal]] = {}
        disqualifiers: dict[int, str | None] = {}
        for evaluation_id, (chosen, data, dq) in zip(ids, members, strict=True):
            final[evaluation_id] = {key: data.draw(hundredths(by_key[key].max)) for key in chosen}
            disqualifiers[evaluation_id] = dq
        # Scores of other stages must not count.
        other = {i: {fields[0].key: noise.draw(hundredths(fields[0].max))} for i in ids}
        with tenant_context(world["tenant"].id):
            core.write_scores(session, ids, ScoreStage.FINAL, final)
            core.write_scores(session, ids, ScoreStage.SELF, other)
            set_disqualifiers(session, disqualifiers)
            before = results(session, ids)
            changed = score_round(session, world["round"])
            got = results(session, ids)
        assert changed == sum(1 for i in ids if got[i][:3] != before[i][:3])
        for evaluation_id in ids:
            total, level, rated, scored_at = got[evaluation_id]
            if not final[evaluation_id] and disqualifiers[evaluation_id] is None:
                assert (total, level, rated, scored_at) == (None, None, None, None)
                continue
            expected = core.evaluate(rules, final[evaluation_id], disqualifiers[evaluation_id])
            assert (total, level, rated) == (expected.total, expected.level, expected.rated), (
                final[evaluation_id], disqualifiers[evaluation_id])
            assert scored_at is not None

    check()


# --- the rule engine's results for every sample tenant ---------------------------------------------

# (scheme total before bonus or None for no scores, bonus points by reason, disqualifier) → (level, total)
CASES: dict[str, list[tuple[str | None, dict[str, str], str | None, int | None, str | None]]] = {
    "notice-illustrative": [
        ("100", {}, None, 5, "100"),
        ("90", {}, None, 5, "90"),
        ("89.99", {}, None, 4, "89.99"),
        ("80", {}, None, 4, "80"),
        ("79.99", {}, None, 3, "79.99"),
        ("70", {}, None, 3, "70"),
        ("69.99", {}, None, 2, "69.99"),
        ("0", {}, None, 2, "0"),  # 二星 is the lowest level (min = 0)
        ("88", {"district_commendation": "2"}, None, 5, "90"),
        ("85", {"district_commendation": "2", "city_commendation": "5"}, None, 5, "90"),  # 7 capped at 5
        ("84.99", {"district_commendation": "2", "city_commendation": "5"}, None, 4, "89.99"),
        ("100", {}, "unpaid_dues", None, "100"),  # 不予评星
        (None, {}, None, None, None),  # nothing entered: not scored
    ],
    "shizhi-110": [
        ("100", {}, None, 5, "100"),
        ("96", {}, None, 5, "96"),
        ("95.99", {}, None, 4, "95.99"),
        ("90", {}, None, 4, "90"),
        ("89.99", {}, None, 3, "89.99"),
        ("80", {}, None, 3, "80"),
        ("79.99", {}, None, 2, "79.99"),
        ("70", {}, None, 2, "70"),
        ("69.99", {}, None, 1, "69.99"),
        ("60", {}, None, 1, "60"),
        ("59.99", {}, None, 0, "59.99"),  # 不合格
        ("0", {}, None, 0, "0"),
        (None, {}, None, None, None),
    ],
    "zoucheng-public-weighted": [
        ("5", {}, None, 5, "5"),
        ("4", {}, None, 4, "4"),
        ("3", {}, None, 3, "3"),
        ("2", {}, None, 2, "2"),
        ("1", {}, None, 1, "1"),
        ("0", {}, None, 0, "0"),  # every aspect 0.01 short of its star: 无星
        ("5", {}, "under_investigation", None, "5"),
        (None, {}, "refuses_decisions", None, "0"),  # not rated even with nothing entered
        (None, {}, None, None, None),
    ],
}


@pytest.mark.parametrize("name", SAMPLES)
def test_the_rule_engines_results_for_every_sample_tenant(
    session: Session, sample_round: Callable[..., dict[str, Any]], name: str
) -> None:
    cases = CASES[name]
    world = sample_round(name, per_branch=(len(cases) + 1) // 2)
    rules: RuleSet = world["rules"]
    ids = [e.id for e in world["evaluations"]][: len(cases)]
    final = {}
    for evaluation_id, (total, points, _dq, _level, _expected) in zip(ids, cases, strict=True):
        final[evaluation_id] = {**(scores_for(rules, D(total)) if total is not None else {}), **bonus(rules, **points)}
    with tenant_context(world["tenant"].id):
        core.write_scores(session, ids, ScoreStage.FINAL, final)
        set_disqualifiers(session, {i: case[2] for i, case in zip(ids, cases, strict=True)})
        score_round(session, world["round"])
        got = results(session, ids)
    for evaluation_id, (total, points, dq, level, expected_total) in zip(ids, cases, strict=True):
        got_total, got_level, rated, _ = got[evaluation_id]
        case = (name, total, points, dq)
        assert got_level == level, case
        assert got_total == (None if expected_total is None else D(expected_total)), case
        assert rated == (None if expected_total is None else dq is None), case
        if expected_total is not None:  # and the evaluator agrees
            assert core.evaluate(rules, final[evaluation_id], dq).level == level, case


# --- scope, statements, refusals -------------------------------------------------------------------


def test_one_update_statement_for_a_linear_scheme(
    session: Session, sample_round: Callable[..., dict[str, Any]]
) -> None:
    world = sample_round("notice-illustrative")
    ids = [e.id for e in world["evaluations"]]
    with tenant_context(world["tenant"].id):
        core.write_scores(session, ids, ScoreStage.FINAL, {i: scores_for(world["rules"], D(75)) for i in ids})
        session.flush()
        with statements(session) as seen:
            assert score_round(session, world["round"]) == len(ids)
    updates = [s for s in seen if s.startswith("UPDATE member_evaluations")]
    assert len(updates) == 1 and " FROM (SELECT" in updates[0] and "GROUP BY" in updates[0]
    assert not [s for s in seen if s.startswith("SELECT") and "evaluation_scores" in s]
    with tenant_context(world["tenant"].id):
        assert {row[1] for row in results(session, ids).values()} == {3}


def test_named_stars_falls_back_to_one_select_and_one_executemany(
    session: Session, sample_round: Callable[..., dict[str, Any]]
) -> None:
    world = sample_round("zoucheng-public-weighted")
    ids = [e.id for e in world["evaluations"]]
    with tenant_context(world["tenant"].id):
        core.write_scores(session, ids, ScoreStage.FINAL, {i: scores_for(world["rules"], D(3)) for i in ids})
        session.flush()
        with statements(session) as seen:
            score_round(session, world["round"])
        assert {row[1] for row in results(session, ids).values()} == {3}
    assert len([s for s in seen if s.startswith("SELECT") and "evaluation_scores" in s]) == 1
    assert len([s for s in seen if s.startswith("UPDATE member_evaluations")]) == 1  # executemany


def test_only_the_given_round_branches_and_only_active_members(
    session: Session, sample_round: Callable[..., dict[str, Any]]
) -> None:
    world = sample_round("notice-illustrative", per_branch=3)
    first, _second = world["round_branches"]
    evaluations = world["evaluations"]
    ids = [e.id for e in evaluations]
    in_first = [e.id for e in evaluations if e.round_branch_id == first.id]
    withdrawn = in_first[0]
    with tenant_context(world["tenant"].id):
        core.write_scores(session, ids, ScoreStage.FINAL, {i: scores_for(world["rules"], D(91)) for i in ids})
        session.execute(update(Evaluation).where(Evaluation.id == withdrawn)
                        .values(status=EvaluationStatus.WITHDRAWN).execution_options(synchronize_session=False))
        assert score_round(session, world["round"], round_branch_ids=[first.id]) == len(in_first) - 1
        got = results(session, ids)
        assert score_round(session, world["round"], round_branch_ids=[]) == 0
    for evaluation_id, (total, level, _rated, _at) in got.items():
        if evaluation_id in in_first and evaluation_id != withdrawn:
            assert (total, level) == (D(91), 5)
        else:
            assert (total, level) == (None, None)


def test_rescoring_follows_the_scores_and_loaded_objects_see_it(
    session: Session, sample_round: Callable[..., dict[str, Any]]
) -> None:
    world = sample_round("shizhi-110", per_branch=1)
    evaluation = world["evaluations"][0]
    with tenant_context(world["tenant"].id):
        top = {evaluation.id: scores_for(world["rules"], D(96))}
        core.write_scores(session, [evaluation.id], ScoreStage.FINAL, top)
        score_round(session, world["round"])
        assert (evaluation.total, evaluation.level, evaluation.rated) == (D(96), 5, True)
        scored_at = evaluation.scored_at
        with statements(session) as seen:
            assert score_round(session, world["round"]) == 0  # nothing changed: nothing written
        assert evaluation.scored_at == scored_at
        assert [s for s in seen if s.startswith("UPDATE member_evaluations")]  # (one statement, no rows)
        version = evaluation.version
        core.write_scores(session, [evaluation.id], ScoreStage.FINAL, {})
        score_round(session, world["round"])
        assert (evaluation.total, evaluation.level, evaluation.rated, evaluation.scored_at) == (None, None, None, None)
        assert evaluation.version == version  # derived columns do not bump the form's version
        evaluation.summary = "still saves"  # no stale version after a set-based update
        session.flush()


def test_a_closed_round_is_not_rescored(session: Session, sample_round: Callable[..., dict[str, Any]]) -> None:
    world = sample_round("notice-illustrative", per_branch=1)
    member_round: MemberRound = world["round"]
    with tenant_context(world["tenant"].id):
        with seeding():
            member_round.state = RoundState.CLOSED
        member_round.closed_at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        session.flush()
        with pytest.raises(ServiceError, match="本轮评定已结束"):
            score_round(session, member_round)


def test_scoring_is_recorded_once_per_call(session: Session, sample_round: Callable[..., dict[str, Any]]) -> None:
    from fivestar.audit.models import AuditEvent

    world = sample_round("notice-illustrative", per_branch=2)
    with tenant_context(world["tenant"].id):
        score_round(session, world["round"])
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "member_round.score")))
    assert len(events) == 1
    assert events[0].after == {"changed": 0, "round_branches": "all", "method": "sql"}
