"""PostgreSQL roles: the owner migrates, the application role cannot rewrite history.

In production two roles reach the database (ops/README.md "Database roles"):

- the **owner** owns every table; only `fivestar db upgrade` connects as it
  (`FIVESTAR_MIGRATION_DATABASE_URL`). After migrating it (re)applies the grants below, so they
  follow every new table;
- the **application role** (`FIVESTAR_DATABASE_URL`, what the web app and the workers use) owns
  nothing, so it cannot drop or disable the append-only triggers, and holds only the privileges
  of `privileges_for(table)`: ordinary tables the four DML verbs, `audit_events` SELECT and INSERT
  only, the chain heads no DELETE.

A table with special needs gets a line in `SPECIAL_PRIVILEGES`; a line for a table that does not
exist (yet) is skipped, so a change that adds one can rely on it. Granting revokes first, so running
it again is harmless and takes back anything granted by hand since.

The embedded SQLite database has no roles at all: file permissions are its only wall.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, text

from fivestar.config import ConfigError

DEFAULT_PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE")

#: Tables whose application-role privileges differ from the default.
SPECIAL_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # append-only: a row once written is never changed or removed by the application
    "audit_events": ("SELECT", "INSERT"),
    # the chains' heads move forward (UPDATE) and are created once per chain, never deleted
    "audit_chain_heads": ("SELECT", "INSERT", "UPDATE"),
    # the ballot box is emptied in one statement when voting closes (its rows must leave no trace)
    "ballot_box": (*DEFAULT_PRIVILEGES, "TRUNCATE"),
    # the schema's version is the migrations' business
    "alembic_version": ("SELECT",),
}

#: What the application role must never hold on the audit trail.
FORBIDDEN_ON_AUDIT = ("UPDATE", "DELETE", "TRUNCATE")


class RoleError(ConfigError):
    """The roles are not set up as production needs; the message says how to fix it."""


def privileges_for(table: str) -> tuple[str, ...]:
    return SPECIAL_PRIVILEGES.get(table, DEFAULT_PRIVILEGES)


def _quote(connection: Connection, name: str) -> str:
    return str(connection.dialect.identifier_preparer.quote(name))


def apply_grants(connection: Connection, role: str) -> dict[str, tuple[str, ...]]:
    """Give `role` exactly the privileges of the map on every table of the current schema.

    Idempotent. Returns what each table got. Runs as the owner, in the caller's transaction.
    """
    if connection.dialect.name != "postgresql":
        raise RoleError("database roles exist on PostgreSQL only (SQLite has file permissions)")
    exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists is None:
        raise RoleError(
            f"数据库角色 {role!r} 不存在 (the application role {role!r} does not exist: "
            f"CREATE ROLE {role} LOGIN PASSWORD '…' NOSUPERUSER NOCREATEDB NOCREATEROLE, see ops/README.md)"
        )
    who = _quote(connection, role)
    schema: str = connection.execute(text("SELECT current_schema()")).scalar_one()
    granted: dict[str, tuple[str, ...]] = {}
    connection.execute(text(f"GRANT USAGE ON SCHEMA {_quote(connection, schema)} TO {who}"))
    for table in sorted(inspect(connection).get_table_names(schema=schema)):
        name = f"{_quote(connection, schema)}.{_quote(connection, table)}"
        privileges = privileges_for(table)
        connection.execute(text(f"REVOKE ALL ON TABLE {name} FROM {who}"))
        connection.execute(text(f"GRANT {', '.join(privileges)} ON TABLE {name} TO {who}"))
        granted[table] = privileges
    # serial and identity columns: the role draws ids, and may read a sequence's position
    connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {_quote(connection, schema)} TO {who}"))
    return granted


def refusals(connection: Connection) -> list[str]:
    """Why the connected role may not run the application in production (empty: it may)."""
    if connection.dialect.name != "postgresql":
        return []
    problems: list[str] = []
    owned: list[str] = list(connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND pg_has_role(current_user, tableowner, 'USAGE') ORDER BY tablename"
    )).scalars())
    if owned:
        shown = ", ".join(owned[:5]) + (" …" if len(owned) > 5 else "")
        problems.append(f"it owns (or may act as the owner of) tables: {shown}")
    held = [
        privilege for privilege in FORBIDDEN_ON_AUDIT
        if connection.execute(
            text("SELECT CASE WHEN to_regclass('audit_events') IS NULL THEN false "
                 "ELSE has_table_privilege('audit_events', :p) END"),
            {"p": privilege},
        ).scalar_one()
    ]
    if held:
        problems.append(f"it holds {', '.join(held)} on audit_events")
    is_super = text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    superuser: bool = connection.execute(is_super).scalar_one()
    if superuser:
        problems.append("it is a superuser")
    return problems


def check_application_role(engine: Engine) -> None:
    """Refuse to start (RoleError) when the application's role could rewrite the audit trail."""
    with engine.connect() as connection:
        problems = refusals(connection)
        user = connection.execute(text("SELECT current_user")).scalar_one() if problems else ""
    if problems:
        raise RoleError(
            f"生产环境拒绝启动：数据库角色 {user} 可以改写审计记录 "
            f"(production refuses to start: the database role {user!r} could rewrite the audit trail — "
            + "; ".join(problems)
            + "). Connect FIVESTAR_DATABASE_URL as an application role that owns no table, give the owner's URL "
            "to FIVESTAR_MIGRATION_DATABASE_URL and run `fivestar db upgrade`, which grants the application role "
            "exactly what it needs (ops/README.md \"Database roles\")."
        )
