"""Report tasks (fivestar.reports.jobs): thin, like every task here.

- `fivestar.reports.generate(tenant_id, job_id)` — sent by the web side after the request that asked
  for a report committed (and by the sweep); runs on the `reports` queue so a long report never
  holds up reminders. Delivered at least once: the service claims the job with a conditional
  UPDATE, so a second delivery of a job that is running, done or failed does nothing.
- `fivestar.reports.sweep()` — sent by every minute tick: gives back (or fails after N attempts) the
  jobs of workers that died, resends lost messages and deletes expired files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from fivestar.kernel.task_names import DEFAULT_QUEUE, REPORTS_GENERATE, REPORTS_QUEUE, REPORTS_SWEEP
from fivestar.reports.jobs.services import run_job, sweep
from workers.app import app
from workers.base import FivestarTask, TenantTask


def _reports_queue(task: FivestarTask) -> str:
    """Where the sweep sends jobs back: the reports queue — or, for a worker serving a private queue
    (a test, a second instance on a shared broker), that queue, so the work stays with it."""
    info = task.request.delivery_info or {}
    own = str(info.get("routing_key") or DEFAULT_QUEUE)
    return REPORTS_QUEUE if own == DEFAULT_QUEUE else own


@app.task(name=REPORTS_GENERATE, base=TenantTask, bind=True)
def generate(self: TenantTask, tenant_id: int, job_id: int) -> dict[str, Any]:
    """Write the report of job `job_id` (runs as tenant `tenant_id`, set by TenantTask)."""
    outcome = run_job(self.session_factory, self.settings, job_id)
    return {"tenant": tenant_id, "job": job_id, "outcome": outcome}


@app.task(name=REPORTS_SWEEP, bind=True)
def sweep_jobs(self: FivestarTask) -> dict[str, Any]:
    stuck_after = dt.timedelta(seconds=self.settings.report_stuck_seconds)
    report = sweep(self.session_factory, self.settings, queue=_reports_queue(self), stuck_after=stuck_after)
    return dataclasses.asdict(report)
