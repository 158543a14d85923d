"""个人自评, the service: drafts, submission, every refusal, and two people saving at once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.audit.models import AuditEvent
from fivestar.enums import Role
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    PartKind,
    RoundBranch,
    RoundState,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.self_assessment import (
    InvalidSelfAssessmentError,
    SelfAssessmentClosedError,
    field_name,
    save,
    validate,
    write_self,
)
from fivestar.tenancy import tenant_context

PLEDGE = "按承诺完成了三件实事：帮扶困难群众两户，牵头整理档案，带头学习。"
SUMMARY = "本季度认真学习，按时参加组织生活，工作上主动担当。"


def principal_for(account: Any, member: Any) -> Principal:
    """The member as the policy sees them (what the login loader would build)."""
    return Principal(
        session_token="test",
        display_name=member.name,
        tenant_id=account.tenant_id,
        account_id=account.id,
        member_id=member.id,
        grants=(Grant(Role.MEMBER),),
    )


@pytest.fixture
def world(session: Session, opened: dict[str, Any]) -> Any:
    """The opened round, with the tenant context set and 孙党员's evaluation at hand."""
    with tenant_context(opened["tenant"].id):
        me = opened["ones"][2]
        evaluation = core.load_evaluation(
            session, session.scalar(select(Evaluation.id).where(Evaluation.member_id == me.id))
        )
        fields = core.score_fields(core.round_rules(session, opened["round"]))
        assert len({field.part_key for field in fields}) == 5  # the notice's five aspects
        yield {
            **opened,
            "me": me,
            "evaluation": evaluation,
            "principal": principal_for(opened["member"], me),
            "fields": fields,
            # one point below each maximum
            "full": {field.name: _plain(field.max - 1) for field in fields},
        }


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _save(session: Session, w: dict[str, Any], values: dict[str, str], *, submit: bool, **kw: Any) -> Evaluation:
    evaluation = kw.pop("evaluation", w["evaluation"])
    return save(
        session,
        evaluation,
        kw.pop("principal", w["principal"]),
        values,
        kw.pop("pledge", PLEDGE),
        kw.pop("summary", SUMMARY),
        submit=submit,
        version=kw.pop("version", evaluation.version),
    )


def _self_scores(session: Session, evaluation: Evaluation) -> dict[str, Decimal]:
    """SELF scores by form field name."""
    rows = core.read_scores(session, [evaluation.id], [ScoreStage.SELF]).get((evaluation.id, ScoreStage.SELF), {})
    return {field_name(key): score for key, score in rows.items()}


def _events(session: Session, evaluation: Evaluation) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == "member_evaluations", AuditEvent.object_id == str(evaluation.id))
            .order_by(AuditEvent.id)
        )
    )


def test_a_draft_may_be_incomplete_and_is_kept(session: Session, world: dict[str, Any]) -> None:
    evaluation = world["evaluation"]
    first, second = world["fields"][0].name, world["fields"][1].name
    version = evaluation.version
    _save(session, world, {first: "7.5", second: ""}, submit=False, summary="")
    assert evaluation.self_state is SelfState.DRAFT
    assert evaluation.self_submitted_at is None
    assert evaluation.pledge == PLEDGE and evaluation.summary is None
    assert evaluation.version == version + 1
    assert _self_scores(session, evaluation) == {first: Decimal("7.50")}
    # a second draft replaces the first one's scores
    _save(session, world, {second: "5"}, submit=False)
    assert _self_scores(session, evaluation) == {second: Decimal("5.00")}
    events = _events(session, evaluation)
    assert [e.action for e in events] == ["evaluation.self_save_draft", "evaluation.self_save_draft"]
    assert events[0].before["self_state"] == "pending" and events[0].after["self_state"] == "draft"
    assert events[0].after["scores"] == {first: "7.50"}
    assert events[1].before["scores"] == {first: "7.50"}


def test_a_draft_saved_twice_unchanged_still_moves_the_version(session: Session, world: dict[str, Any]) -> None:
    """The version is what tells a second person that someone saved in between."""
    evaluation = world["evaluation"]
    first = world["fields"][0].name
    _save(session, world, {first: "7"}, submit=False)
    version = evaluation.version
    _save(session, world, {first: "7"}, submit=False)
    assert evaluation.version == version + 1


