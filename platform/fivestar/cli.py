"""The `fivestar` command."""

from __future__ import annotations

import sys
from typing import Any

import click

from fivestar import dbcli
from fivestar.audit.cli import audit_cli
from fivestar.dbroles import RoleError
from fivestar.demo.cli import demo_command, serve_command
from fivestar.features import connect_receivers
from fivestar.imports.cli import IMPORT_COMMANDS
from fivestar.improvement.cli import improvement_plans_command
from fivestar.kernel.commandline import settings_or_exit
from fivestar.rules.cli import rules_cli
from fivestar.tenants.cli import operator_cli, tenant_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """五星争创 Fivestar — star ratings of party branches and members."""
    connect_receivers()  # a change made on the command line has the same reactions as on a page


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head), as the owner (FIVESTAR_MIGRATION_DATABASE_URL if
    set), then grant the application role its privileges (fivestar.dbroles)."""
    settings = settings_or_exit()
    url = settings.resolved_migration_url
    dbcli.upgrade(url, revision)
    click.echo(f"database at {revision}: {_redact(url)}")
    role = settings.resolved_app_role
    if role is not None:
        try:
            granted = dbcli.grant(url, role)
        except RoleError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        click.echo(f"granted the application role {role} its privileges on {len(granted)} tables")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    dbcli.downgrade(settings_or_exit().resolved_migration_url, revision)


@db.command("current")
def db_current() -> None:
    """Show the current revision."""
    dbcli.current(settings_or_exit().resolved_migration_url)


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a new migration from the models (for developers)."""
    dbcli.revision(settings_or_exit().resolved_database_url, message)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _register(group: Any) -> None:
    main.add_command(group)


def _load_commands() -> None:
    _register(rules_cli)
    _register(audit_cli)
    _register(demo_command)
    _register(serve_command)
    _register(tenant_cli)
    _register(operator_cli)
    for command in IMPORT_COMMANDS:
        _register(command)
    _register(improvement_plans_command)


_load_commands()
