"""Faults: a pool process, or a whole worker, SIGKILLed in the middle of a report or of a reminder batch
(the prefork pool, as ops/Procfile runs it). The report is produced once, as one file with every row,
within "claim timeout + tick + run time + 5 s"; every reminder is delivered, each in-app notice once,
and only the e-mail the SMTP server held when the worker died arrives twice (with one Message-ID).
What is injected, and why these bounds: worker_faults_support.py.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from fivestar.outbox.models import DeliveryState
from fivestar.reports.jobs.models import JobState
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.tenancy import tenant_context
from tests.faults.worker_faults_support import (
    CLAIM_TIMEOUT,
    HELD,
    REMINDED,
    REPORT_MEMBERS,
    REPORT_ROW_SECONDS,
    SLACK,
    TICK,
    Faulty,
    ask_guarantees,
    ask_report,
    assert_delivered,
    assert_killed_in_task,
    assert_report_made_once,
    fault_rules,
    kill_while_held,
    load_batch,
    load_job,
    make_district,
    reminder_due_now,
    running_between_1_and_99,
    utcnow,
)
from tests.worker_support import pid_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# --- a pool process killed in the middle of a report -------------------------------------------------------


def test_a_report_whose_pool_process_is_killed_is_produced_once(faulty: Faulty) -> None:
    with faulty(report_row_seconds=REPORT_ROW_SECONDS) as cluster:
        default = cluster.start_worker("default", ["default"], wait=False)
        worker = cluster.start_worker("reports", ["reports"], wait=False)  # as ops/Procfile: its own worker
        beat = cluster.start_beat(wait=False)
        district = make_district(
            cluster, f"rep-{uuid.uuid4().hex[:6]}", rules=fault_rules(), members=REPORT_MEMBERS, open_round=True
        )
        cluster.wait_ready(default, worker, beat)
        guarantees = ask_guarantees(cluster, worker)

        job_id = ask_report(cluster, district)
        cluster.wait_for(
            running_between_1_and_99(cluster, district, job_id), "the report part-way", 60, poll=0.05, watch=[worker]
        )
        killed_at = utcnow()
        killed = worker.kill_pool_process()

        run_estimate = REPORT_MEMBERS * REPORT_ROW_SECONDS + 5
        cluster.wait_for(
            lambda: load_job(cluster, district, job_id).state in (JobState.DONE, JobState.FAILED),
            "the report to be produced again",
            CLAIM_TIMEOUT + TICK + run_estimate + SLACK,
            watch=[worker, default],
        )
        assert_report_made_once(cluster, district, job_id, killed_at)
        assert_killed_in_task(worker, [killed])
        assert worker.alive() and len(worker.pool()) == 1  # the pool replaced its process
        guarantees()


# --- a pool process killed in the middle of a reminder batch -----------------------------------------------


def test_a_reminder_batch_whose_pool_process_is_killed_is_delivered_once(faulty: Faulty) -> None:
    with faulty() as cluster:
        cluster.mail.hold(HELD)
        worker = cluster.start_worker("default", ["default"], wait=False)
        beat = cluster.start_beat(wait=False)
        district = reminder_due_now(cluster, f"rem-{uuid.uuid4().hex[:6]}", members=REMINDED, accounts=REMINDED)
        cluster.wait_ready(worker, beat)
        guarantees = ask_guarantees(cluster, worker)

        kill = kill_while_held(cluster, district, lambda: [worker.kill_pool_process()])
        emails = Counter(load_batch(cluster, district).emails.values())
        assert emails[DeliveryState.SENT] == HELD - 1 and emails[DeliveryState.SENDING] == 1, emails
        bound = CLAIM_TIMEOUT + TICK + kill.run_time + SLACK
        cluster.wait_for(lambda: load_batch(cluster, district).all_sent, "every reminder sent", bound, watch=[worker])
        assert (utcnow() - kill.at).total_seconds() <= bound
        arrived = assert_delivered(cluster, district, killed=1, expected_people=REMINDED)
        assert arrived[kill.held_id] == 2  # the one the server had stored when the worker died: twice, no more
        assert_killed_in_task(worker, kill.pids)
        with cluster.maker() as session, tenant_context(district.tenant_id):
            item = session.execute(
                select(DueItem.state, DueItem.attempts).where(
                    DueItem.kind == DueKind.REMINDER, DueItem.state != DueState.PENDING
                )
            ).one()
        assert (item.state, item.attempts) == (DueState.DONE, 1)
        guarantees()


# --- the whole worker killed in the middle of a report and of a reminder batch ----------------------------


def test_a_whole_worker_killed_mid_report_and_mid_reminders_is_replaced_and_nothing_is_lost_or_doubled(
    faulty: Faulty,
) -> None:
    with faulty(report_row_seconds=REPORT_ROW_SECONDS) as cluster:
        # One worker for both queues (README's "Production, in brief"), two pool processes.
        cluster.mail.hold(HELD)
        first = cluster.start_worker("worker", ["default", "reports"], concurrency=2, wait=False)
        beat = cluster.start_beat(wait=False)  # the reminder falls due at the first tick
        district = reminder_due_now(cluster, f"all-{uuid.uuid4().hex[:6]}", members=REPORT_MEMBERS, accounts=REMINDED)
        cluster.wait_ready(first, beat)
        guarantees = ask_guarantees(cluster, first)
        # One pool process delivers the batch until the server holds an e-mail; the other takes the report.
        cluster.wait_for(cluster.mail.is_held, "the reminder batch part-way", 60, poll=0.02)
        job_id = ask_report(cluster, district)
        kill = kill_while_held(
            cluster,
            district,
            first.kill_all,
            also=("the report part-way", running_between_1_and_99(cluster, district, job_id)),
        )
        cluster.wait_for(lambda: not any(pid_alive(pid) for pid in kill.pids), "the killed processes gone", 5)
        second = cluster.start_worker("worker-2", ["default", "reports"], concurrency=2)

        bound = CLAIM_TIMEOUT + TICK + max(kill.run_time, REPORT_MEMBERS * REPORT_ROW_SECONDS + 5) + SLACK
        cluster.wait_for(
            lambda: (
                load_batch(cluster, district).all_sent
                and load_job(cluster, district, job_id).state in (JobState.DONE, JobState.FAILED)
            ),
            "every reminder sent and the report done",
            bound,
            watch=[second],
        )
        assert (utcnow() - kill.at).total_seconds() <= bound
        assert_report_made_once(cluster, district, job_id, kill.at)
        # The other pool process was writing the report (part-way at the kill): one e-mail was in flight.
        arrived = assert_delivered(cluster, district, killed=1, expected_people=REMINDED)
        assert arrived[kill.held_id] == 2
        assert second.alive()
        guarantees()
