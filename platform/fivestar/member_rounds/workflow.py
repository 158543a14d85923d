"""The member round's states and transitions, written down in one place.

The tables are declared over the rounds kernel (fivestar.kernel.rounds): a step changes only through
`rounds.apply`, which checks the refusal, authorises the transition's action, sets the step, audits it.
A branch walks SELF → JOINT → REVIEW → NOTICE → FINALISED; the committee may return it from NOTICE or
FINALISED to REVIEW. Each member's self-assessment walks PENDING/DRAFT → SUBMITTED, and the branch
may return it (→ RETURNED) or enter it for a member without an account. Whether a transition is
allowed depends on facts the services gather (deadlines, counts); `refusal()` turns them into the
reason a person reads, in Chinese, or None when the transition may go ahead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fivestar.accounts.policy import Action, authorize
from fivestar.i18n import _, _l, short_date
from fivestar.kernel import rounds
from fivestar.kernel.rounds import Transition, Workflow
from fivestar.member_rounds.models import BranchStep, MemberRound, RoundBranch, RoundState, SelfState

# The branch's steps: a table over RoundBranch.step, moved only by fivestar.kernel.rounds.apply.
BRANCH_WORKFLOW: Workflow[BranchStep] = Workflow(
    "round_branch",
    RoundBranch,
    "step",
    (
        Transition("start_joint", frozenset({BranchStep.SELF}), BranchStep.JOINT, Action.ROUND_EVALUATE),
        Transition("start_review", frozenset({BranchStep.JOINT}), BranchStep.REVIEW, Action.ROUND_EVALUATE),
        Transition("submit_notice", frozenset({BranchStep.REVIEW}), BranchStep.NOTICE, Action.ROUND_EVALUATE),
        Transition("finalise", frozenset({BranchStep.NOTICE}), BranchStep.FINALISED, Action.ROUND_EVALUATE),
        Transition(
            "return", frozenset({BranchStep.NOTICE, BranchStep.FINALISED}), BranchStep.REVIEW,
            Action.ROUND_RETURN, needs_reason=True,
        ),
    ),
    authorize,
    labels={
        BranchStep.SELF: _l("个人自评"), BranchStep.JOINT: _l("党群联评"), BranchStep.REVIEW: _l("支部审评"),
        BranchStep.NOTICE: _l("公示"), BranchStep.FINALISED: _l("已上报"),
    },
)
BRANCH_TRANSITIONS: dict[str, Transition[BranchStep]] = BRANCH_WORKFLOW.by_name


EDITABLE_SELF = frozenset({SelfState.PENDING, SelfState.DRAFT, SelfState.RETURNED})

# A member's self-assessment. Not a kernel workflow: its state is written with the member's scores in
# one save (self_assessment._write), and the member acts on their own record (SELF_ASSESS); the table
# still says who may take each move, and `self_refusal` when.
SELF_TRANSITIONS: dict[str, Transition[SelfState]] = {
    t.name: t
    for t in (
        Transition("save_draft", EDITABLE_SELF, SelfState.DRAFT, Action.SELF_ASSESS),
        Transition("submit", EDITABLE_SELF, SelfState.SUBMITTED, Action.SELF_ASSESS),
        Transition("enter_for_member", EDITABLE_SELF, SelfState.SUBMITTED, Action.ROUND_EVALUATE),
        Transition(
            "return", frozenset({SelfState.SUBMITTED}), SelfState.RETURNED, Action.ROUND_EVALUATE, needs_reason=True
        ),
    )
}


@dataclass(frozen=True)
class RoundFacts(rounds.Facts[RoundState, BranchStep]):
    """What a decision about a branch (or one of its members) depends on."""

    self_due_at: dt.datetime
    joint_due_at: dt.datetime
    review_due_at: dt.datetime
    members: int = 0  # active members of the branch in this round
    self_pending: int = 0  # active members whose self-assessment is not submitted
    unscored: int = 0  # active members without final scores or a 不予评星 decision
    open_objections: int = 0
    notice_ends_at: dt.datetime | None = None
    meeting_recorded: bool = True  # the 党群联评 meeting (date, attendance) is on record
    joint_missing: int = 0  # active members without 党群联评 scores


_day = rounds.day_text


def _when(moment: dt.datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{short_date(local)} {local:%H:%M}"


def _step_label(step: BranchStep) -> str:
    return BRANCH_WORKFLOW.label(step)


step_label = _step_label


def closed_refusal(round_state: RoundState) -> str | None:
    """The refusal of every change to a closed round's results, or None while the round is open.

    Closing (closing.close_round) is when a member round's results become final: the scores, levels,
    self-assessments, notices and objections they rest on stay as they were decided. (The committee
    returning a branch's reported list to review, with a reason, happens while the round is open.)
    Every service that writes such things calls `core.ensure_open`, which raises this as a 409."""
    return _("本轮评定已结束，不能再更改") if round_state is RoundState.CLOSED else None


def refusal(name: str, facts: RoundFacts) -> str | None:
    """Why the branch transition `name` may not happen now, or None if it may."""
    wrong_step = _("当前处于“%(step)s”阶段，不能执行此操作", step=_step_label(facts.step))
    if standing := rounds.standing_refusal(closed_refusal(facts.round_state), BRANCH_TRANSITIONS[name], facts.step,
                                           wrong_step):
        return standing
    tz = facts.timezone
    if name == "start_joint":
        if facts.self_pending and facts.now <= facts.self_due_at:
            return _(
                "还有 %(n)d 名党员未提交自评；自评截止于 %(day)s，截止前须全部提交后才能开始党群联评",
                n=facts.self_pending, day=_day(facts.self_due_at, tz),
            )
        if facts.now > facts.joint_due_at:
            return _("党群联评已截止于 %(day)s，请联系工委延长期限", day=_day(facts.joint_due_at, tz))
    if name == "start_review":
        if facts.now > facts.joint_due_at:
            return _("党群联评已截止于 %(day)s，请联系工委延长期限", day=_day(facts.joint_due_at, tz))
        if not facts.meeting_recorded:
            return _("尚未记录党群联评会议（日期、到会人数），记录后才能开始支部审评")
        if facts.joint_missing:
            return _("还有 %(n)d 名党员没有党群联评分数，全部评定后才能开始支部审评", n=facts.joint_missing)
    if name == "submit_notice":
        if facts.unscored:
            return _("还有 %(n)d 名党员未完成审评（未定分数，也未决定不予评星）", n=facts.unscored)
        if facts.now > facts.review_due_at:
            return _("支部审评已截止于 %(day)s，请联系工委延长期限", day=_day(facts.review_due_at, tz))
    if name == "finalise":
        if facts.notice_ends_at is not None and facts.now <= facts.notice_ends_at:
            return _("公示期到 %(when)s 结束，结束后才能上报", when=_when(facts.notice_ends_at, tz))
        if facts.open_objections:
            return _("还有 %(n)d 条异议未答复，全部答复后才能上报", n=facts.open_objections)
    return None


def self_refusal(name: str, state: SelfState, facts: RoundFacts) -> str | None:
    """Why a member's self-assessment may not take transition `name` now, or None."""
    transition = SELF_TRANSITIONS[name]
    closed = closed_refusal(facts.round_state)
    if closed:
        return closed
    if state not in transition.sources:
        if state is SelfState.SUBMITTED:
            return _("自评已提交，不能再修改；如需修改，请联系支部退回")
        return _("自评尚未提交，无需退回")
    if name in ("save_draft", "submit"):
        if facts.step is not BranchStep.SELF:
            return _("支部已进入“%(step)s”阶段，自评已结束", step=_step_label(facts.step))
        if facts.now > facts.self_due_at:
            return _("自评已截止于 %(day)s", day=_day(facts.self_due_at, facts.timezone))
    if name in ("enter_for_member", "return") and facts.step not in (BranchStep.SELF, BranchStep.JOINT):
        return _("支部已进入“%(step)s”阶段，不能再代录或退回自评", step=_step_label(facts.step))
    return None


# What the branch may save at each of its own steps (not a transition: the step stays the same).
EDITABLE_AT = {"joint": BranchStep.JOINT, "review": BranchStep.REVIEW}
FOLLOW_UP_STEPS = frozenset({BranchStep.NOTICE, BranchStep.FINALISED})


def edit_refusal(name: str, facts: RoundFacts) -> str | None:
    """Why the branch may not save its 党群联评 ("joint": the meeting and the grid) or its 支部审评
    ("review": final scores, bonus, 不予评星) now, or None. Saving ends with the step's deadline."""
    step = EDITABLE_AT[name]
    closed = closed_refusal(facts.round_state)
    if closed:
        return closed
    if facts.step is not step:
        return _(
            "当前处于“%(step)s”阶段，不能保存%(what)s", step=_step_label(facts.step), what=_step_label(step)
        )
    due = facts.joint_due_at if name == "joint" else facts.review_due_at
    if facts.now > due:
        return _(
            "%(what)s已截止于 %(day)s，请联系工委延长期限", what=_step_label(step), day=_day(due, facts.timezone)
        )
    return None


def follow_up_refusal(facts: RoundFacts) -> str | None:
    """Why mentors, talks and rectification deadlines may not be recorded yet: they follow the
    results, which are settled once the branch has submitted them for public notice."""
    if facts.step not in FOLLOW_UP_STEPS:
        return _("支部审评结果提交公示后，才能安排帮扶、谈话和整改")
    return None


# --- the round itself: OPEN → CLOSED (closing.py) --------------------------------------------------


ROUND_WORKFLOW: Workflow[RoundState] = Workflow(
    "member_round",
    MemberRound,
    "state",
    (Transition("close", frozenset({RoundState.OPEN}), RoundState.CLOSED, Action.ROUND_MANAGE),),
    authorize,
)
ROUND_TRANSITIONS: dict[str, Transition[RoundState]] = ROUND_WORKFLOW.by_name


def round_refusal(name: str, state: RoundState, branches_by_step: dict[BranchStep, int]) -> str | None:
    """Why the round transition `name` may not happen now, or None. Closing needs every branch of
    the round to have reported (FINALISED); the refusal says how many are at which step."""
    transition = ROUND_TRANSITIONS[name]
    closed = closed_refusal(state)
    if closed:
        return closed
    if state not in transition.sources:
        return _("本轮评定已结束，不能再更改")
    if name == "close":
        pending = [(step, branches_by_step.get(step, 0)) for step in BranchStep if step is not BranchStep.FINALISED]
        pending = [(step, n) for step, n in pending if n]
        if pending:
            detail = "、".join(_("%(step)s %(n)d 个", step=_step_label(step), n=n) for step, n in pending)
            return _(
                "还有 %(n)d 个支部尚未上报（%(detail)s），全部上报后才能结束本轮评定",
                n=sum(n for _step, n in pending), detail=detail,
            )
    return None
