"""Work lists: what is waiting for a person now, most urgent first.

A home page is a work list. Each feature that gives people work answers "what is waiting for this
principal?" in its own `worklist.py` (`pending(session, principal, now) -> list[WorkItem]`, a fixed
number of set-based queries whatever the number of rows), and the home page gathers the answers and
orders them with `ordered()`. An item names the page that does the work as an endpoint and its
arguments, because domain code builds no URLs (it never imports Flask): the web layer turns them into
a link one tap away.

Urgency: overdue items first (the longest overdue at the top), then items with a deadline (the
nearest first), then items without one; within each, by kind and title so the order is stable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: An item whose deadline is this close is "due soon" on the home page; reminders of a step that is
#: long away (branches that have months left to report) are listed only once their deadline is this close.
DUE_SOON = dt.timedelta(days=7)

#: How an item is shown: a task someone must do, or something to look at (a failed delivery, a prompt).
Tone = str


@dataclass(frozen=True)
class WorkItem:
    """One thing waiting for a person.

    `kind` is a stable key (`"member_round.self_assessment"`, `"plan.item_due"` …) for tests and for
    grouping; `title` says what to do in the reader's language; `detail` says where (which round,
    which branch); `count` is how many rows stand behind it where the item sums several (12 members
    still to score). `due` is an aware UTC instant, or None when nothing sets a deadline.
    """

    kind: str
    title: str
    endpoint: str
    params: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""
    due: dt.datetime | None = None
    count: int | None = None

    def is_overdue(self, now: dt.datetime) -> bool:
        return self.due is not None and self.due < now


def is_near(due: dt.datetime | None, now: dt.datetime) -> bool:
    """The deadline has passed or is at most `DUE_SOON` away."""
    return due is not None and due - now <= DUE_SOON


def urgency_key(item: WorkItem, now: dt.datetime) -> tuple[int, float, str, str]:
    """Overdue first (oldest deadline first), then the nearest deadline, then no deadline."""
    if item.due is None:
        return (2, 0.0, item.kind, item.title)
    seconds = (item.due - now).total_seconds()
    return (0 if seconds < 0 else 1, seconds, item.kind, item.title)


def ordered(items: Iterable[WorkItem], now: dt.datetime) -> list[WorkItem]:
    """The items most urgent first (see the module's docstring)."""
    return sorted(items, key=lambda item: urgency_key(item, now))
