"""The rounds kernel: every declared transition, walked with every role, and no step set outside `apply`.

The expectations of who may take which action are written here from the roles as the README
describes them, not read from the policy, so a drift between the transition tables, the policy and
the people who should move a round fails here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session, make_transient_to_detached

import fivestar.branch_rounds.workflow as branch_workflow
import fivestar.improvement.workflow as plan_workflow
import fivestar.member_rounds.workflow as member_workflow
import fivestar.standing.workflow as event_workflow
from fivestar.accounts.policy import Action
from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import Role
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel import rounds
from fivestar.orgs.models import Organisation

PLATFORM = Path(__file__).resolve().parents[2] / "platform" / "fivestar"
TENANT = 7
PARENT_PATH, BRANCH_PATH = "/1/2/", "/1/2/3/"

# Who may take each action that moves a round (README: the roles).
MAY: dict[Action, frozenset[Role]] = {
    Action.ROUND_MANAGE: frozenset({Role.TENANT_ADMIN}),
    Action.ROUND_RETURN: frozenset({Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER}),
    Action.ROUND_EVALUATE: frozenset({Role.TENANT_ADMIN, Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE}),
    Action.BRANCH_RATE: frozenset({Role.TENANT_ADMIN, Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE}),
    Action.BRANCH_FORWARD: frozenset({Role.TENANT_ADMIN, Role.ORG_STAFF}),
    Action.BRANCH_DECIDE: frozenset({Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER}),
    Action.PLAN_EDIT: frozenset({Role.TENANT_ADMIN, Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE}),
    Action.PLAN_REVIEW: frozenset({Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER}),
    Action.STANDING_ADJUST: frozenset({Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER}),
}

# Every transition and the action its page requires (the views' `require` before calling the service).
EXPECTED: dict[str, Action] = {
    "round_branch.start_joint": Action.ROUND_EVALUATE,
    "round_branch.start_review": Action.ROUND_EVALUATE,
    "round_branch.submit_notice": Action.ROUND_EVALUATE,
    "round_branch.finalise": Action.ROUND_EVALUATE,
    "round_branch.return": Action.ROUND_RETURN,
    "member_round.close": Action.ROUND_MANAGE,
    "branch_rating.submit_recommendation": Action.BRANCH_RATE,
    "branch_rating.submit_opinion": Action.BRANCH_RATE,
    "branch_rating.forward": Action.BRANCH_FORWARD,
    "branch_rating.org_return": Action.BRANCH_FORWARD,
    "branch_rating.decide": Action.BRANCH_DECIDE,
    "branch_round.finalise": Action.BRANCH_DECIDE,
    "improvement_plan.publish": Action.PLAN_EDIT,
    "improvement_plan.review": Action.PLAN_REVIEW,
    "standing_event.adjust": Action.STANDING_ADJUST,
    "standing_event.dismiss": Action.STANDING_ADJUST,
}
EXPECTED_WORKFLOWS = {name.split(".")[0] for name in EXPECTED}


def principal(role: Role, *, tenant: int = TENANT) -> Principal:
    """A person holding `role` where it reaches the branch: org staff at the 机关党委 above it, branch
    roles at the branch, members of it."""
    path = {Role.ORG_STAFF: PARENT_PATH, Role.BRANCH_SECRETARY: BRANCH_PATH, Role.BRANCH_COMMITTEE: BRANCH_PATH}
    return Principal(
        session_token="t",
        display_name=role.value,
        tenant_id=tenant,
        account_id=1,
        member_id=1,
        member_branch_path=BRANCH_PATH if role is Role.MEMBER else None,
        grants=(Grant(role, 3 if role.needs_organisation else None, path.get(role)),),
    )


def declared() -> list[rounds.Workflow[Any]]:
    assert member_workflow.BRANCH_WORKFLOW and branch_workflow.RATING_WORKFLOW  # both tables are loaded
    assert plan_workflow.PLAN_WORKFLOW  # and the rectification plan's
    assert event_workflow.EVENT_WORKFLOW  # and a mid-year event's (增星摘星 prompts)
    return [w for w in rounds.workflows() if w.name in EXPECTED_WORKFLOWS]


def walk() -> Iterator[tuple[rounds.Workflow[Any], rounds.Transition[Any]]]:
    for workflow in declared():
        for transition in workflow.transitions:
            yield workflow, transition


WALK = [pytest.param(w, t, id=f"{w.name}.{t.name}") for w, t in walk()]


def subject_at(workflow: rounds.Workflow[Any], step: Any) -> Any:
    """A persistent-looking row of the workflow's model standing at `step`, in tenant 7, under the branch."""
    obj = workflow.model()
    obj.id, obj.tenant_id = 11, TENANT
    if hasattr(workflow.model, "branch"):
        obj.branch = Organisation(id=3, tenant_id=TENANT, path=BRANCH_PATH)
    with rounds.seeding():
        setattr(obj, workflow.attribute, step)
    make_transient_to_detached(obj)
    return obj


