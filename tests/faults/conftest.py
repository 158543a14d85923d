"""The `faulty` fixture of the worker-fault tests: a cluster of real workers and beat (tests/worker_support.py)
whose processes run the injected faults of inject/sitecustomize.py. Builders: worker_faults_support.py."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.faults.worker_faults_support import CLAIM_TIMEOUT, INJECT, LOCK_TIMEOUT, TICK, VISIBILITY, Faulty
from tests.worker_support import Cluster, open_cluster


@pytest.fixture
def faulty(tmp_path: Path, fresh_database: Callable[[str], str]) -> Faulty:
    """`with faulty(**knobs) as cluster:` — a cluster whose workers run the injected faults."""

    def make(
        *,
        claim_timeout: int = CLAIM_TIMEOUT,
        report_row_seconds: float = 0.0,
        kill_opening_for: str = "",
        tick: float = TICK,
    ) -> AbstractContextManager[Cluster]:
        env = {"FIVESTAR_REPORT_STUCK_SECONDS": str(CLAIM_TIMEOUT)}
        if report_row_seconds:
            env["FAULTS_REPORT_ROW_SECONDS"] = str(report_row_seconds)
        if kill_opening_for:
            env["FAULTS_KILL_OPENING_FOR"] = kill_opening_for
        return open_cluster(
            tmp_path,
            fresh_database,
            tick_seconds=tick,
            claim_timeout=claim_timeout,
            visibility_timeout=VISIBILITY,
            lock_timeout=LOCK_TIMEOUT,
            env=env,
            pythonpath=[INJECT],
        )

    return make
