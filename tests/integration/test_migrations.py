"""The schema is built by Alembic and matches the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from fivestar import dbcli
from fivestar.db import make_engine
from fivestar.models import Base


def test_migrated_schema_matches_the_models(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_to_base_and_up_again(backend: str, fresh_database: Callable[..., str]) -> None:
    url = fresh_database(backend)
    dbcli.downgrade(url, "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        dbcli.upgrade(url)
        assert {"tenants", "members", "audit_events"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"])
def test_audit_events_refuse_update_and_delete_in_the_database(session, create_tenant, statement: str) -> None:  # type: ignore[no-untyped-def]
    create_tenant()
    session.flush()
    assert session.execute(text("SELECT count(*) FROM audit_events")).scalar_one() > 0
    nested = session.begin_nested()
    with pytest.raises(Exception, match="append-only"):
        session.execute(text(statement))
    nested.rollback()