class UntouchedSession:
    """A refused transition must not reach the database at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a refused transition used session.{name}")


class RecordingSession:
    """Enough of a session for `apply`'s savepoint; the audit events are caught separately."""

    def begin_nested(self) -> Any:
        return nullcontext()


def untouched() -> Session:
    return cast(Session, UntouchedSession())


def recording() -> Session:
    return cast(Session, RecordingSession())


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    caught: list[dict[str, Any]] = []

    def record(session: Any, action: str, obj: Any = None, **kwargs: Any) -> None:
        caught.append({"action": action, "obj": obj, **kwargs})

    monkeypatch.setattr("fivestar.kernel.rounds.audit.record", record)
    return caught


def test_every_round_kind_is_declared_over_the_kernel() -> None:
    assert {w.name for w in declared()} == EXPECTED_WORKFLOWS
    assert {f"{w.name}.{t.name}": t.action for w, t in walk()} == EXPECTED
    for workflow, transition in walk():
        assert transition.action in MAY, f"{workflow.name}.{transition.name}: who may take {transition.action}?"
        assert transition.sources and transition.targets, f"{workflow.name}.{transition.name} has no source or target"


@pytest.mark.parametrize(("workflow", "transition"), WALK)
@pytest.mark.parametrize("role", list(Role))
def test_a_role_without_the_action_is_refused_and_one_with_it_moves(
    workflow: rounds.Workflow[Any], transition: rounds.Transition[Any], role: Role, events: list[dict[str, Any]]
) -> None:
    source = sorted(transition.sources, key=lambda s: s.value)[0]
    obj = subject_at(workflow, source)
    reason = "理由" if transition.needs_reason else None
    with rounds.acting_for(principal(role)):
        if role not in MAY[transition.action]:
            with pytest.raises(rounds.TransitionForbiddenError):
                rounds.apply(untouched(), workflow, transition.name, obj, refusal=None, reason=reason)
            assert getattr(obj, workflow.attribute) is source and not events
            return
        for target in transition.targets:
            obj = subject_at(workflow, source)
            moved = rounds.apply(recording(), workflow, transition.name, obj, refusal=None, reason=reason, to=target)
            assert moved is target and getattr(obj, workflow.attribute) is target
            event = events.pop()
            assert event["action"] == f"{workflow.name}.{transition.name}" and event["obj"] is obj
            assert event["before"] == {workflow.attribute: source} and event["after"] == {workflow.attribute: target}
            assert event["reason"] == reason


@pytest.mark.parametrize(("workflow", "transition"), WALK)
def test_strangers_and_other_tenants_are_refused(
    workflow: rounds.Workflow[Any], transition: rounds.Transition[Any], events: list[dict[str, Any]]
) -> None:
    obj = subject_at(workflow, next(iter(transition.sources)))
    for stranger in (None, object(), principal(Role.TENANT_ADMIN, tenant=TENANT + 1)):
        with rounds.acting_for(stranger), pytest.raises(rounds.TransitionForbiddenError):
            rounds.apply(untouched(), workflow, transition.name, obj, refusal=None, reason="理由")
    assert not events


@pytest.mark.parametrize(("workflow", "transition"), WALK)
def test_a_refusal_or_a_wrong_step_writes_nothing(
    workflow: rounds.Workflow[Any], transition: rounds.Transition[Any], events: list[dict[str, Any]]
) -> None:
    source = next(iter(transition.sources))
    obj = subject_at(workflow, source)
    with pytest.raises(ConflictError, match="截止"):
        rounds.apply(untouched(), workflow, transition.name, obj, refusal="已截止", reason="理由")
    with pytest.raises(ServiceError, match="截止") as refused:
        rounds.apply(untouched(), workflow, transition.name, obj, refusal="已截止", refused_as=ServiceError)
    assert type(refused.value) is ServiceError
    outside = [step for step in type(source) if step not in transition.sources]
    for step in outside:
        stranded = subject_at(workflow, step)
        with pytest.raises(ConflictError):
            rounds.apply(recording(), workflow, transition.name, stranded, refusal=None, reason="理由")
        assert getattr(stranded, workflow.attribute) is step
    assert getattr(obj, workflow.attribute) is source and not events