def test_submitting_a_complete_assessment_locks_it(session: Session, world: dict[str, Any], frozen_now: Any) -> None:
    evaluation = world["evaluation"]
    last = world["fields"][-1]
    values = {**world["full"], last.name: _plain(last.max - Decimal("0.75"))}
    _save(session, world, values, submit=True, pledge=f"  {PLEDGE}\r\n")
    assert evaluation.self_state is SelfState.SUBMITTED
    assert evaluation.self_submitted_at == frozen_now.at
    assert evaluation.pledge == PLEDGE and evaluation.summary == SUMMARY
    assert evaluation.entered_by is None
    assert _self_scores(session, evaluation) == {name: Decimal(value) for name, value in values.items()}
    assert [e.action for e in _events(session, evaluation)] == ["evaluation.self_submit"]
    # the scores are what the rule engine reads: criteria add up to their aspects
    stored = core.read_scores(session, [evaluation.id], [ScoreStage.SELF])[(evaluation.id, ScoreStage.SELF)]
    expected = sum((field.max for field in world["fields"]), Decimal(0)) - len(world["fields"]) + Decimal("0.25")
    assert core.evaluate(core.round_rules(session, world["round"]), stored).total == expected


def test_submitting_twice_is_refused_with_409(session: Session, world: dict[str, Any]) -> None:
    first = world["fields"][0]
    _save(session, world, world["full"], submit=True)
    with pytest.raises(ConflictError, match="自评已提交") as refused:
        _save(session, world, {**world["full"], first.name: _plain(first.max)}, submit=True)
    assert refused.value.status == 409
    with pytest.raises(ConflictError, match="自评已提交"):
        _save(session, world, {first.name: "0"}, submit=False)
    assert _self_scores(session, world["evaluation"])[first.name] == first.max - 1


def test_an_incomplete_submission_names_every_missing_field(session: Session, world: dict[str, Any]) -> None:
    evaluation = world["evaluation"]
    fields = world["fields"]
    version = evaluation.version
    with pytest.raises(InvalidSelfAssessmentError) as refused:
        _save(session, world, {fields[0].name: "1", fields[1].name: " "}, submit=True, pledge=" ", summary="")
    errors = refused.value.errors
    assert set(errors) == {field.name for field in fields[1:]} | {"pledge", "summary"}
    assert errors[fields[1].name] == f"请填写{fields[1].label}的分数"
    assert errors["pledge"] == "请填写承诺践诺情况" and errors["summary"] == "请填写个人总结"
    assert refused.value.status == 400
    assert evaluation.self_state is SelfState.PENDING and evaluation.version == version
    assert _self_scores(session, evaluation) == {}


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("{over}", "须在 0 到 {max} 分之间"),
        ("{just_over}", "须在 0 到 {max} 分之间"),
        ("-1", "须在 0 到 {max} 分之间"),
        ("1.005", "最多保留两位小数"),
        ("abc", "须为数字"),
        ("NaN", "须在 0 到 {max} 分之间"),
        ("Infinity", "须在 0 到 {max} 分之间"),
        ("1e0", None),  # one point, written oddly: accepted
    ],
)
def test_scores_out_of_range_are_refused_in_drafts_and_submissions(
    session: Session, world: dict[str, Any], typed: str, message: str | None
) -> None:
    evaluation = world["evaluation"]
    field = world["fields"][0]
    numbers = {"over": _plain(field.max + 1), "just_over": _plain(field.max + Decimal("0.01")),
               "max": _plain(field.max)}
    typed = typed.format(**numbers)
    if message is None:
        _save(session, world, {**world["full"], field.name: typed}, submit=False)
        assert _self_scores(session, evaluation)[field.name] == Decimal("1.00")
        return
    for submit in (False, True):
        with pytest.raises(InvalidSelfAssessmentError) as refused:
            _save(session, world, {**world["full"], field.name: typed}, submit=submit)
        assert message.format(**numbers) in refused.value.errors[field.name]
        assert set(refused.value.errors) == {field.name}
        assert evaluation.self_state is SelfState.PENDING
    assert _self_scores(session, evaluation) == {}


