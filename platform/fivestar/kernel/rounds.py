"""The rounds kernel: every round-like workflow moves the same way, through `apply`.

A workflow is a table of `Transition`s over one enum column of one model (a member round's state, a
branch's step in it, a branch rating's step, a branch round's state). A transition names its sources,
its target (or the few targets the caller chooses between) and the `Action` that authorises it
(`fivestar.accounts.policy.Action`). `apply` is the one way a step changes:

1. the transition's refusal (computed by the feature from its facts: deadlines, counts) is raised;
2. the acting principal is authorised for the transition's action on the workflow's subject;
3. the object must stand at one of the transition's sources, and a reason is present when needed;
4. the step is set, with whatever the caller changes beside it, flushed in a savepoint (the row's
   version is bumped by SQLAlchemy; a lost race is `StaleEditError`);
5. the audit event `<workflow>.<transition>` is written through `fivestar.audit.record` (which chains it).

Nothing else may set a guarded column: declaring a workflow installs a SQLAlchemy `set` listener on it
that raises `StepOutsideKernelError` unless the assignment happens inside `apply` for that very object,
on an object being created (its first step), or inside `seeding()` (seed data and test arrangement,
which set a step as data, not as a transition: no authorisation, no audit event).

The acting principal is a context variable like the audit actor: the web layer sets the logged-in
person for each request; the command line, workers and direct service calls act as `SYSTEM`, which the
platform trusts as it trusts them to write audit events as "system".

This module imports no feature package and no Flask: the policy's `authorize` is handed in when a
workflow is declared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session, contains_eager

from fivestar import audit
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _, short_date
from fivestar.kernel.versioning import saving
from fivestar.timekeeping import clock
from fivestar.timekeeping.deadlines import checked_extension

S = TypeVar("S", bound=Enum)

__all__ = [
    "SYSTEM",
    "StepOutsideKernelError",
    "Transition",
    "TransitionForbiddenError",
    "Workflow",
    "acting_for",
    "apply",
    "current_principal",
    "reset_principal",
    "seeding",
    "set_principal",
    "workflows",
]


class _System:
    """The principal of trusted code outside a request: the command line, workers, direct service calls."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Any = _System()

_principal: ContextVar[Any] = ContextVar("fivestar_round_principal", default=SYSTEM)
_applying: ContextVar[frozenset[int]] = ContextVar("fivestar_round_applying", default=frozenset())
_seeding: ContextVar[bool] = ContextVar("fivestar_round_seeding", default=False)


def current_principal() -> Any:
    return _principal.get()


def set_principal(principal: Any) -> Token[Any]:
    """Make `principal` the actor the kernel authorises (the web layer, once per request)."""
    return _principal.set(principal)


def reset_principal(token: Token[Any]) -> None:
    _principal.reset(token)


@contextmanager
def acting_for(principal: Any) -> Iterator[None]:
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


@contextmanager
def seeding() -> Iterator[None]:
    """Set steps as data (seed data, test arrangement): no transition, no authorisation, no audit."""
    token = _seeding.set(True)
    try:
        yield
    finally:
        _seeding.reset(token)


class TransitionForbiddenError(ServiceError):
    """The acting principal may not take this transition (its action is not theirs on this object)."""

    status = 403


class StepOutsideKernelError(RuntimeError):
    """A guarded step column was assigned outside `apply`: a programming error, never a user's."""


@dataclass(frozen=True)
class Transition(Generic[S]):
    """One move of a workflow: from any of `sources` to `target`, taken by whoever `action` is granted
    to; `needs_reason` transitions record why. A few moves may end elsewhere by a fact the caller
    knows (a branch's opinion goes to its 机关党委 when it has one, else straight to the committee):
    those list the other ends in `alternatives`, and the caller picks with `apply(..., to=)`."""

    name: str
    sources: frozenset[S]
    target: S
    action: Any  # fivestar.accounts.policy.Action
    needs_reason: bool = False
    alternatives: tuple[S, ...] = ()

    @property
    def targets(self) -> tuple[S, ...]:
        return (self.target, *self.alternatives)


_WORKFLOWS: list[Workflow[Any]] = []


def workflows() -> tuple[Workflow[Any], ...]:
    """Every declared workflow (for the tests that walk them all)."""
    return tuple(_WORKFLOWS)


@dataclass(frozen=True, eq=False)
class Workflow(Generic[S]):
    """A table of transitions over `model.<attribute>`. `name` is the audit events' prefix
    (`round_branch.start_joint`); `subject(obj)` is what `authorize` judges (the object itself
    unless said otherwise); `authorize(principal, action, subject)` is the policy's decision."""

    name: str
    model: type
    attribute: str
    transitions: tuple[Transition[S], ...]
    authorize: Callable[[Any, Any, Any], bool]
    subject: Callable[[Any], Any] = field(default=lambda obj: obj)
    labels: Mapping[S, Any] = field(default_factory=dict)  # what people read for each step (lazy text)
    by_name: dict[str, Transition[S]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {t.name: t for t in self.transitions})
        if len(self.by_name) != len(self.transitions):
            raise ValueError(f"workflow {self.name}: transition names repeat")
        event.listen(getattr(self.model, self.attribute), "set", _guard(self))
        _WORKFLOWS.append(self)

    def __getitem__(self, name: str) -> Transition[S]:
        return self.by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def label(self, step: S) -> str:
        return str(self.labels[step])

    def step_of(self, obj: Any) -> S:
        step: S = getattr(obj, self.attribute)
        return step

    def allows(self, principal: Any, name: str, obj: Any) -> bool:
        """Whether `principal` holds the action of transition `name` on `obj` (for pages' buttons)."""
        return principal is SYSTEM or self.authorize(principal, self[name].action, self.subject(obj))


