"""The home page's work list: every feature's `worklist.pending`, gathered and grouped by urgency.

A feature that gives people work answers "what is waiting for this principal?" in its own
`worklist.py` (`pending(session, principal, now) -> list[WorkItem]`, a fixed number of set-based
statements, filtered through the permission policy's SQL scopes). Adding one to every home page is one
line in `PROVIDERS`. The home knows no feature's tables: it orders (`kernel.worklist.ordered`) and
groups what the providers answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from fivestar.accounts import worklist as accounts_worklist
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds import worklist as branch_rounds_worklist
from fivestar.exports import worklist as exports_worklist
from fivestar.improvement import worklist as improvement_worklist
from fivestar.kernel.worklist import DUE_SOON, WorkItem, ordered
from fivestar.member_rounds import worklist as member_rounds_worklist
from fivestar.scheduling import worklist as scheduling_worklist
from fivestar.standing import worklist as standing_worklist

Provider = Callable[[Session, Principal, dt.datetime], list[WorkItem]]

#: Every feature's work-list provider. A new one is one more line here.
PROVIDERS: list[Provider] = [
    member_rounds_worklist.pending,
    branch_rounds_worklist.pending,
    accounts_worklist.pending,  # failed outbox messages
    exports_worklist.pending,  # failed reports to superior committees
    scheduling_worklist.pending,  # failed calendar items
    standing_worklist.pending,  # mid-year events the committee should consider (增星摘星)
    improvement_worklist.pending,  # plans to publish, plan items due, acceptance reviews due
]


@dataclass
class WorkList:
    """A person's work, most urgent first, in the home page's three groups."""

    overdue: list[WorkItem] = field(default_factory=list)
    due_soon: list[WorkItem] = field(default_factory=list)
    other: list[WorkItem] = field(default_factory=list)

    @property
    def items(self) -> list[WorkItem]:
        return [*self.overdue, *self.due_soon, *self.other]

    def __bool__(self) -> bool:
        return bool(self.overdue or self.due_soon or self.other)


def gather(
    session: Session, principal: Principal, now: dt.datetime, providers: list[Provider] | None = None
) -> WorkList:
    """What every provider answers for `principal` at `now`, ordered and grouped: overdue, due within
    `DUE_SOON`, the rest (later deadlines and items without one)."""
    items: list[WorkItem] = []
    for provider in PROVIDERS if providers is None else providers:
        items.extend(provider(session, principal, now))
    work = WorkList()
    for item in ordered(items, now):
        if item.is_overdue(now):
            work.overdue.append(item)
        elif item.due is not None and item.due - now <= DUE_SOON:
            work.due_soon.append(item)
        else:
            work.other.append(item)
    return work
