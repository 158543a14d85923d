"""Faults: two beats for two minutes. The second waits for the lock and sends nothing while the first
ticks; the first is SIGKILLed without releasing the lock and the second takes over within the lock
timeout. One tick stream, never two; each district's round opened once; each reminder performed once
and every e-mail arrived once. Builders and bounds: worker_faults_support.py.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections import Counter
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fivestar.member_rounds.models import MemberRound
from fivestar.outbox.models import OutboxMessage
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.tenancy import tenant_context
from tests.faults.worker_faults_support import (
    LOCK_TIMEOUT,
    SLACK,
    ZONE,
    Faulty,
    ask_guarantees,
    assert_delivered,
    due_opening,
    fault_rules,
    load_batch,
    make_district,
    utcnow,
)
from tests.worker_support import Process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# --- two beats for two minutes ---------------------------------------------------------------------------------

TICK_SENT = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] Scheduler: Sending due task "
    r"fivestar-minute-tick",
    re.M,
)


def tick_times(beat: Process) -> list[dt.datetime]:
    return [dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") for stamp in TICK_SENT.findall(beat.text())]


def test_two_beats_for_two_minutes_open_one_round_and_remind_once(
    faulty: Faulty,
) -> None:
    duel = 120.0
    with faulty(tick=2.0) as cluster:
        worker = cluster.start_worker("worker", ["default"], concurrency=2, wait=False)
        first = cluster.start_beat("beat-1", wait=False)
        # Two districts whose rules open rounds by themselves, one due in 15 s (while the first beat
        # holds the lock) and one in 80 s (after the second took over) …
        early = make_district(cluster, f"auto1-{uuid.uuid4().hex[:6]}", rules=fault_rules(auto_open=True))
        late = make_district(cluster, f"auto2-{uuid.uuid4().hex[:6]}", rules=fault_rules(auto_open=True))
        # … and one in a running round whose reminders (self-assessment one day ahead, the joint
        # assessment two days ahead) fall due at a whole minute 50 to 110 s from now (rules name minutes).
        local = dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(seconds=50)
        send = (local + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
        tomorrow = send.date() + dt.timedelta(days=1)
        people = 40
        reminded = make_district(
            cluster,
            f"duel-{uuid.uuid4().hex[:6]}",
            rules=fault_rules(send_time=f"{send:%H:%M}", lead_days="[1, 2]"),
            members=people,
            accounts=people,
            secretary=True,
            open_round=True,
            deadlines={
                "self": tomorrow,
                "joint": tomorrow + dt.timedelta(days=1),
                "review": tomorrow + dt.timedelta(days=20),
                "report": tomorrow + dt.timedelta(days=30),
            },
        )
        cluster.wait_ready(worker, first)
        guarantees = ask_guarantees(cluster, worker)
        started = time.monotonic()
        due_opening(cluster, early, utcnow() + dt.timedelta(seconds=15))
        due_opening(cluster, late, utcnow() + dt.timedelta(seconds=80))
        second = cluster.start_beat("beat-2", wait=False)
        cluster.wait_for(lambda: "beat: Starting..." in second.text(), "the second beat to ask for the lock", 45)

        # 35 s of both: the second waits for the lock, sends nothing; the first ticks.
        time.sleep(max(0.0, started + 35 - time.monotonic()))
        assert not second.ready() and "Sending due task" not in second.text()
        assert len(tick_times(first)) >= 10
        first.kill_all()  # SIGKILL: the lock is not released; it expires after FIVESTAR_BEAT_LOCK_TIMEOUT
        # The lock outlives its holder by at most FIVESTAR_BEAT_LOCK_TIMEOUT (the holder renews it every
        # loop of beat); the standby tries again every loop (workers/app.py: 2 s with these settings).
        loop = max(1.0, min(30.0, 2.0, LOCK_TIMEOUT / 3))
        took_over = cluster.wait_for(
            second.ready, "the second beat to take the lock", LOCK_TIMEOUT + loop + SLACK, watch=[worker]
        )
        print(f"the second beat took the lock {took_over:.1f} s after the first was killed")

        time.sleep(max(0.0, started + duel - time.monotonic()))
        cluster.wait_for(lambda: load_batch(cluster, reminded).all_sent, "the reminders delivered", 30, watch=[worker])

        # One tick stream: the first beat's until the kill, then the second's; never both at once.
        ticks = sorted(tick_times(first) + tick_times(second))
        gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(ticks)]
        assert min(gaps) >= 2.0 * 0.75, gaps
        assert max(tick_times(first)) < min(tick_times(second))
        span = (ticks[-1] - ticks[0]).total_seconds()
        assert len(ticks) <= span / 2.0 + 2

        # Exactly one round per district, each opening performed once.
        for district, key in ((early, "2025Q2"), (late, "2025Q2")):
            with cluster.maker() as session, tenant_context(district.tenant_id):
                assert list(session.scalars(select(MemberRound.period_key))) == [key]
                item = session.execute(
                    select(DueItem.state, DueItem.attempts).where(
                        DueItem.kind == DueKind.OPEN_MEMBER_ROUND, DueItem.key == key
                    )
                ).one()
                assert (item.state, item.attempts) == (DueState.DONE, 1)
        # One message per recipient and lead time: the members' one-day reminder and the secretary's
        # two-day one, each performed once; every e-mail arrived once.
        with cluster.maker() as session, tenant_context(reminded.tenant_id):
            items = {
                row.key.split(":", 1)[1]: (row.state, row.attempts)
                for row in session.execute(
                    select(DueItem.key, DueItem.state, DueItem.attempts)
                    .where(DueItem.kind == DueKind.REMINDER)
                    .where(DueItem.state != DueState.PENDING)
                )
            }
            keys = Counter(
                key.rsplit(":", 2)[0].split(":", 2)[2] for key in session.scalars(select(OutboxMessage.dedupe_key))
            )
        self_key, joint_key = f"self:{tomorrow:%Y%m%d}:1", f"joint:{tomorrow + dt.timedelta(days=1):%Y%m%d}:2"
        assert items == {self_key: (DueState.DONE, 1), joint_key: (DueState.DONE, 1)}, items
        assert keys == {self_key: 2 * people, joint_key: 2}, keys
        arrived = assert_delivered(cluster, reminded, killed=0, expected_people=people + 1)
        assert set(arrived.values()) == {1}
        assert worker.alive() and second.alive()
        guarantees()