def _guard(workflow: Workflow[Any]) -> Callable[..., None]:
    def on_set(target: Any, value: Any, oldvalue: Any, initiator: Any) -> None:
        if _seeding.get() or id(target) in _applying.get():
            return
        state = inspect(target)
        if state.transient or state.pending:  # being created: its first step is data, not a move
            return
        raise StepOutsideKernelError(
            f"{workflow.model.__name__}.{workflow.attribute} set to {value!r} outside fivestar.kernel.rounds.apply"
        )

    return on_set


@contextmanager
def _moving(obj: Any) -> Iterator[None]:
    token = _applying.set(_applying.get() | {id(obj)})
    try:
        yield
    finally:
        _applying.reset(token)


def apply(
    session: Session,
    workflow: Workflow[S],
    name: str,
    obj: Any,
    *,
    refusal: str | None,
    refused_as: type[ServiceError] = ConflictError,
    to: S | None = None,
    reason: str | None = None,
    changes: Callable[[], None] | None = None,
    before: Mapping[str, Any] | None = None,
    after: Callable[[], Mapping[str, Any]] | None = None,
    stale: str | None = None,
) -> S:
    """Take transition `name` of `workflow` on `obj`; returns the new step.

    `refusal` is the feature's reason why the transition may not happen now (None when it may),
    raised as `refused_as`. `to` picks among several targets. `changes` runs after the step is set,
    inside the same savepoint (dates, comments, who did it). `before`/`after` are the audit event's
    snapshots; by default the step alone; `stale` words the conflict when someone saved first.
    A refused transition writes nothing."""
    if name not in workflow:
        raise NotFoundError(_("没有这项操作"))
    transition = workflow[name]
    if refusal is not None:
        raise refused_as(refusal)
    principal = _principal.get()
    if not workflow.allows(principal, name, obj):
        raise TransitionForbiddenError(_("您没有执行此操作的权限"))
    current = workflow.step_of(obj)
    if current not in transition.sources:
        raise ConflictError(_("当前环节不能执行此操作"))
    target = to if to is not None else transition.target
    if target not in transition.targets:
        raise ValueError(f"{workflow.name}.{name} cannot go to {target!r}")
    text = (reason or "").strip() or None
    if transition.needs_reason and text is None:
        raise ServiceError(_("请填写退回原因"), field="reason")
    snapshot_before = dict(before) if before is not None else {workflow.attribute: current}
    with saving(session, message=stale), _moving(obj):
        setattr(obj, workflow.attribute, target)
        if changes is not None:
            changes()
    snapshot_after = dict(after()) if after is not None else {workflow.attribute: target}
    audit.record(session, f"{workflow.name}.{name}", obj, before=snapshot_before, after=snapshot_after, reason=text)
    return target


# --- what every round shares beside its transitions ---------------------------------------------------------


def load(session: Session, model: type, ident: int, missing: str, *options: Any) -> Any:
    """One row of a round's table by id within the current tenant, or NotFoundError with `missing`."""
    found = session.scalar(select(model).where(model.id == ident).options(*options))  # type: ignore[attr-defined]
    if found is None:
        raise NotFoundError(missing)
    return found


M = TypeVar("M")


def loader(model: type[M], missing: Any, *, with_branch: bool = False) -> Callable[[Session, int], M]:
    """The loader of one of a round's tables: by id within the current tenant, with the row's branch
    loaded when `with_branch` (as `authorize` needs it), NotFoundError with `missing` (a lazy message)
    when this tenant has no such row."""

    def load_one(session: Session, ident: int) -> M:
        if with_branch:
            found: M = load_with_branch(session, model, ident, str(missing))
        else:
            found = load(session, model, ident, str(missing))
        return found

    load_one.__doc__ = f"One {model.__name__} by id (NotFoundError when there is none)."
    return load_one


def load_with_branch(session: Session, model: Any, ident: int, missing: str) -> Any:
    """A row that hangs under a branch (a round's branch row, a rating, a quarterly review) with its
    `branch` loaded in the same query, as `authorize` needs it (the relationship raises on lazy SQL)."""
    found = session.scalar(
        select(model).join(model.branch).where(model.id == ident).options(contains_eager(model.branch))
    )
    if found is None:
        raise NotFoundError(missing)
    return found