def test_a_transition_that_needs_a_reason_is_refused_without_one(events: list[dict[str, Any]]) -> None:
    needing = [(w, t) for w, t in walk() if t.needs_reason]
    assert needing, "returning with a reason is a transition of both rounds"
    for workflow, transition in needing:
        obj = subject_at(workflow, next(iter(transition.sources)))
        with pytest.raises(ServiceError) as refused:
            rounds.apply(recording(), workflow, transition.name, obj, refusal=None, reason="  ")
        assert refused.value.field == "reason"
    assert not events


def test_an_unknown_transition_is_not_found() -> None:
    workflow = declared()[0]
    obj = subject_at(workflow, next(iter(workflow.transitions[0].sources)))
    with pytest.raises(ServiceError) as refused:
        rounds.apply(untouched(), workflow, "jump", obj, refusal=None)
    assert refused.value.status == 404


# --- no step is ever set outside apply ---------------------------------------------------------------------


@pytest.mark.parametrize("workflow", declared(), ids=lambda w: w.name)
def test_setting_a_step_by_hand_raises(workflow: rounds.Workflow[Any]) -> None:
    """The runtime half: the guarded column refuses an assignment outside apply on a stored row."""
    steps: list[Any] = list(workflow.transitions[0].target.__class__)
    obj = subject_at(workflow, steps[0])
    with pytest.raises(rounds.StepOutsideKernelError):
        setattr(obj, workflow.attribute, steps[-1])
    assert getattr(obj, workflow.attribute) is steps[0]
    fresh = workflow.model()  # a row being created takes its first step as data
    setattr(fresh, workflow.attribute, steps[0])


def _assigned_attributes(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """(line, expression, attribute) of every `x.attr = …` (also in tuples), `setattr(x, "attr", …)`
    and `….values(attr=…)` in a module."""
    for node in ast.walk(tree):
        line: int = getattr(node, "lineno", 0)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(item, ast.Attribute):
                    yield line, ast.unparse(item.value), item.attr
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    yield line, ast.unparse(node.args[0]), name.value
            if isinstance(func, ast.Attribute) and func.attr == "values":
                for keyword in node.keywords:
                    if keyword.arg:
                        yield line, ast.unparse(func.value), keyword.arg


# State machines that are not round steps: the 议星 meeting (moved by the ballot), an objection's answer,
# and the job rows of the workers. Everything else named `step`/`state` in the platform is a round's.
NOT_A_ROUND = re.compile(r"(meeting|objection|item|job|delivery|message|row|export|lease|claim)", re.IGNORECASE)


def test_no_module_sets_a_round_step_outside_the_kernel() -> None:
    """The static half: no source file of the platform assigns a guarded step (or the round's state)
    except the kernel; seed data may, inside `seeding()` only."""
    guarded = {w.attribute for w in declared()}
    offenders: list[str] = []
    for path in sorted(PLATFORM.rglob("*.py")):
        relative = path.relative_to(PLATFORM).as_posix()
        if relative == "kernel/rounds.py" or relative.startswith("migrations/"):
            continue
        source = path.read_text(encoding="utf-8")
        if "seeding(" in source and not relative.startswith("demo/"):
            offenders.append(f"{relative}: seeding() outside the demo's seed data")
        for line, expression, attribute in _assigned_attributes(ast.parse(source)):
            if attribute not in guarded:
                continue
            if attribute == "state" and NOT_A_ROUND.search(expression):
                continue
            if attribute == "step" and expression in {"extend_form", "form"}:  # a form's select field
                continue
            if relative.startswith("demo/") and _inside_seeding(source, line):
                continue
            offenders.append(f"{relative}:{line}: {expression}.{attribute} set by hand")
    assert not offenders, "steps move only through fivestar.kernel.rounds.apply:\n" + "\n".join(offenders)


def _inside_seeding(source: str, line: int) -> bool:
    lines = source.splitlines()
    indent = len(lines[line - 1]) - len(lines[line - 1].lstrip())
    for previous in reversed(lines[: line - 1]):
        stripped = previous.lstrip()
        depth = len(previous) - len(stripped)
        if stripped and depth < indent:
            return stripped.startswith("with seeding()")
    return False


@contextmanager
def _no_principal() -> Iterator[None]:
    with rounds.acting_for(rounds.SYSTEM):
        yield


def test_trusted_code_acts_as_the_system(events: list[dict[str, Any]]) -> None:
    """The command line, workers and direct service calls move rounds as SYSTEM (audited as 'system')."""
    workflow = declared()[0]
    transition = workflow.transitions[0]
    obj = subject_at(workflow, next(iter(transition.sources)))
    with _no_principal():
        rounds.apply(recording(), workflow, transition.name, obj, refusal=None, reason="理由")
    assert events and getattr(obj, workflow.attribute) is transition.targets[0]
