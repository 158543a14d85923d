"""Every Celery task name and queue name, in one place.

Web code and services send tasks by name (`fivestar.broker.enqueue`), the workers register them under
the same names (`workers/`), and a message already sitting in a queue during an upgrade carries the
name it was sent with — so a name is a contract that outlives one release. Writing each once, here,
means the sender and the task cannot drift apart by a typo, and a test (tests/unit/test_worker_base.py)
checks that the Celery app registers exactly the tasks listed in `TASKS`.

`fivestar` never imports `workers`; both import this module.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_QUEUE",
    "DELIVER_OUTBOX",
    "EXPORTS_SWEEP",
    "QUEUES",
    "REPORTS_GENERATE",
    "REPORTS_QUEUE",
    "REPORTS_SWEEP",
    "REPORTS_TASK_PATTERN",
    "RUN_DUE",
    "TASKS",
    "TICK",
]

# --- queues ------------------------------------------------------------------------------------------

#: Short work: the tick, reminders, the outbox, round openings.
DEFAULT_QUEUE: Final = "default"
#: Long work (reports, exports that wait on a receiver) so it never delays reminders.
REPORTS_QUEUE: Final = "reports"

QUEUES: Final = (DEFAULT_QUEUE, REPORTS_QUEUE)

# --- tasks -------------------------------------------------------------------------------------------

#: Beat's one platform-wide UTC tick; it fans out the sweeps below.
TICK: Final = "fivestar.tick"
#: Send the due outbox messages (fivestar.outbox.delivery).
DELIVER_OUTBOX: Final = "fivestar.deliver_outbox"
#: Plan every tenant's calendar and perform the due items (fivestar.scheduling.runner).
RUN_DUE: Final = "fivestar.run_due"
#: Produce one report job: arguments (tenant id, job id) (fivestar.reports.jobs.services).
REPORTS_GENERATE: Final = "fivestar.reports.generate"
#: Give back the report jobs of dead workers, resend lost messages, expire old files.
REPORTS_SWEEP: Final = "fivestar.reports.sweep"
#: Plan, ask for the reports of, and send the exports to superior committees (fivestar.exports).
EXPORTS_SWEEP: Final = "fivestar.exports.sweep"

#: Every report task's name matches this: the Celery app routes them to REPORTS_QUEUE.
REPORTS_TASK_PATTERN: Final = "fivestar.reports.*"

TASKS: Final = frozenset({TICK, DELIVER_OUTBOX, RUN_DUE, REPORTS_GENERATE, REPORTS_SWEEP, EXPORTS_SWEEP})