def test_the_limits_themselves_are_allowed(session: Session, world: dict[str, Any]) -> None:
    a, b, c = world["fields"][:3]
    values = {**world["full"], a.name: "0", b.name: _plain(b.max), c.name: _plain(c.max - Decimal("0.01"))}
    _save(session, world, values, submit=True)
    scores = _self_scores(session, world["evaluation"])
    assert (scores[a.name], scores[b.name], scores[c.name]) == (Decimal(0), b.max, c.max - Decimal("0.01"))


def test_a_text_that_is_too_long_is_refused(session: Session, world: dict[str, Any]) -> None:
    with pytest.raises(InvalidSelfAssessmentError) as refused:
        _save(session, world, world["full"], submit=False, summary="很" * 4001)
    assert "最多 4000 个字" in refused.value.errors["summary"]


def test_after_the_deadline_nothing_is_saved(session: Session, world: dict[str, Any], frozen_now: Any) -> None:
    evaluation = world["evaluation"]
    first = world["fields"][0].name
    _save(session, world, {first: "5"}, submit=False)
    frozen_now.move(world["round"].self_due_at + dt.timedelta(minutes=1))
    for submit in (False, True):
        with pytest.raises(SelfAssessmentClosedError, match="自评已截止于") as refused:
            _save(session, world, world["full"], submit=submit)
        assert refused.value.status == 403
    assert evaluation.self_state is SelfState.DRAFT
    assert _self_scores(session, evaluation) == {first: Decimal("5.00")}


def test_the_last_moment_before_the_deadline_still_counts(
    session: Session, world: dict[str, Any], frozen_now: Any
) -> None:
    frozen_now.move(world["round"].self_due_at)
    _save(session, world, world["full"], submit=True)
    assert world["evaluation"].self_state is SelfState.SUBMITTED


def test_after_the_branch_moved_on_nothing_is_saved(session: Session, world: dict[str, Any]) -> None:
    round_branch = session.scalar(select(RoundBranch).where(RoundBranch.id == world["evaluation"].round_branch_id))
    assert round_branch is not None
    with seeding():
        round_branch.step = BranchStep.JOINT
    session.flush()
    with pytest.raises(SelfAssessmentClosedError, match="支部已进入“党群联评”阶段"):
        _save(session, world, world["full"], submit=True)
    assert world["evaluation"].self_state is SelfState.PENDING


def test_a_closed_round_takes_no_more_self_assessments(session: Session, world: dict[str, Any]) -> None:
    with seeding():
        world["round"].state = RoundState.CLOSED
    session.flush()
    with pytest.raises(ServiceError, match="本轮评定已结束"):
        _save(session, world, world["full"], submit=False)


def test_a_member_who_left_the_branch_cannot_fill_it_in(session: Session, world: dict[str, Any]) -> None:
    world["evaluation"].status = EvaluationStatus.WITHDRAWN
    session.flush()
    with pytest.raises(SelfAssessmentClosedError, match="已转出"):
        _save(session, world, world["full"], submit=False)


def test_another_members_evaluation_does_not_exist_for_me(session: Session, world: dict[str, Any]) -> None:
    """Even the branch secretary cannot self-assess for someone else through this service."""
    other = core.load_evaluation(
        session, session.scalar(select(Evaluation.id).where(Evaluation.member_id == world["ones"][0].id))
    )
    with pytest.raises(NotFoundError):
        _save(session, world, world["full"], submit=False, evaluation=other)
    secretary = principal_for(world["secretary"], world["ones"][0])
    with pytest.raises(NotFoundError):
        _save(session, world, world["full"], submit=False, principal=secretary)
    no_member = Principal(session_token="t", display_name="admin", tenant_id=world["tenant"].id,
                          account_id=world["admin"].id, grants=(Grant(Role.TENANT_ADMIN),))
    with pytest.raises(NotFoundError):
        _save(session, world, world["full"], submit=False, principal=no_member)
    assert world["evaluation"].self_state is SelfState.PENDING and other.self_state is SelfState.PENDING


