"""Faults under load: a long report (CPU per row, injected) on the reports worker does not delay the
default queue's reminders by more than a second (a worker per queue, as ops/Procfile runs them; the
test sends the ticks and times them). Builders: worker_faults_support.py.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid

import pytest

from fivestar.reports.jobs.models import JobState
from fivestar.scheduling.models import DueItem, DueKind
from fivestar.tenancy import tenant_context
from tests.faults.worker_faults_support import (
    REPORT_MEMBERS,
    Faulty,
    ask_guarantees,
    ask_report,
    fault_rules,
    load_batch,
    load_job,
    local_today,
    make_district,
    utcnow,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# --- a long report does not delay reminders ------------------------------------------------------------------


def test_a_long_report_does_not_delay_reminders_by_more_than_a_second(
    faulty: Faulty,
) -> None:
    with faulty(report_row_seconds=0.003) as cluster:
        # A worker per queue, as ops/Procfile runs them; no beat: the test sends the ticks and times them.
        default = cluster.start_worker("default", ["default"], concurrency=2, wait=False)
        worker = cluster.start_worker("reports", ["reports"], wait=False)
        deadline = local_today() + dt.timedelta(days=20)  # the rules' own reminders are weeks away
        district = make_district(
            cluster,
            f"busy-{uuid.uuid4().hex[:6]}",
            rules=fault_rules(),
            members=REPORT_MEMBERS,
            accounts=10,
            open_round=True,
            deadlines={
                "self": deadline,
                "joint": deadline + dt.timedelta(days=1),
                "review": deadline + dt.timedelta(days=2),
                "report": deadline + dt.timedelta(days=3),
            },
        )
        cluster.wait_ready(default, worker)
        ask_guarantees(cluster, default)()  # before measuring: `celery inspect` is a process of its own

        def latency(lead: int) -> float:
            """A reminder falls due; a tick is sent: seconds until its messages are in the outbox."""
            key = f"m{district.round_id}:self:{deadline:%Y%m%d}:{lead}"
            with cluster.maker() as session, tenant_context(district.tenant_id):
                session.add(
                    DueItem(
                        tenant_id=district.tenant_id,
                        kind=DueKind.REMINDER,
                        key=key,
                        due_at=utcnow() - dt.timedelta(seconds=1),
                    )
                )
                session.commit()
            sent = time.monotonic()
            cluster.enqueue("fivestar.tick")
            cluster.wait_for(
                lambda: bool(load_batch(cluster, district, f"reminder:{key}:%").emails),
                f"reminder {lead}'s messages",
                30,
                poll=0.01,
                watch=[default],
            )
            took = time.monotonic() - sent
            cluster.wait_for(
                lambda: load_batch(cluster, district, f"reminder:{key}:%").all_sent,
                f"reminder {lead} delivered",
                30,
                watch=[default],
            )
            return took

        latency(10)  # warming up: the pool processes' first tasks import and connect
        idle = [latency(lead) for lead in (11, 12, 13)]
        job_id = ask_report(cluster, district)
        cluster.wait_for(
            lambda: load_job(cluster, district, job_id).state is JobState.RUNNING, "the report running", 30
        )
        busy = [latency(lead) for lead in (14, 15, 16)]
        assert load_job(cluster, district, job_id).state is JobState.RUNNING  # it ran all along
        print(f"reminder latency without a report {idle}, while a report runs {busy}")
        for took in busy:
            assert took - statistics.median(idle) <= 1.0, (idle, busy)
        cluster.wait_for(
            lambda: load_job(cluster, district, job_id).state is JobState.DONE, "the report done", 60, watch=[worker]
        )
