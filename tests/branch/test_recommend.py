"""荐星 services: drafts (set-based, versioned, audited), every refusal, and the submission storing
what the rule engine says for the same input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import recommend
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRoundState,
    CriterionScore,
    RatingAnswer,
    RatingStep,
)
from fivestar.errors import ConflictError
from fivestar.kernel.rounds import seeding
from fivestar.rules import evaluate_branch
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.branch.recommend_support import (
    context,
    engine_input,
    full_form,
    load,
    public_district,
    rules_of,
    save,
    submit,
)


def _rows(session: Session, world: dict[str, Any]) -> tuple[int, int]:
    with tenant_context(world["tenant"].id):
        rating_id = world["rating_one"].id
        scores = session.scalar(select(func.count()).where(CriterionScore.rating_id == rating_id))
        answers = session.scalar(select(func.count()).where(RatingAnswer.rating_id == rating_id))
    return int(scores or 0), int(answers or 0)


def _events(session: Session, world: dict[str, Any], action: str) -> list[AuditEvent]:
    with tenant_context(world["tenant"].id):
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        )


@pytest.fixture
def public_opened(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any, frozen_now: Any
) -> dict[str, Any]:
    return public_district(session, create_tenant, create_org, create_member, create_account)


# --- drafts ----------------------------------------------------------------------------------------


def test_a_draft_may_be_incomplete_and_is_written_set_based(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    first, second = rules.branch.indicators[0], rules.branch.indicators[1]
    form = {
        recommend.score_name(first.key, first.criteria[0].key): "5.5",
        recommend.note_name(first.key, first.criteria[0].key): "书记述职评议优秀",
        recommend.score_name(second.key, second.criteria[1].key): "7",
        recommend.answer_name(AnswerKind.VETO, rules.branch.vetoes[0].key): "no",
        recommend.STATEMENT: "草稿",
    }
    rating = save(session, opened, form)
    assert rating.version == 2 and rating.step is RatingStep.RECOMMEND and rating.statement == "草稿"
    assert _rows(session, opened) == (2, 1)
    with tenant_context(opened["tenant"].id):
        stored = recommend.stored(session, rating.id)
    assert stored.scores == {
        (first.key, first.criteria[0].key): Decimal("5.50"),
        (second.key, second.criteria[1].key): Decimal("7.00"),
    }
    assert stored.notes == {(first.key, first.criteria[0].key): "书记述职评议优秀"}
    # a second save replaces the rows (nothing left over from the first) and bumps the version again
    rating = save(session, opened, {recommend.score_name(first.key, first.criteria[1].key): "6"})
    assert rating.version == 3 and _rows(session, opened) == (1, 0) and rating.statement is None
    events = _events(session, opened, "branch_rating.save_recommendation")
    assert len(events) == 2
    assert events[1].before is not None and events[1].after is not None
    assert events[1].before["scores"] == {f"{first.key}.{first.criteria[0].key}": "5.50",
                                          f"{second.key}.{second.criteria[1].key}": "7.00"}
    assert events[1].after["scores"] == {f"{first.key}.{first.criteria[1].key}": "6.00"}
    assert events[1].before["statement"] == "草稿" and events[1].after["statement"] is None
    assert events[1].actor_name == "赵书记"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("6.01", "须在 0 到 6 之间"),  # more than the criterion's points (书记抓党建责任落实: 6)
        ("-1", "须在 0 到 6 之间"),
        ("5.125", "最多保留两位小数"),
        ("五分", "须为数字"),
        ("NaN", "须在 0 到 6 之间"),
        ("1e400", "须在 0 到 6 之间"),
    ],
)
def test_a_wrong_score_is_refused_and_nothing_is_written(
    session: Session, opened: dict[str, Any], value: str, message: str
) -> None:
    rules = rules_of(session, opened)
    indicator = rules.branch.indicators[0]
    name = recommend.score_name(indicator.key, indicator.criteria[0].key)
    other = recommend.score_name(indicator.key, indicator.criteria[1].key)
    with pytest.raises(recommend.InvalidRecommendationError) as refused, session.begin_nested():
        save(session, opened, {name: value, other: "6"})
    assert list(refused.value.errors) == [name] and message in refused.value.errors[name]
    assert refused.value.status == 400
    assert _rows(session, opened) == (0, 0) and load(session, opened).version == 1


def test_nothing_typed_is_dropped_silently_and_a_yes_needs_an_explanation(
    session: Session, opened: dict[str, Any]
) -> None:
    rules = rules_of(session, opened)
    indicator, veto = rules.branch.indicators[0], rules.branch.vetoes[0]
    form = {
        recommend.note_name(indicator.key, indicator.criteria[0].key): "说明写了，分数没填",
        recommend.answer_name(AnswerKind.VETO, veto.key): "yes",
        recommend.explanation_name(AnswerKind.VETO, rules.branch.vetoes[1].key): "说明写了，是否没选",
        recommend.answer_name(AnswerKind.VETO, rules.branch.vetoes[2].key): "maybe",
        recommend.STATEMENT: "长" * (recommend.STATEMENT_MAX + 1),
    }
    with pytest.raises(recommend.InvalidRecommendationError) as refused, session.begin_nested():
        save(session, opened, form)
    errors = refused.value.errors
    assert "请同时填写" in errors[recommend.score_name(indicator.key, indicator.criteria[0].key)]
    assert "请说明具体情况" in errors[recommend.explanation_name(AnswerKind.VETO, veto.key)]
    assert "请选择“是”或“否”" in errors[recommend.answer_name(AnswerKind.VETO, rules.branch.vetoes[1].key)]
    assert "请选择“是”或“否”" in errors[recommend.answer_name(AnswerKind.VETO, rules.branch.vetoes[2].key)]
    assert "最多 4000 个字" in errors[recommend.STATEMENT]


def test_a_form_opened_on_an_older_version_is_refused(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    save(session, opened, {recommend.STATEMENT: "甲先保存"})
    with pytest.raises(ConflictError, match="已被他人修改"), session.begin_nested():
        save(session, opened, full_form(rules), version=1)
    assert load(session, opened).statement == "甲先保存"


def test_two_saves_racing_one_loses_with_a_conflict(session: Session, opened: dict[str, Any]) -> None:
    """Both read version 1; the other person's save lands between this one's check and its write:
    the versioned UPDATE matches no row and nothing of this save is written."""
    rules = rules_of(session, opened)
    ctx = context(session, opened)
    assert ctx.rating.version == 1
    with tenant_context(opened["tenant"].id), session.begin_nested() as nested:
        session.execute(
            update(BranchRating)
            .where(BranchRating.id == ctx.rating.id)
            .values(version=BranchRating.version + 1, statement="乙抢先保存")
            .execution_options(synchronize_session=False)
        )
        with pytest.raises(ConflictError, match="已被他人修改"):
            recommend.save(session, ctx, full_form(rules), version=1)
        nested.rollback()
    assert _rows(session, opened) == (0, 0)


# --- submitting ------------------------------------------------------------------------------------


def test_submitting_stores_the_rule_engines_proposal(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules, short="12.5")  # 87.5 of 100: 四星 by the illustrative bands
    result = submit(session, opened, form)
    rating = load(session, opened)
    expected = evaluate_branch(rules, engine_input(rules, form, rating))
    assert rating.step is RatingStep.DELIBERATE
    assert (rating.proposed_total, rating.proposed_level) == (Decimal("87.50"), expected.level) == (
        expected.weighted_total,
        4,
    )
    assert result.level == expected.level and rating.recommended_at == clock.now()
    assert _rows(session, opened) == (13, 3)
    [event] = _events(session, opened, "branch_rating.submit_recommendation")
    assert event.before == {"step": "recommend", "proposed_total": None, "proposed_level": None,
                            "recommended_at": None}
    assert event.after is not None and event.after["step"] == "deliberate" and event.after["proposed_level"] == 4
    # 班子建设 lost the 12.5 points (7.5 of 20: no medal); the others are full (金星)
    assert event.after["medals"] == {"leadership": None, "membership": "gold", "mechanisms": "gold",
                                     "results": "gold", "public": "gold"}


def test_a_veto_lowers_the_proposal_as_the_engine_says(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules, vetoes={"major_incident": True})
    submit(session, opened, form)
    rating = load(session, opened)
    expected = evaluate_branch(rules, engine_input(rules, form, rating))
    assert rating.proposed_level == expected.level == 2  # capped at 二星 despite 100 points
    assert rating.proposed_total == Decimal("100.00")
    with tenant_context(opened["tenant"].id):
        stored = recommend.stored(session, rating.id)
    assert stored.answers[(AnswerKind.VETO, "major_incident")] is True
    assert stored.explanations[(AnswerKind.VETO, "major_incident")] == "情况属实，详见附件"


def test_public_rate_and_facts_reach_the_engine(session: Session, public_opened: dict[str, Any]) -> None:
    rules = rules_of(session, public_opened)
    assert rules.branch.public is not None and rules.branch.facts
    form = full_form(rules, short="3.33", public_rate="83.5", facts={"municipal_honour": True})
    # the rate is missing: a submission names it
    without = {k: v for k, v in form.items() if k != recommend.PUBLIC_RATE}
    with pytest.raises(recommend.InvalidRecommendationError) as refused, session.begin_nested():
        submit(session, public_opened, without)
    assert "群众满意度" in refused.value.errors[recommend.PUBLIC_RATE]
    with pytest.raises(recommend.InvalidRecommendationError) as refused, session.begin_nested():
        submit(session, public_opened, {**form, recommend.PUBLIC_RATE: "100.5"})
    assert "0 到 100" in refused.value.errors[recommend.PUBLIC_RATE]
    submit(session, public_opened, form)
    rating = load(session, public_opened)
    expected = evaluate_branch(rules, engine_input(rules, form, rating))
    assert rating.public_rate == Decimal("83.50")
    assert rating.proposed_level == expected.level == 3  # satisfaction below 84 %: at most 三星
    assert rating.proposed_total == expected.weighted_total.quantize(Decimal("0.01"))
    assert any(reason.code == "public_cap" for reason in expected.reasons)


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("unscored", "还有 1 项评分标准未打分"),
        ("veto", "还有 1 项一票否决事项未回答"),
        ("statement", "请填写自我荐星说明"),
    ],
)
def test_an_incomplete_submission_is_refused_with_nothing_written(
    session: Session, opened: dict[str, Any], what: str, message: str
) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules)
    indicator = rules.branch.indicators[-1]
    field = {
        "unscored": recommend.score_name(indicator.key, indicator.criteria[-1].key),
        "veto": recommend.answer_name(AnswerKind.VETO, rules.branch.vetoes[-1].key),
        "statement": recommend.STATEMENT,
    }[what]
    form.pop(field)
    form.pop(recommend.note_name(indicator.key, indicator.criteria[-1].key))
    with pytest.raises(recommend.InvalidRecommendationError) as refused, session.begin_nested():
        submit(session, opened, form)
    assert refused.value.message == message and list(refused.value.errors) == [field]
    rating = load(session, opened)
    assert rating.step is RatingStep.RECOMMEND and rating.proposed_level is None
    assert _rows(session, opened) == (0, 0)


def test_a_stored_draft_may_be_submitted_from_the_dashboard(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    save(session, opened, full_form(rules, short=1))
    ctx = context(session, opened)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(recommend.ServiceError, match="没有这项操作"):
            recommend.take_step(session, ctx, "decide", version=ctx.rating.version)
        recommend.take_step(session, ctx, "submit_recommendation", version=ctx.rating.version)
    assert load(session, opened).proposed_level == 5


def test_submitting_after_the_deadline_is_refused(session: Session, opened: dict[str, Any], frozen_now: Any) -> None:
    rules = rules_of(session, opened)
    due = opened["round"].self_report_due_at
    frozen_now.move(due + dt.timedelta(minutes=1))
    with pytest.raises(ConflictError) as refused, session.begin_nested():
        submit(session, opened, full_form(rules))
    day = due.astimezone(ZoneInfo("Asia/Shanghai"))
    assert refused.value.message == f"自评上报已于 {day.month}月{day.day}日 截止，请联系工委延长期限"
    # a draft may still be saved (to be submitted once the committee extends the deadline)
    save(session, opened, full_form(rules))
    assert load(session, opened).step is RatingStep.RECOMMEND


def test_nothing_changes_once_submitted_or_finalised(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    submit(session, opened, full_form(rules))
    with pytest.raises(ConflictError, match="荐星已提交，当前处于“议星”环节"), session.begin_nested():
        save(session, opened, full_form(rules, short=5))
    with pytest.raises(ConflictError, match="荐星已提交"), session.begin_nested():
        submit(session, opened, full_form(rules))
    with tenant_context(opened["tenant"].id):
        rating = load(session, opened)
        with seeding():
            rating.step = RatingStep.RECOMMEND
        with seeding():
            opened["round"].state = BranchRoundState.FINALISED
        session.flush()
    with pytest.raises(ConflictError, match="已定星公布"), session.begin_nested():
        save(session, opened, full_form(rules))


def test_preview_runs_the_engine_on_typed_values(session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    rating = load(session, opened)
    form = full_form(rules, short=11)
    first = rules.branch.indicators[0]
    form[recommend.score_name(first.key, first.criteria[1].key)] = "99"  # a mistake is left out and named
    answer = recommend.preview(rules, rating, form)
    assert answer["ok"] is True and answer["errors"]
    expected_form = {**form, recommend.score_name(first.key, first.criteria[1].key): "0"}
    expected = evaluate_branch(rules, engine_input(rules, expected_form, rating))
    assert answer["level"] == expected.level and answer["total"] == recommend.plain(expected.weighted_total)
    assert [row["key"] for row in answer["indicators"]] == [i.key for i in rules.branch.indicators]
    assert _rows(session, opened) == (0, 0)  # nothing saved
