"""`fivestar audit verify SLUG` and `fivestar audit head SLUG`: check a district's audit chain.

`verify` recomputes every link from the first event and names the first one that does not fit
(exit status 1), or prints the head (exit status 0). `--head N:HASH` also checks the chain against a
head kept outside the database (printed on an earlier report): event N must still have that hash,
so a history rewritten and re-hashed from scratch is caught too. Exit status 2: bad arguments or an
unknown district. The chain is read in one snapshot (REPEATABLE READ on PostgreSQL), so events
appended while it runs do not look like intruders.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import Connection, Engine, select

from fivestar.audit.chain import Head, check_against, current_head, parse_head, verify_chain
from fivestar.config import ConfigError, load_settings
from fivestar.db import make_engine
from fivestar.tenants.models import Tenant


def _engine() -> Engine:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    return make_engine(settings.resolved_database_url)


def _tenant_id(connection: Connection, slug: str) -> int:
    tenant_id = connection.execute(select(Tenant.id).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant_id is None:
        click.echo(f"没有这个单位 (no district with the slug {slug!r})", err=True)
        sys.exit(2)
    return int(tenant_id)


def _snapshot(connection: Connection) -> Connection:
    if connection.dialect.name == "postgresql":
        return connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


@click.group("audit")
def audit_cli() -> None:
    """审计链 — the tamper-evident audit trail."""


@audit_cli.command("verify")
@click.argument("slug")
@click.option("--head", "outside", metavar="N:HASH",
              help="A head printed earlier (on a report): event N must have HASH.")
def verify_command(slug: str, outside: str | None) -> None:
    """Recompute SLUG's audit chain; name the first broken event (exit 1) or print the head (exit 0)."""
    expected: Head | None = None
    if outside is not None:
        try:
            expected = parse_head(outside)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--head") from None
    engine = _engine()
    try:
        with engine.connect() as raw:
            connection = _snapshot(raw)
            with connection.begin():
                tenant_id = _tenant_id(connection, slug)
                result = verify_chain(connection, tenant_id)
                outside_problem = check_against(connection, tenant_id, expected) if expected else None
    finally:
        engine.dispose()
    broken = result.broken
    if broken is not None:
        when = broken.occurred_at.isoformat() if broken.occurred_at else "-"
        click.echo(
            f"审计链已损坏 (audit chain broken) at seq {broken.seq}: {broken.problem}\n"
            f"  event id {broken.event_id if broken.event_id is not None else '-'}, time {when}, "
            f"action {broken.action or '-'}\n  {broken.detail}"
        )
        sys.exit(1)
    if outside_problem is not None:
        click.echo(f"审计链与外部保存的链头不符 (chain does not match the head {outside}): {outside_problem}")
        sys.exit(1)
    click.echo(f"审计链完整 (audit chain intact): {result.events} events, head {result.head}")
    if expected is not None:
        click.echo(f"与外部链头一致 (matches the outside head {expected})")


@audit_cli.command("head")
@click.argument("slug")
def head_command(slug: str) -> None:
    """Print SLUG's audit chain head as N:HASH (what reports print)."""
    from sqlalchemy.orm import Session

    engine = _engine()
    try:
        with engine.connect() as connection:
            tenant_id = _tenant_id(connection, slug)
            with Session(connection) as session:
                head = current_head(session, tenant_id)
    finally:
        engine.dispose()
    click.echo(str(head))
