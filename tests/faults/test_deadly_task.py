"""Faults: a task that SIGKILLs its own pool process (opening a round for a `suicide-…` district, injected
by inject/sitecustomize.py) is tried `max_attempts` times and then fails for good; another district's
item due at the same instant is done first, the worker keeps serving, and the queue drains.
Builders and bounds: worker_faults_support.py.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import func, select

from fivestar.member_rounds.models import MemberRound
from fivestar.outbox.models import Channel, OutboxMessage
from fivestar.scheduling.models import DueItem, DueState
from fivestar.tenancy import tenant_context
from tests.faults.worker_faults_support import (
    SLACK,
    TICK,
    District,
    Faulty,
    ask_guarantees,
    due_opening,
    fault_rules,
    make_district,
    utcnow,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# --- a task that kills its worker ----------------------------------------------------------------------------


def test_a_task_that_kills_its_worker_fails_after_max_attempts_and_the_queue_drains(
    faulty: Faulty,
) -> None:
    claim = 4
    with faulty(claim_timeout=claim, kill_opening_for="suicide-") as cluster:
        worker = cluster.start_worker("worker", ["default"], wait=False)
        beat = cluster.start_beat(wait=False)
        deadly = make_district(cluster, f"suicide-{uuid.uuid4().hex[:6]}", rules=fault_rules(auto_open=True))
        healthy = make_district(cluster, f"healthy-{uuid.uuid4().hex[:6]}", rules=fault_rules(auto_open=True))
        now = utcnow()
        key = due_opening(cluster, deadly, now - dt.timedelta(seconds=1))
        due_opening(cluster, healthy, now - dt.timedelta(seconds=1))
        cluster.wait_ready(worker, beat)
        guarantees = ask_guarantees(cluster, worker)

        def item(district: District) -> tuple[DueState, int, int, str | None, dt.datetime | None]:
            with cluster.maker() as session, tenant_context(district.tenant_id):
                row = session.execute(
                    select(
                        DueItem.state, DueItem.attempts, DueItem.max_attempts, DueItem.outcome, DueItem.finished_at
                    ).where(DueItem.key == key)
                ).one()
                return row.state, row.attempts, row.max_attempts, row.outcome, row.finished_at

        max_attempts = item(deadly)[2]
        # Each try: claimed, the process dies, the claim is given back after the claim timeout at the
        # next tick, the pool has replaced its process meanwhile.
        bound = max_attempts * (claim + TICK + SLACK) + SLACK
        cluster.wait_for(lambda: item(deadly)[0] is DueState.FAILED, "the deadly item to fail", bound, watch=[worker])
        state, attempts, _max, outcome, failed_at = item(deadly)
        assert (state, attempts) == (DueState.FAILED, max_attempts) and "gave up" in (outcome or "")
        assert len(re.findall(r"exited with 'signal 9 \(SIGKILL\)'", worker.text())) == max_attempts
        with cluster.maker() as session, tenant_context(deadly.tenant_id):
            assert session.scalar(select(func.count()).select_from(MemberRound)) == 0
        # The other district's round, due at the same instant, opened once — before the deadly item
        # had used up its tries (a row given back is tried after the rows never tried).
        opened = item(healthy)
        assert opened[:2] == (DueState.DONE, 1) and opened[4] is not None and failed_at is not None
        assert opened[4] < failed_at
        # The worker keeps serving: an e-mail written now arrives.
        with cluster.maker() as session, tenant_context(healthy.tenant_id):
            session.add(
                OutboxMessage(
                    tenant_id=healthy.tenant_id,
                    channel=Channel.EMAIL,
                    recipient="after@example.org",
                    subject="之后的邮件",
                    body_text="仍在工作",
                    dedupe_key=f"faults:{uuid.uuid4().hex}",
                )
            )
            session.commit()
        cluster.wait_for(lambda: cluster.mail.count() == 1, "an e-mail sent after the failures", 15, watch=[worker])

        # The queue drains: with beat stopped, nothing is waiting or unacknowledged.
        beat.stop()
        cluster.wait_for(
            lambda: cluster.queue_length("default") == 0 and cluster.unacked() == 0,
            "the queue to drain",
            15,
            watch=[worker],
        )
        assert worker.alive() and len(worker.pool()) == 1
        guarantees()
