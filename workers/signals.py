"""Worker process life-cycle hooks.

The per-task context (tenant, actor, sessions) is handled by `workers.base.FivestarTask`; what is
left here concerns whole processes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from celery.signals import beat_init, task_postrun, worker_init, worker_process_init, worker_ready

from fivestar import dbroles
from fivestar.audit.recording import SYSTEM, current_actor, set_actor
from fivestar.config import load_settings
from fivestar.db import make_sessionmaker
from fivestar.demo.fast_calendar import install
from fivestar.tenancy import current_tenant_id, set_tenant
from workers.base import dispose_engines, engine_for

log = logging.getLogger(__name__)


@worker_init.connect
@beat_init.connect
def _demo_clock(**_kwargs: Any) -> None:
    """In the demo, workers follow the same fast calendar as the web app (fivestar.demo.fast_calendar)."""
    settings = load_settings()
    if settings.demo_clock:
        install(make_sessionmaker(engine_for(settings)))


@worker_init.connect
@beat_init.connect
def _least_privilege(**_kwargs: Any) -> None:
    """In production a worker refuses to start on a database role that could rewrite the audit trail."""
    settings = load_settings()
    if settings.is_production:
        dbroles.check_application_role(engine_for(settings))


@worker_process_init.connect
def _fresh_pool_in_child(**_kwargs: Any) -> None:
    """A forked pool process must not reuse the parent's database connections."""
    dispose_engines()


@task_postrun.connect
def _check_no_context_leaked(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    """Belt and braces: after any task the worker is back to no tenant and the system actor.

    `FivestarTask` runs each task in a copy of the context, so this never fires unless a task
    bypasses the base class; it logs loudly rather than letting the next task inherit a tenant.
    """
    if current_tenant_id() is not None or current_actor() != SYSTEM:
        name = getattr(task, "name", "?")
        log.error("task %s[%s] left a tenant or actor set; resetting", name, task_id)
        set_tenant(None)
        set_actor(SYSTEM)


# Supervisors (`fivestar demo`, the worker tests) pass a file name in these variables to learn
# when the process is really consuming or scheduling, without parsing its log.
WORKER_READY_FILE = "FIVESTAR_WORKER_READY_FILE"
BEAT_READY_FILE = "FIVESTAR_BEAT_READY_FILE"


def _announce(variable: str) -> None:
    target = os.environ.get(variable)
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_text(str(os.getpid()), encoding="utf-8")
        partial.replace(path)


@worker_ready.connect
def _worker_ready(**_kwargs: Any) -> None:
    _announce(WORKER_READY_FILE)


@beat_init.connect
def _beat_ready(**_kwargs: Any) -> None:
    _announce(BEAT_READY_FILE)
