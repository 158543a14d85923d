"""Helpers shared by test modules (import as `from tests.support import …`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

REQUIRE_SERVICES = os.environ.get("FIVESTAR_REQUIRE_SERVICES") == "1"


def service_unavailable(what: str) -> None:
    """Skip (a developer's laptop) or fail (CI, FIVESTAR_REQUIRE_SERVICES=1) when a service is missing."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (FIVESTAR_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable")


@contextmanager
def count_queries(
    engine: Engine, *, only: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> Iterator[list[str]]:
    """Every SQL statement sent inside the block (an executemany counts once), optionally only those
    starting with one of `only` or not with one of `exclude` (e.g. SAVEPOINT bookkeeping)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.lstrip().upper()
        if only and not head.startswith(only):
            return
        if exclude and head.startswith(exclude):
            return
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def application_role(database_url: str) -> Iterator[tuple[str, str]]:
    """A PostgreSQL login role that owns nothing (production's application role, ops/README.md
    "Database roles"): yields its name and `database_url` with it as the user; dropped afterwards.
    Roles belong to the whole cluster, so each gets a name of its own."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    role = f"fivestar_app_{uuid.uuid4().hex[:10]}"
    admin = database_url.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
    url = make_url(database_url).set(username=role, password=None).render_as_string(hide_password=False)
    try:
        yield role, url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
