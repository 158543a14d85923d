"""The branch rating's states and transitions, written down in one place.

A branch walks RECOMMEND (荐星) → DELIBERATE (议星) → ORG_REVIEW (its 机关党委/党总支, when it has one)
→ COMMITTEE → DECIDED (定星). The organisation above may return it to RECOMMEND with a reason. The
round itself is finalised (and published, 亮星) in a committee meeting once every branch is decided.
The tables are declared over the rounds kernel (fivestar.kernel.rounds): a step or the round's state
changes only through `rounds.apply`. The 议星 meeting's own states (SETUP → VOTING → CLOSED,
`meeting_refusal`) live inside the DELIBERATE step and are moved by the ballot, whose voters act
with codes, not as principals. `refusal()` turns the facts the services gather into the reason a person reads, or None.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fivestar.accounts.policy import Action, authorize
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, MeetingState, RatingStep
from fivestar.i18n import _, _l
from fivestar.kernel import rounds
from fivestar.kernel.rounds import Transition, Workflow

# A branch's rating: a table over BranchRating.step, moved only by fivestar.kernel.rounds.apply.
RATING_WORKFLOW: Workflow[RatingStep] = Workflow(
    "branch_rating",
    BranchRating,
    "step",
    (
        # 荐星 done: scores, veto answers and the statement go to the 议星 meeting.
        Transition(
            "submit_recommendation", frozenset({RatingStep.RECOMMEND}), RatingStep.DELIBERATE, Action.BRANCH_RATE
        ),
        # 议星 done: the branch's opinion goes up, to its 机关党委/党总支 or straight to the committee
        # (next_after_opinion picks which).
        Transition(
            "submit_opinion", frozenset({RatingStep.DELIBERATE}), RatingStep.ORG_REVIEW, Action.BRANCH_RATE,
            alternatives=(RatingStep.COMMITTEE,),
        ),
        Transition("forward", frozenset({RatingStep.ORG_REVIEW}), RatingStep.COMMITTEE, Action.BRANCH_FORWARD),
        Transition(
            "org_return", frozenset({RatingStep.ORG_REVIEW}), RatingStep.RECOMMEND, Action.BRANCH_FORWARD,
            needs_reason=True,
        ),
        # 定星, and changing a decision while the round is open.
        Transition(
            "decide", frozenset({RatingStep.COMMITTEE, RatingStep.DECIDED}), RatingStep.DECIDED, Action.BRANCH_DECIDE
        ),
    ),
    authorize,
    labels={
        RatingStep.RECOMMEND: _l("荐星"), RatingStep.DELIBERATE: _l("议星"),
        RatingStep.ORG_REVIEW: _l("机关党委/党总支审核"), RatingStep.COMMITTEE: _l("工委定星"),
        RatingStep.DECIDED: _l("已定星"),
    },
)
TRANSITIONS: dict[str, Transition[RatingStep]] = RATING_WORKFLOW.by_name

# The round itself: OPEN → FINALISED in the committee meeting (decision.finalise_round). The people who
# decide the levels record the meeting, so it takes BRANCH_DECIDE.
ROUND_WORKFLOW: Workflow[BranchRoundState] = Workflow(
    "branch_round",
    BranchRound,
    "state",
    (
        Transition(
            "finalise", frozenset({BranchRoundState.OPEN}), BranchRoundState.FINALISED, Action.BRANCH_DECIDE
        ),
    ),
    authorize,
)


def step_label(step: RatingStep) -> str:
    return RATING_WORKFLOW.label(step)


def next_after_opinion(has_middle_organisation: bool) -> RatingStep:
    """A branch under a 机关党委 or 党总支 goes there first; one directly under the committee does not."""
    return RatingStep.ORG_REVIEW if has_middle_organisation else RatingStep.COMMITTEE


@dataclass(frozen=True)
class RatingFacts(rounds.Facts[BranchRoundState, RatingStep]):
    """What a decision about one branch's rating depends on."""

    self_report_due_at: dt.datetime
    committee_due_at: dt.datetime
    unscored_criteria: int = 0
    unanswered_vetoes: int = 0
    unanswered_facts: int = 0
    has_statement: bool = False
    meeting_state: MeetingState | None = None  # None: no 议星 meeting set up yet
    has_results: bool = False  # electronic ballots or paper tallies reach the rules' minimum
    has_opinion: bool = False


_day = rounds.day_text