def led_rows(
    session: Session, row: Any, round_: Any, paths: Iterable[str], *, open_state: Enum, newest: Any
) -> list[Any]:
    """(row, round) of the open rounds for the branches at `paths` (the ones a person leads), with
    the branch loaded, newest round first, then by branch name; one query."""
    wanted = list(paths)
    if not wanted:
        return []
    branch = row.branch.property.mapper.class_  # the organisation model, as the row maps it
    rows = session.execute(
        select(row, round_)
        .join(row.branch)
        .join(round_, row.round_id == round_.id)
        .where(branch.path.in_(wanted), round_.state == open_state)
        .options(contains_eager(row.branch))
        .order_by(newest.desc(), branch.name)
    )
    return [(found, its_round) for found, its_round in rows]


def count_by_step(session: Session, row: Any, round_: Any, attribute: str = "step") -> dict[Any, int]:
    """How many rows of a round stand at each step (one grouped query)."""
    step = getattr(row, attribute)
    rows: Any = session.execute(
        select(step, func.count()).where(row.round_id == round_.id, row.tenant_id == round_.tenant_id).group_by(step)
    )
    return {value: int(count) for value, count in rows}


def step_counts_in_scope(
    session: Session, row: Any, round_ids: Iterable[int], scope: Any, steps: Iterable[Any]
) -> dict[int, dict[Any, int]]:
    """Per round, how many of its rows within `scope` (the principal's organisations, a WHERE clause
    on the branch) stand at each step; one grouped query for every round."""
    ids, order = list(round_ids), list(steps)
    counts: dict[int, dict[Any, int]] = {round_id: dict.fromkeys(order, 0) for round_id in ids}
    if ids:
        rows: Any = session.execute(
            select(row.round_id, row.step, func.count()).join(row.branch).where(scope).group_by(row.round_id, row.step)
        )
        for round_id, step, count in rows:
            counts.setdefault(round_id, dict.fromkeys(order, 0))[step] = int(count)
    return counts


R = TypeVar("R", bound=Enum)


@dataclass(frozen=True)
class Facts(Generic[R, S]):
    """What every decision about a round's row starts from: when, in which time zone, whether the
    round is still open and where the row stands. Each round kind adds its own counts and deadlines."""

    now: dt.datetime
    timezone: str
    round_state: R
    step: S


@dataclass(frozen=True)
class Progress(Generic[M]):
    """A round on the committee's list with how many of its rows (in the person's scope) are at each step."""

    round: M
    steps: dict[Any, int]

    @property
    def branches(self) -> int:
        return sum(self.steps.values())


def standing_refusal(closed: str | None, transition: Transition[Any], step: Any, wrong_step: str) -> str | None:
    """What every transition's refusal starts with: the round is final (`closed`), or the object does
    not stand where the transition starts (`wrong_step`, worded by the round kind)."""
    if closed:
        return closed
    if step not in transition.sources:
        return wrong_step
    return None


def facts_of(round_: Any, row: Any, timezone: str) -> dict[str, Any]:
    """The fields every round kind's facts start with (`Facts`), for `row` of `round_` now."""
    return {"now": clock.now(), "timezone": timezone, "round_state": round_.state, "step": row.step}


def day_text(moment: dt.datetime, timezone: str) -> str:
    """A deadline's day as people read it in refusals (the tenant's calendar day)."""
    return short_date(moment.astimezone(ZoneInfo(timezone)))


def ensure_open(refusal: str | None) -> None:
    """The finalisation guard both rounds share: a closed or finalised round refuses with a 409."""
    if refusal is not None:
        raise ConflictError(refusal)


def clean_reason(text: str | None, *, required: str, longest: int, too_long: str, field: str = "reason") -> str:
    """A reason (return, comment) as written once for every round: stripped, required, bounded."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise ServiceError(required, field=field)
    if len(cleaned) > longest:
        raise ServiceError(too_long, field=field)
    return cleaned


def extend_deadline(
    session: Session,
    round_: Any,
    *,
    which: str,
    columns: Mapping[str, str],
    label: Callable[[str], str],
    new_day: dt.date,
    reason: str | None,
    timezone: str,
    audit_name: str,
    audit_key: str,
    field_name: str,
    stale: str | None = None,
) -> Any:
    """Move one of a round's deadlines (the column `columns[which]`, in the order the steps fall) to
    the end of `new_day`, as every round does: the rules are `timekeeping.deadlines.checked_extension`
    (a reason, a later day, before the next step's deadline); the change is flushed in a savepoint
    (a stale round is `StaleEditError`) and audited as `audit_name` with the reason. The caller runs
    its round's guard and version check first."""
    if which not in columns:
        raise ServiceError(_("请选择要延期的环节"), field=field_name)
    column = columns[which]
    current: dt.datetime | None = getattr(round_, column)
    order = list(columns)
    new_due, text = checked_extension(
        label=label(which),
        current=current,
        new_day=new_day,
        reason=reason,
        timezone=timezone,
        later=[(label(s), getattr(round_, columns[s])) for s in order[order.index(which) + 1 :]],
    )
    with saving(session, message=stale):
        setattr(round_, column, new_due)
    audit.record(
        session,
        audit_name,
        round_,
        before={audit_key: which, column: current},
        after={audit_key: which, column: new_due},
        reason=text,
    )
    return round_
