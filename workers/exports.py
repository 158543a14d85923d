"""The exports sweep (fivestar.exports): thin, like every task here.

`fivestar.exports.sweep()` — sent by every minute tick (and by the "重新发送" button after its
commit): plans deliveries of finalised rounds and due dates, asks the report workers for the files,
and sends the finished ones upward by e-mail, HTTPS or SFTP. Delivered at least once: every step
claims its rows with a conditional UPDATE, so a second delivery of the message, or two sweeps at
once, send nothing twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fivestar.exports.sweep import run_exports
from fivestar.kernel.task_names import DEFAULT_QUEUE, EXPORTS_SWEEP, REPORTS_QUEUE
from workers.app import app
from workers.base import FivestarTask


def _reports_queue(task: FivestarTask) -> str:
    """Where the reports this sweep asks for are sent: the reports queue — or, for a worker serving
    a private queue (a test, a second instance on a shared broker), that queue."""
    info = task.request.delivery_info or {}
    own = str(info.get("routing_key") or DEFAULT_QUEUE)
    return REPORTS_QUEUE if own == DEFAULT_QUEUE else own


@app.task(name=EXPORTS_SWEEP, bind=True)
def sweep_exports(self: FivestarTask, limit: int = 50) -> dict[str, Any]:
    report = run_exports(self.session_factory, self.settings, limit=limit, report_queue=_reports_queue(self))
    return dataclasses.asdict(report)
