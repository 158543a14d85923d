"""What standing gives the committee to do: the open prompts (a veto event against a branch, a
member's sanction or honour recorded mid-year) waiting for a decision — an adjustment, or a dismissal
with a reason. One query, whatever the number of prompts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.policy import Action, authorize
from fivestar.accounts.principal import Principal
from fivestar.i18n import _
from fivestar.kernel.worklist import WorkItem
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.standing.models import EventKind, EventState, StandingEvent

ENDPOINT = "standing.event"


def _title(kind: EventKind) -> str:
    return {
        EventKind.VETO: _("否决事项：请研究是否摘星"),
        EventKind.SANCTION: _("党员受处分：请研究是否调整星级"),
        EventKind.HONOUR: _("党员获表彰：请研究是否增星"),
    }[kind]


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """The open prompts, for those who may adjust levels (the working committee, administrators)."""
    if not authorize(principal, Action.STANDING_ADJUST):
        return []
    member_branch = aliased(Organisation)
    rows = session.execute(
        select(
            StandingEvent.id,
            StandingEvent.kind,
            StandingEvent.occurred_on,
            Organisation.name,
            Member.name,
            member_branch.name,
        )
        .outerjoin(
            Organisation,
            (Organisation.id == StandingEvent.branch_id) & (Organisation.tenant_id == StandingEvent.tenant_id),
        )
        .outerjoin(Member, (Member.id == StandingEvent.member_id) & (Member.tenant_id == StandingEvent.tenant_id))
        .outerjoin(
            member_branch, (member_branch.id == Member.branch_id) & (member_branch.tenant_id == Member.tenant_id)
        )
        .where(StandingEvent.state == EventState.OPEN)
        .order_by(StandingEvent.occurred_on, StandingEvent.id)
    )
    items: list[WorkItem] = []
    for event_id, kind, occurred_on, branch_name, member_name, member_branch_name in rows:
        who = branch_name if branch_name is not None else f"{member_name}（{member_branch_name}）"
        items.append(
            WorkItem(
                kind="standing.prompt",
                title=_title(kind),
                endpoint=ENDPOINT,
                params={"event_id": event_id},
                detail=_("%(who)s · %(day)s", who=who, day=occurred_on.isoformat()),
            )
        )
    return items


__all__ = ["ENDPOINT", "pending"]
