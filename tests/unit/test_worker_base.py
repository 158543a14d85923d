"""The task base class gives every task a clean context and closes its sessions (no broker, no worker).

The task bodies are called directly (`task(...)` runs `FivestarTask.__call__`), which is how the
worker's tracer runs them; nothing here uses `task_always_eager`.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import text
from sqlalchemy.orm import Session

from fivestar.audit.recording import SYSTEM, Actor, acting_as, current_actor, set_actor
from fivestar.config import load_settings
from fivestar.kernel import task_names
from fivestar.tenancy import current_tenant_id, set_tenant, tenant_context
from workers.base import FivestarTask, TenantTask


@pytest.fixture
def celery_app(tmp_path: Path) -> Celery:
    app = Celery("test-base", broker="memory://", set_as_current=False, task_cls=FivestarTask)
    app.conf.task_always_eager = False
    app.fivestar_settings = load_settings(  # type: ignore[attr-defined]
        env="test", database_url=f"sqlite:///{tmp_path / 'base.sqlite3'}", data_dir=tmp_path
    )
    return app


def test_a_task_starts_clean_and_leaks_nothing(celery_app: Celery) -> None:
    seen: dict[str, Any] = {}

    @celery_app.task(name="test.leaky", bind=True)
    def leaky(self: FivestarTask) -> None:
        seen["tenant"] = current_tenant_id()
        seen["actor"] = current_actor()
        set_tenant(41)  # a careless task: sets and never resets
        set_actor(Actor("account", 7, "someone"))

    with tenant_context(99), acting_as(Actor("account", 1, "caller")):
        leaky()
        assert current_tenant_id() == 99
        assert current_actor().name == "caller"
    assert seen["tenant"] is None
    assert seen["actor"].kind == "system" and seen["actor"].name == "worker:test.leaky"
    leaky()
    assert current_tenant_id() is None
    assert current_actor() == SYSTEM


def test_sessions_are_closed_after_the_task_even_when_it_fails(celery_app: Celery) -> None:
    opened: list[Session] = []

    @celery_app.task(name="test.sessions", bind=True)
    def uses_sessions(self: FivestarTask, fail: bool) -> int:
        first = self.session_factory()
        first.execute(text("SELECT 1"))
        opened.append(first)
        with self.session() as second:
            second.execute(text("SELECT 2"))
            opened.append(second)
        assert first.in_transaction()
        if fail:
            raise RuntimeError("boom")
        return self.session_factory.opened

    assert uses_sessions(False) == 2
    with pytest.raises(RuntimeError, match="boom"):
        uses_sessions(True)
    assert len(opened) == 4
    assert not any(session.in_transaction() for session in opened)
    with pytest.raises(RuntimeError, match="only available while the task runs"):
        uses_sessions.session_factory  # noqa: B018


def test_tenant_task_runs_as_its_tenant(celery_app: Celery) -> None:
    @celery_app.task(name="test.tenant", bind=True, base=TenantTask)
    def for_tenant(self: FivestarTask, tenant_id: int) -> int | None:
        return current_tenant_id()

    assert for_tenant(12) == 12
    assert current_tenant_id() is None
    with pytest.raises(TypeError, match="tenant id"):
        for_tenant("12")


def test_the_real_app_keeps_delivery_guarantees(tmp_path: Path) -> None:
    """Read in a subprocess: importing `workers.app` reads the settings of its environment."""
    import json
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    env["FIVESTAR_DATA_DIR"] = str(tmp_path)
    script = (
        "import json; from celery.app.utils import find_app; app = find_app('workers'); "
        "app.loader.import_default_modules(); c = app.conf; "
        "print(json.dumps({k: c[k] for k in ('task_acks_late', 'task_reject_on_worker_lost', "
        "'worker_prefetch_multiplier', 'task_serializer', 'accept_content', 'task_always_eager', "
        "'broker_connection_retry_on_startup', 'timezone', 'task_ignore_result', 'broker_url')} | "
        "{'queues': sorted(q.name for q in c.task_queues), 'control': c.broker_transport_options['control_folder'], "
        "'beat': {k: v['task'] for k, v in c.beat_schedule.items()}, "
        "'tasks': sorted(t for t in app.tasks if t.startswith('fivestar.'))}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    conf = json.loads(result.stdout.strip().splitlines()[-1])
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_always_eager"] is False
    assert conf["broker_connection_retry_on_startup"] is True
    assert conf["timezone"] == "UTC"
    assert conf["broker_url"] == "filesystem://"
    assert conf["queues"] == ["default", "reports"]
    assert conf["control"] == str(tmp_path / "broker" / "control")
    assert conf["beat"] == {"fivestar-minute-tick": "fivestar.tick"}
    assert conf["tasks"] == [
        "fivestar.deliver_outbox",
        "fivestar.exports.sweep",
        "fivestar.reports.generate",
        "fivestar.reports.sweep",
        "fivestar.run_due",
        "fivestar.tick",
    ]
    # One registry of names (fivestar.kernel.task_names): every task the app registers is in it, and
    # every name in it is a task the app registers; the queues are the registry's.
    assert set(conf["tasks"]) == task_names.TASKS
    assert conf["queues"] == sorted(task_names.QUEUES)
    assert conf["beat"] == {"fivestar-minute-tick": task_names.TICK}


def test_report_tasks_are_routed_to_the_reports_queue_and_no_other_task_is() -> None:
    routed = {name for name in task_names.TASKS if fnmatch.fnmatch(name, task_names.REPORTS_TASK_PATTERN)}
    assert routed == {task_names.REPORTS_GENERATE, task_names.REPORTS_SWEEP}
