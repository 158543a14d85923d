"""`fivestar import-template OUT.xlsx` and `fivestar import SLUG FILE.xlsx [--dry-run]`.

Exit status: 0 when the import succeeded (or would, with --dry-run); 1 when the file has problems
(every problem printed to stderr as `sheet<TAB>row<TAB>column<TAB>reason`, nothing stored) or the
tenant does not exist or refuses; 2 for usage errors (click's convention).
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

import fivestar.models  # noqa: F401 - every mapper, before the first query
from fivestar.audit.recording import Actor, acting_as
from fivestar.db import make_engine, make_sessionmaker
from fivestar.errors import ServiceError
from fivestar.imports.columns import DEFAULT_MAX_ROWS
from fivestar.imports.report import ImportReport
from fivestar.imports.services import import_workbook
from fivestar.imports.template import build_template
from fivestar.kernel.commandline import settings_or_exit
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import Tenant

MAX_PRINTED_ISSUES = 500


def _print_counts(report: ImportReport) -> None:
    orgs, members = report.orgs, report.members
    click.echo(f"组织：新建 {orgs.created}，更新 {orgs.updated}，未变 {orgs.unchanged}")
    click.echo(
        f"党员：新建 {members.created}，更新 {members.updated}（其中调动 {members.moved}），未变 {members.unchanged}"
    )


def _print_issues(report: ImportReport) -> None:
    click.echo("工作表\t行\t列\t原因", err=True)
    for issue in report.issues[:MAX_PRINTED_ISSUES]:
        click.echo(issue.as_line(), err=True)
    hidden = report.issue_count - min(len(report.issues), MAX_PRINTED_ISSUES)
    if hidden > 0:
        click.echo(f"……另有 {hidden} 个问题未列出", err=True)
    click.echo(f"{report.file_name}：发现 {report.issue_count} 个问题，未导入任何内容。", err=True)


@click.command("import-template")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def import_template(out: Path) -> None:
    """写出导入模板 (write the import template workbook to OUT.xlsx)."""
    out.write_bytes(build_template())
    click.echo(f"已写出导入模板：{out}")


@click.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="只检查并统计，不保存 (check and count, store nothing).")
@click.option("--max-rows", type=click.IntRange(1), default=DEFAULT_MAX_ROWS, show_default=True)
def import_command(slug: str, file: Path, dry_run: bool, max_rows: int) -> None:
    """从 Excel 导入组织与党员 (import organisations and members of tenant SLUG from FILE.xlsx)."""
    from sqlalchemy import select

    settings = settings_or_exit()
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == slug.strip().lower()))
            if tenant is None:
                click.echo(f"未找到单位：{slug}", err=True)
                raise SystemExit(1)
            actor = Actor("cli", None, f"cli:{getpass.getuser()}")
            try:
                with acting_as(actor), tenant_context(tenant.id):
                    report = import_workbook(
                        session,
                        tenant,
                        file,
                        max_rows=max_rows,
                        max_bytes=settings.max_upload_mb * 1024 * 1024,
                        dry_run=dry_run,
                    )
            except ServiceError as error:
                session.rollback()
                click.echo(error.message, err=True)
                raise SystemExit(1) from None
            if not report.ok:
                session.rollback()
                _print_issues(report)
                raise SystemExit(1)
            if dry_run:
                session.rollback()
                click.echo(f"{file.name}：检查通过（试运行，未保存）")
            else:
                session.commit()
                click.echo(f"{file.name}：导入完成")
            _print_counts(report)
    finally:
        engine.dispose()


IMPORT_COMMANDS: list[click.Command] = [import_template, import_command]
