"""`fivestar improvement-plans SLUG YEAR`: create the rectification plans of a branch round finalised
before plans existed (a district's finished year at upgrade time). The committee has the same as a
button on 整改提升; both create only what is missing.

Exit status: 0 when the plans exist afterwards (some may have been created); 1 when the district or the
year's round does not exist or the round is not finalised (the message says why).
"""

from __future__ import annotations

import getpass

import click
from sqlalchemy import select

import fivestar.models  # noqa: F401 - every mapper, before the first query
from fivestar.audit.recording import Actor, acting_as
from fivestar.branch_rounds.models import BranchRound
from fivestar.db import make_engine, make_sessionmaker
from fivestar.errors import ServiceError
from fivestar.improvement.services import create_plans_for_round
from fivestar.kernel.commandline import settings_or_exit
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import Tenant


@click.command("improvement-plans")
@click.argument("slug")
@click.argument("year", type=click.IntRange(2000, 2999))
def improvement_plans_command(slug: str, year: int) -> None:
    """为已定星年度生成整改提升计划 (create the missing plans after tenant SLUG's finalised branch round YEAR)."""
    settings = settings_or_exit()
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == slug.strip().lower()))
            if tenant is None:
                click.echo(f"未找到单位：{slug}", err=True)
                raise SystemExit(1)
            with acting_as(Actor("cli", None, f"cli:{getpass.getuser()}")), tenant_context(tenant.id):
                branch_round = session.scalar(select(BranchRound).where(BranchRound.year == year))
                if branch_round is None:
                    click.echo(f"{tenant.name}没有 {year} 年度的党支部星级评定", err=True)
                    raise SystemExit(1)
                try:
                    created = create_plans_for_round(session, branch_round)
                except ServiceError as error:
                    session.rollback()
                    click.echo(error.message, err=True)
                    raise SystemExit(1) from None
                session.commit()
            click.echo(f"{tenant.name} {year} 年度：新生成整改提升计划 {len(created)} 份")
    finally:
        engine.dispose()


__all__ = ["improvement_plans_command"]
