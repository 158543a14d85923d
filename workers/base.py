"""The base class of every Fivestar task: a clean context and database sessions that get closed.

A worker process runs many tasks one after the other, for many tenants. Whatever one task sets —
the tenant (`fivestar.tenancy`), the audit actor — must not leak into the next
(django-multitenant#213 is that leak). Each task therefore runs inside its own copy of the
context variables, starting with no tenant and the worker as actor; anything the task sets is
discarded when it returns, whether it succeeded or raised. Sessions opened through
`self.session_factory` are closed after the task, so a task that forgets to close one cannot hold
a connection (or, on SQLite, a write lock) into the next task.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import fivestar.models  # noqa: F401 - every mapper registered before the first query
from fivestar.audit.recording import Actor, set_actor
from fivestar.config import Settings, load_settings
from fivestar.db import make_engine, make_sessionmaker
from fivestar.tenancy import set_tenant, tenant_context

log = logging.getLogger(__name__)


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_task_factory: contextvars.ContextVar[TrackingSessionFactory | None] = contextvars.ContextVar(
    "fivestar_task_sessions", default=None
)


def engine_for(settings: Settings) -> Engine:
    """The process's engine for `settings`: one connection pool per worker process."""
    url = settings.resolved_database_url
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Forget pooled connections inherited across a fork (run in each new pool process).

    `close=False` leaves the parent's connections alone: closing them from the child would break
    the parent's sockets (SQLAlchemy's documented recipe for multiprocessing).
    """
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose(close=False)


class TrackingSessionFactory:
    """Opens sessions like a sessionmaker and remembers them, so the task can close them all."""

    def __init__(self, maker: sessionmaker[Session]) -> None:
        self._maker = maker
        self._opened: list[Session] = []

    def __call__(self, **kwargs: Any) -> Session:
        session = self._maker(**kwargs)
        self._opened.append(session)
        return session

    @property
    def opened(self) -> int:
        return len(self._opened)

    def close_all(self) -> None:
        while self._opened:
            session = self._opened.pop()
            try:
                session.close()
            except Exception:
                log.warning("could not close a task session", exc_info=True)


class FivestarTask(Task):  # type: ignore[misc]
    """Base of every task (set as the app's `task_cls`)."""

    #: Tasks have no result backend; their effects are rows.
    ignore_result = True
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        settings = getattr(self.app, "fivestar_settings", None)
        if settings is None:
            if self._settings is None:
                self._settings = load_settings()
            settings = self._settings
        return settings

    @property
    def session_factory(self) -> TrackingSessionFactory:
        """Opens sessions bound to the worker's engine; all are closed after the task."""
        factory = _task_factory.get()
        if factory is None:
            raise RuntimeError("session_factory is only available while the task runs")
        return factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One session for the task's work; the task commits it itself (tasks are the edge)."""
        session = self.session_factory()
        try:
            yield session
        finally:
            session.close()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.copy_context().run(self._run_clean, *args, **kwargs)

    def _run_clean(self, *args: Any, **kwargs: Any) -> Any:
        set_tenant(None)
        set_actor(Actor("system", None, f"worker:{self.name}"))
        # A context variable, not an attribute: the task object is shared by every thread of a
        # `-P threads` worker, the context copy is not.
        factory = TrackingSessionFactory(make_sessionmaker(engine_for(self.settings)))
        _task_factory.set(factory)
        try:
            return self.run_in_context(*args, **kwargs)
        finally:
            factory.close_all()

    def run_in_context(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)


class TenantTask(FivestarTask):
    """A task about one tenant: its first argument is the tenant id, set as the tenant context.

    Use with `@app.task(base=TenantTask, bind=True)`; the body then queries as that tenant and
    the context is gone when it returns.
    """

    abstract = True

    def run_in_context(self, *args: Any, **kwargs: Any) -> Any:
        if not args or not isinstance(args[0], int):
            raise TypeError(f"{self.name} needs the tenant id as its first argument")
        with tenant_context(args[0]):
            return self.run(*args, **kwargs)