def test_another_tenants_principal_is_not_found(session: Session, world: dict[str, Any]) -> None:
    """A principal of another tenant holding the same member id gets nothing (the tenant differs)."""
    stranger = Principal(session_token="t", display_name="x", tenant_id=world["tenant"].id + 1000,
                         account_id=1, member_id=world["me"].id, grants=(Grant(Role.MEMBER),))
    with pytest.raises(NotFoundError):
        _save(session, world, world["full"], submit=False, principal=stranger)


def test_a_form_opened_before_someone_elses_save_is_refused(session: Session, world: dict[str, Any]) -> None:
    evaluation = world["evaluation"]
    first = world["fields"][0].name
    opened_with = evaluation.version
    _save(session, world, {first: "6"}, submit=False, version=opened_with)
    for stale in (opened_with, "", None, "abc"):
        with pytest.raises(ConflictError, match="已被他人修改") as refused:
            _save(session, world, {first: "2"}, submit=False, version=stale)
        assert refused.value.status == 409
    assert _self_scores(session, evaluation) == {first: Decimal("6.00")}


def test_two_saves_racing_one_wins_the_other_is_told(session: Session, world: dict[str, Any]) -> None:
    """Both read version v; the other one's UPDATE lands first (simulated with a statement that
    bypasses this session's identity map). Ours then matches no row: a ConflictError."""
    evaluation = world["evaluation"]
    version = evaluation.version
    session.execute(
        update(Evaluation)
        .where(Evaluation.id == evaluation.id)
        .values(version=Evaluation.version + 1, pledge="另一人的保存")
        .execution_options(synchronize_session=False)
    )
    attempt = session.begin_nested()  # what the view's rollback undoes
    with pytest.raises(ConflictError, match="已被他人修改"):
        _save(session, world, {world["fields"][0].name: "1"}, submit=False, version=version)
    attempt.rollback()
    assert _self_scores(session, evaluation) == {}
    assert evaluation.pledge == "另一人的保存" and evaluation.version == version + 1


def test_a_returned_assessment_can_be_changed_and_submitted_again(session: Session, world: dict[str, Any]) -> None:
    evaluation = world["evaluation"]
    last = world["fields"][-1]
    _save(session, world, world["full"], submit=True)
    evaluation.self_state = SelfState.RETURNED  # what the branch's "return with a reason" does
    evaluation.return_reason = "廉洁方面自评偏高，请对照标准重新评分"
    session.flush()
    _save(session, world, {**world["full"], last.name: "3"}, submit=True)
    assert evaluation.self_state is SelfState.SUBMITTED
    assert _self_scores(session, evaluation)[last.name] == Decimal("3.00")


def test_the_branch_can_enter_it_for_a_member_through_write_self(session: Session, world: dict[str, Any]) -> None:
    """What the branch part calls for "enter on behalf": validate, then write_self."""
    evaluation = world["evaluation"]
    rules = core.round_rules(session, world["round"])
    checked = validate(rules, world["full"], "口述：践诺情况良好", "口述总结", submit=True)
    write_self(session, evaluation, checked.scores, checked.pledge, checked.summary, entered_by="赵书记")
    assert evaluation.self_state is SelfState.SUBMITTED and evaluation.entered_by == "赵书记"
    assert len(_self_scores(session, evaluation)) == len(world["fields"])
    assert [e.action for e in _events(session, evaluation)] == ["evaluation.self_enter_for_member"]
    # once submitted, entering it again is refused as the state machine says
    with pytest.raises(ConflictError, match="自评已提交"):
        write_self(session, evaluation, checked.scores, None, None, entered_by="赵书记")
    with pytest.raises(ValueError, match="return"):
        write_self(session, evaluation, {}, None, None, transition="return")


def test_validate_accepts_a_full_width_decimal_comma(session: Session, world: dict[str, Any]) -> None:
    rules = core.round_rules(session, world["round"])
    first = world["fields"][0]
    checked = validate(rules, {first.name: "2，5"}, None, None, submit=False)
    assert checked.scores == {(PartKind.ASPECT, first.part_key, first.criterion_key): Decimal("2.50")}
    assert checked.pledge is None and checked.summary is None