def finalised_refusal(round_state: BranchRoundState) -> str | None:
    """The refusal of every change to a finalised (定星并公布) round, or None while it is open.

    Once the committee meeting has finalised the year, the levels, decisions and everything they
    rest on (荐星 scores, veto and fact answers, evidence files, the 议星 meeting, its ballots and
    paper tallies, the branch's opinion, the organisation's forwarding, the committee's decisions
    and the meeting's participants) stay as they were decided. Every service that writes such
    things calls `core.ensure_open`, which raises this as a 409."""
    return _("本年度星级评定已定星公布，不能再更改") if round_state is BranchRoundState.FINALISED else None


def refusal(name: str, facts: RatingFacts) -> str | None:
    """Why transition `name` may not happen now, or None if it may."""
    standing = rounds.standing_refusal(
        finalised_refusal(facts.round_state), TRANSITIONS[name], facts.step,
        _("当前处于“%(step)s”环节，不能执行此操作", step=step_label(facts.step)),
    )
    if standing is not None:
        return standing
    if name == "submit_recommendation":
        if facts.unscored_criteria:
            return _("还有 %(n)d 项评分标准未打分", n=facts.unscored_criteria)
        if facts.unanswered_vetoes:
            return _("还有 %(n)d 项一票否决事项未回答", n=facts.unanswered_vetoes)
        if facts.unanswered_facts:
            return _("还有 %(n)d 项情况未填写", n=facts.unanswered_facts)
        if not facts.has_statement:
            return _("请填写自我荐星说明")
    if name == "submit_opinion":
        if facts.meeting_state is not MeetingState.CLOSED:
            return _("议星测评尚未结束，请先结束投票")
        if not facts.has_results:
            return _("有效测评票数不足规则要求的最低票数，请补录纸质测评票")
        if not facts.has_opinion:
            return _("请先形成支部“评星定级”意见（建议星级和说明）")
    if name in ("submit_recommendation", "submit_opinion", "forward") and facts.now > facts.self_report_due_at:
        return _("自评上报已于 %(day)s 截止，请联系工委延长期限", day=_day(facts.self_report_due_at, facts.timezone))
    if name == "decide" and facts.now > facts.committee_due_at:
        return _("定星期限已于 %(day)s 截止，请先延长期限", day=_day(facts.committee_due_at, facts.timezone))
    return None


def meeting_refusal(
    name: str, state: MeetingState, round_state: BranchRoundState, step: RatingStep, *, ballots_cast: int = 0
) -> str | None:
    """Why the 议星 meeting may not take step `name` now: setup, issue_slips, reissue (revoke every
    code and print new ones: only while no ballot has been cast), cast (a voter's ballot),
    close_voting, tally (paper ballots), opinion (the branch's opinion is formed after voting)."""
    finalised = finalised_refusal(round_state)
    if finalised:
        return finalised
    if step is not RatingStep.DELIBERATE:
        if name == "cast":
            return _("本次测评已结束")
        return _("当前处于“%(step)s”环节，议星会议不能更改", step=step_label(step))
    if name in ("setup", "issue_slips") and state is not MeetingState.SETUP:
        return _("测评已开始，会议安排和测评票不能再更改")
    if name == "reissue":
        if state is MeetingState.CLOSED:
            return _("测评已结束，不能重新发放测评票")
        if ballots_cast:
            return _("已有 %(n)d 张测评票投出，不能再重新发放测评票", n=ballots_cast)
    if name == "cast" and state is not MeetingState.VOTING:
        return _("本次测评已结束") if state is MeetingState.CLOSED else _("测评尚未开始")
    if name == "close_voting" and state is not MeetingState.VOTING:
        return _("测评未在进行中")
    if name == "tally" and state is MeetingState.SETUP:
        return _("请先发放测评票并开始测评")
    if name == "opinion" and state is not MeetingState.CLOSED:
        return _("议星测评尚未结束，请先结束投票")
    return None


# --- the round itself: OPEN → FINALISED (decision.finalise_round) ---------------------------------------


def round_refusal(name: str, state: BranchRoundState, steps: dict[RatingStep, int]) -> str | None:
    """Why the round may not take step `name` ("finalise", "extend") now. Finalising needs every
    branch decided (DECIDED); it has no deadline of its own: the committee deadline governs the
    individual decisions, and the meeting that finalises them may sit later."""
    finalised = finalised_refusal(state)
    if finalised:
        return finalised
    if name == "finalise":
        if not sum(steps.values()):
            return _("本年度没有参评的党支部")
        pending = sum(count for step, count in steps.items() if step is not RatingStep.DECIDED)
        if pending:
            return _("还有 %(n)d 个党支部尚未定星，全部定星后才能确定并公布结果", n=pending)
    return None
