"""A mid-year event's steps: it prompts the committee, and the committee resolves it.

A veto event, a sanction or an honour recorded between rounds never changes a level by itself: it
stands OPEN on the committee's work list until the committee either records an adjustment that
answers it (ADJUSTED) or keeps the level and says why (DISMISSED). Small as it is, it is a workflow
like a round's, declared over the rounds kernel (`fivestar.kernel.rounds`): the state changes only
through `rounds.apply`, which authorises `STANDING_ADJUST`, checks the step, requires the reason of a
dismissal and audits the move.
"""

from __future__ import annotations

from fivestar.accounts.policy import Action, authorize
from fivestar.i18n import _, _l
from fivestar.kernel.rounds import Transition, Workflow
from fivestar.standing.models import EventState, StandingEvent

EVENT_WORKFLOW: Workflow[EventState] = Workflow(
    "standing_event",
    StandingEvent,
    "state",
    (
        # Answered by an adjustment of the subject's level (增星摘星), recorded in the same transaction.
        Transition("adjust", frozenset({EventState.OPEN}), EventState.ADJUSTED, Action.STANDING_ADJUST),
        # The committee keeps the level: the reason is required and shown with the event.
        Transition(
            "dismiss", frozenset({EventState.OPEN}), EventState.DISMISSED, Action.STANDING_ADJUST, needs_reason=True
        ),
    ),
    authorize,
    labels={EventState.OPEN: _l("待研究"), EventState.ADJUSTED: _l("已调整星级"), EventState.DISMISSED: _l("不予调整")},
)


def refusal(event: StandingEvent) -> str | None:
    """Why the event cannot be resolved now, or None: only an open event can."""
    return None if event.state is EventState.OPEN else _("该事项已处理")
