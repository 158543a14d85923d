"""Thin tasks: each one opens its sessions, calls a `fivestar` service and commits or lets it commit.

The business logic lives in `fivestar`; a task only says when it runs. Tasks are sent by name
(`fivestar.broker.enqueue(settings, task_names.DELIVER_OUTBOX)`), so the names are the contract
with the web side and must not change; they are written once, in `fivestar.kernel.task_names`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from fivestar.db import utcnow
from fivestar.kernel.task_names import (
    DEFAULT_QUEUE,
    DELIVER_OUTBOX,
    EXPORTS_SWEEP,
    REPORTS_QUEUE,
    REPORTS_SWEEP,
    RUN_DUE,
    TICK,
)
from fivestar.outbox.delivery import deliver_due
from fivestar.scheduling.runner import run_due
from workers.app import app
from workers.base import FivestarTask

log = logging.getLogger(__name__)

#: What every minute tick sends. Later features add their sweeps here (opening due rounds, step
#: deadlines, reminders, scheduled exports): each is a task that claims due *rows* with a
#: conditional update, so a repeated or redelivered tick changes nothing.
TICK_FANOUT: tuple[str, ...] = (RUN_DUE, DELIVER_OUTBOX, REPORTS_SWEEP, EXPORTS_SWEEP)


@app.task(name=TICK, bind=True)
def tick(self: FivestarTask) -> dict[str, Any]:
    """The platform-wide UTC minute tick fired by beat: fan out the periodic sweeps.

    Sweeps run as their own tasks so a slow one (or one that fails) does not hold the others.
    They go to the queue the tick came from (normally `default`), so a worker serving a private
    queue — a test, a second instance on a shared Redis — keeps its sweeps to itself.
    """
    now = utcnow()
    queue = _own_queue(self)
    for name in TICK_FANOUT:
        self.app.send_task(name, queue=_sweep_queue(name, queue))
    log.info("tick %s: sent %s", now.isoformat(timespec="seconds"), ", ".join(TICK_FANOUT))
    return {"at": now.isoformat(), "sent": list(TICK_FANOUT)}


@app.task(name=DELIVER_OUTBOX, bind=True)
def deliver_outbox(self: FivestarTask, limit: int = 100) -> Any:
    """Send the outbox e-mails that are due (once each, retried with backoff by the service).

    Enqueued by the web side after it commits mail, and by every tick as a sweep: a message the
    broker lost is still sent within a minute, and a duplicate message finds nothing due.
    """
    stuck_after = dt.timedelta(seconds=self.settings.claim_timeout_seconds)
    report = deliver_due(self.session_factory, self.settings, limit=limit, stuck_after=stuck_after)
    if not report.aborted and report.claimed + report.skipped >= limit:
        # A full batch: there may be more due now; continue at once rather than in a minute.
        self.app.send_task(DELIVER_OUTBOX, kwargs={"limit": limit}, queue=_own_queue(self))
    return dataclasses.asdict(report)


#: Sweeps that wait on the network (an HTTPS or SFTP export can take minutes): from the default
#: queue they go to the reports queue, so a slow receiver never delays reminders (CONTRIBUTING.md "Workers").
SLOW_SWEEPS = frozenset({EXPORTS_SWEEP})


def _sweep_queue(name: str, tick_queue: str) -> str:
    return REPORTS_QUEUE if tick_queue == DEFAULT_QUEUE and name in SLOW_SWEEPS else tick_queue


def _own_queue(task: FivestarTask) -> str:
    """The queue the current message came from (our exchanges are direct: routing key = queue)."""
    info = task.request.delivery_info or {}
    return str(info.get("routing_key") or DEFAULT_QUEUE)


@app.task(name=RUN_DUE, bind=True)
def run_due_items(self: FivestarTask, limit: int = 50) -> Any:
    """Plan every tenant's calendar and perform what is due (fivestar.scheduling.runner).

    Sent by every tick. A duplicate or redelivered message finds the rows already claimed or done,
    and the effects are unique in the database, so nothing happens twice.
    """
    report = run_due(
        self.session_factory,
        limit=limit,
        base_url=self.settings.base_url,
        stuck_after=dt.timedelta(seconds=self.settings.claim_timeout_seconds),
    )
    if report.claimed + report.skipped >= limit:
        self.app.send_task(RUN_DUE, kwargs={"limit": limit}, queue=_own_queue(self))
    if report.done:
        # Reminders wrote outbox messages: deliver them now rather than at the next tick.
        self.app.send_task(DELIVER_OUTBOX, queue=_own_queue(self))
    return dataclasses.asdict(report)
