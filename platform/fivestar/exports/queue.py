"""Export deliveries as a queue: the lease they are sent under, and what one sweep did.

Shared by the sweep's steps (`planning`, `sweep`, `sending`, `alerts`), so none of them imports another
for a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, Result

from fivestar import audit
from fivestar.exports.models import ExportDelivery, ExportState
from fivestar.kernel import lease
from fivestar.outbox.delivery import BACKOFF

#: Who asks for the reports and who is named in their audit events.
EXPORT_ACTOR = audit.Actor("system", None, "系统（上报上级）")
MAX_ATTEMPTS = 8
ERROR_MAX = 1000
#: Why the sweep's listings and claims look across tenants (`cross_tenant`).
SWEEP_REASON = "exports sweep"

#: The wait after a failed attempt: the outbox's (1, 2, 4 … minutes, at most an hour).
RETRY_BACKOFF = BACKOFF

#: Deliveries as a queue of the one lease (fivestar.kernel.lease): claimed from `pending` once
#: `next_attempt_at` has come, held in `sending`, retried after `RETRY_BACKOFF`, `failed` after `max_attempts`.
EXPORT_QUEUE = lease.JobQueue(
    name="export_deliveries",
    model=ExportDelivery,
    ready=(ExportState.PENDING,),
    leased=ExportState.SENDING,
    failed=ExportState.FAILED,
    due="next_attempt_at",
    backoff=RETRY_BACKOFF,
)


@dataclass
class ExportSweepReport:
    """What one sweep did, for the task's log line and for tests."""

    planned: int = 0  # deliveries created
    requested: int = 0  # reports asked for
    ready: int = 0  # deliveries whose report is done
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0
    skipped: int = 0  # claimed by another sweep first
    alerted: int = 0  # messages handed to the outbox for the administrators (it skips repeated keys)
    errors: list[str] = field(default_factory=list)


def rowcount(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)
