"""`fivestar tenant …` and `fivestar operator …`: the hosting operator's command line.

Each command opens its own session, calls one service, commits once and prints what happened in
Chinese with English beside it. Exit status: 0 done; 1 refused (bad input, unknown tenant, invalid
rule file — the reason is printed, nothing is written); 2 the instance itself is not usable
(configuration, database unreachable or not migrated) or the command was called wrongly.

Every change is recorded in the audit trail as `Actor("cli", None, "command line (<os user>)")`.
Passwords are never command-line arguments (they would land in shell history and `ps`): they are
prompted for twice, or read from standard input with `--password-stdin`.
"""

from __future__ import annotations

import functools
import getpass
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

import fivestar.models  # noqa: F401 - every mapper registered before the first query
from fivestar.accounts.services import create_tenant_admin, invitation_url
from fivestar.audit.recording import Actor, reset_actor, set_actor
from fivestar.broker import enqueue_after_commit
from fivestar.db import make_engine, make_sessionmaker
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import task_names
from fivestar.kernel.commandline import settings_or_exit
from fivestar.ops.queries import list_tenants, tenant_counts
from fivestar.ops.services import (
    activate_operator,
    create_operator,
    deactivate_operator,
    get_operator,
    list_operators,
    reset_operator_password,
)
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import (
    RulesInvalidError,
    add_rules_version,
    create_tenant,
    current_rules,
    decode_rules_upload,
    get_tenant,
    resume_tenant,
    rules_history,
    suspend_tenant,
)
from fivestar.timekeeping import DEFAULT_TIMEZONE

F = TypeVar("F", bound=Callable[..., Any])


class _AbortError(Exception):
    """Stop a command with an exit status after its message was printed."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def cli_actor() -> Actor:
    """Who the audit trail names for command-line changes: the operating-system user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        user = "unknown"
    return Actor("cli", None, f"command line ({user})")


@contextmanager
def cli_session() -> Iterator[Session]:
    """A session on the configured database, acting as the command-line user."""
    settings = settings_or_exit()
    engine = make_engine(settings.resolved_database_url)
    session = make_sessionmaker(engine)()
    token = set_actor(cli_actor())
    try:
        yield session
    finally:
        reset_actor(token)
        session.close()
        engine.dispose()


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    raise _AbortError(code)


def _print_rule_errors(errors: Sequence[Any], source: str) -> None:
    for error in errors:
        click.echo(f"{error.path}: {error.message}" if error.path else f"{source}: {error.message}", err=True)
    click.echo(f"{source}: {len(errors)} 个错误，未做任何更改 ({len(errors)} error(s); nothing changed)", err=True)


def handles_errors(func: F) -> F:
    """Turn refusals and environment problems into a message and an exit status, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _AbortError as stop:
            sys.exit(stop.code)
        except RulesInvalidError as exc:
            _print_rule_errors(exc.errors, str(kwargs.get("rules_file") or kwargs.get("file") or "rules"))
            sys.exit(1)
        except ServiceError as exc:
            where = f" [{exc.field}]" if exc.field else ""
            click.echo(f"错误 (error){where}: {exc.message}", err=True)
            sys.exit(1)
        except IntegrityError:
            click.echo("错误 (error): 与已有数据冲突，请重试 (conflicts with existing data; retry)", err=True)
            sys.exit(1)
        except (OperationalError, ProgrammingError) as exc:
            click.echo(
                "数据库不可用或尚未初始化，请检查 FIVESTAR_DATABASE_URL 并运行 `fivestar db upgrade` "
                f"(database unreachable or not migrated): {type(exc.orig).__name__}",
                err=True,
            )
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _read_rules_file(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ServiceError(
            _("无法读取文件 %(path)s：%(reason)s", path=path, reason=exc.strerror or str(exc)), field="rules"
        ) from None
    return decode_rules_upload(data)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print an aligned table; Chinese characters count as two columns."""
    widths = [max([_width(h)] + [_width(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(cells)).rstrip()

    click.echo(line(headers))
    click.echo(line(["-" * w for w in widths]))
    for row in rows:
        click.echo(line(row))


def _local(value: Any, zone: str) -> str:
    return "" if value is None else value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


_STATUS = {"active": "正常 active", "suspended": "已暂停 suspended"}


# --- tenant ----------------------------------------------------------------------------------


@click.group(name="tenant", help="单位（租户）管理 (manage tenants).")
def tenant_cli() -> None:
    """Group of tenant commands."""


@tenant_cli.command("create", help="新建单位及其第 1 版规则 (create a tenant with version 1 of its rules).")
@click.argument("slug")
@click.option("--name", required=True, help="单位名称 (tenant name), e.g. 某某区直机关工委")
@click.option("--rules", "rules_file", required=True, help="规则文件 TOML (rule-set file)")
@click.option("--timezone", default=None, help="时区，默认 FIVESTAR_DEFAULT_TIMEZONE (IANA zone)")
@click.option("--locale", default="zh", show_default=True, help="界面语言 zh 或 en (interface language)")
@click.option("--committee-name", default=None, help="工委（根组织）名称，默认同单位名称 (root committee name)")
@handles_errors
def tenant_create(
    slug: str, name: str, rules_file: str, timezone: str | None, locale: str, committee_name: str | None
) -> None:
    text = _read_rules_file(rules_file)
    timezone = timezone or settings_or_exit().default_timezone
    with cli_session() as session:
        tenant = create_tenant(
            session, slug=slug, name=name, rules_toml=text, timezone=timezone, locale=locale,
            committee_name=committee_name,
        )
        session.commit()
        click.echo(f"已创建单位 {tenant.slug}（{tenant.name}），规则第 1 版 (tenant created with rules version 1)")
        click.echo(f"页面 (pages): /t/{tenant.slug}/")


@tenant_cli.command("list", help="列出所有单位 (list tenants).")
@handles_errors
def tenant_list() -> None:
    with cli_session() as session:
        rows = list_tenants(session)
    if not rows:
        click.echo("暂无单位 (no tenants)")
        return
    _table(
        ["代码 slug", "名称 name", "状态 status", "时区 timezone", "语言 locale", "规则 rules", "党员 members"],
        [
            [
                row.tenant.slug,
                row.tenant.name,
                _STATUS.get(row.tenant.status.value, row.tenant.status.value),
                row.tenant.timezone,
                row.tenant.locale,
                f"v{row.rules_version}" if row.rules_version else "-",
                str(row.active_members),
            ]
            for row in rows
        ],
    )
    click.echo(f"共 {len(rows)} 个单位 ({len(rows)} tenant(s))")


@tenant_cli.command("show", help="查看单位概况（不含党员信息）(show a tenant: facts and counts only).")
@click.argument("slug")
@handles_errors
def tenant_show(slug: str) -> None:
    with cli_session() as session:
        tenant = get_tenant(session, slug)
        counts = tenant_counts(session, tenant)
        rules = current_rules(session, tenant)
        zone = tenant.timezone
        click.echo(f"代码 slug:            {tenant.slug}")
        click.echo(f"名称 name:            {tenant.name}")
        click.echo(f"状态 status:          {_STATUS.get(tenant.status.value, tenant.status.value)}")
        if tenant.status_reason:
            click.echo(f"状态说明 reason:      {tenant.status_reason}")
        click.echo(f"时区 timezone:        {zone}")
        click.echo(f"语言 locale:          {tenant.locale}")
        click.echo(f"创建于 created:       {_local(tenant.created_at, zone)}")
        click.echo(f"组织 organisations:   {counts.organisations}")
        click.echo(f"在册党员 members:     {counts.active_members}")
        click.echo(f"账号 accounts:        {counts.accounts}")
        if rules is not None:
            name = rules.document.get("meta", {}).get("name", "")
            click.echo(f"当前规则 rules:       v{rules.version} {name} ({_local(rules.created_at, zone)})")
        click.echo(f"页面 pages:           /t/{tenant.slug}/")


@tenant_cli.command("suspend", help="暂停单位：页面停用、无法登录，数据保留 (suspend a tenant).")
@click.argument("slug")
@click.option("--reason", required=True, help="原因 (reason), recorded in the audit trail")
@handles_errors
def tenant_suspend(slug: str, reason: str) -> None:
    with cli_session() as session:
        tenant = suspend_tenant(session, get_tenant(session, slug), reason)
        session.commit()
        click.echo(f"已暂停单位 {tenant.slug}；其用户已被登出 (tenant suspended; its users were logged out)")


@tenant_cli.command("resume", help="恢复已暂停的单位 (resume a suspended tenant).")
@click.argument("slug")
@click.option("--reason", default=None, help="说明 (reason), optional")
@handles_errors
def tenant_resume(slug: str, reason: str | None) -> None:
    with cli_session() as session:
        tenant = resume_tenant(session, get_tenant(session, slug), reason)
        session.commit()
        click.echo(f"已恢复单位 {tenant.slug} (tenant resumed)")


@tenant_cli.command("rules", help="上传新版本规则；进行中的评定不受影响 (add a new rule-set version).")
@click.argument("slug")
@click.option("--file", "file", required=True, help="规则文件 TOML (rule-set file)")
@click.option("--note", default=None, help="版本说明 (what changed)")
@handles_errors
def tenant_rules(slug: str, file: str, note: str | None) -> None:
    text = _read_rules_file(file)
    with cli_session() as session:
        tenant = get_tenant(session, slug)
        version = add_rules_version(session, tenant, text, note=note)
        session.commit()
        click.echo(
            f"单位 {tenant.slug} 的规则已更新为第 {version.version} 版；已开始的评定仍按原版本 "
            f"(rules version {version.version} stored; rounds already opened keep their version)"
        )


@tenant_cli.command(
    "add-admin",
    help="为单位添加管理员（工委工作人员），新单位用它开通第一个账号 (add a tenant administrator).",
)
@click.argument("slug")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="姓名 (display name)")
@click.option("--email", default=None, help="电子邮箱 (e-mail), required with --invite")
@click.option(
    "--invite", is_flag=True, help="发送邀请邮件，由本人设置密码 (e-mail an invitation instead of a password)"
)
@click.option("--password-stdin", is_flag=True, help="从标准输入读取初始密码 (read the first password from stdin)")
@handles_errors
def tenant_add_admin(
    slug: str, username: str, display_name: str, email: str | None, invite: bool, password_stdin: bool
) -> None:
    if invite and password_stdin:
        _fail("错误 (error): --invite 与 --password-stdin 只能选一个 (choose one of --invite, --password-stdin)", 2)
    password = None if invite else _new_password(password_stdin)
    settings = settings_or_exit()
    with cli_session() as session:
        tenant = get_tenant(session, slug)
        with tenant_context(tenant.id):
            account, link = create_tenant_admin(
                session,
                username=username,
                display_name=display_name,
                email=email,
                password=password,
                settings=settings,
                link_for=lambda token: invitation_url(settings, tenant.slug, token),
            )
            if link is not None:
                enqueue_after_commit(session, settings, task_names.DELIVER_OUTBOX)
            session.commit()
        click.echo(f"已为单位 {tenant.slug} 添加管理员 {account.username} (tenant administrator added)")
        if link is None:
            click.echo(f"首次登录须修改密码 (must change the password at first login): /t/{tenant.slug}/login")
        else:
            click.echo(f"邀请邮件已排队发往 {account.email} (invitation queued for delivery)")


@tenant_cli.command("rules-history", help="规则版本历史 (rule-set version history).")
@click.argument("slug")
@handles_errors
def tenant_rules_history(slug: str) -> None:
    with cli_session() as session:
        tenant = get_tenant(session, slug)
        versions = rules_history(session, tenant)
        _table(
            ["版本 version", "时间 created", "操作人 by", "哈希 sha256", "说明 note"],
            [
                [
                    f"v{v.version}",
                    _local(v.created_at, tenant.timezone),
                    v.created_by or "",
                    v.content_hash[:12],
                    (v.note or "").replace("\n", " "),
                ]
                for v in versions
            ],
        )


# --- operator --------------------------------------------------------------------------------


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            _fail("错误 (error): 标准输入中没有密码 (no password on standard input)")
        return line.rstrip("\r\n")
    value: str = click.prompt(
        "密码 (password)", hide_input=True, confirmation_prompt="再次输入密码 (repeat password)"
    )
    return value


@click.group(name="operator", help="平台运营人员账号 (hosting operator accounts).")
def operator_cli() -> None:
    """Group of operator commands."""


@operator_cli.command("create", help="新建运营人员账号 (create an operator).")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="姓名 (display name)")
@click.option("--email", default=None, help="电子邮箱 (e-mail)")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取密码 (read the password from stdin)")
@handles_errors
def operator_create(username: str, display_name: str, email: str | None, password_stdin: bool) -> None:
    password = _new_password(password_stdin)
    with cli_session() as session:
        operator = create_operator(
            session, username=username, display_name=display_name, password=password, email=email
        )
        session.commit()
        click.echo(f"已创建运营人员 {operator.username} (operator created); 登录 (log in): /ops/login")


@operator_cli.command("list", help="列出运营人员 (list operators).")
@handles_errors
def operator_list() -> None:
    with cli_session() as session:
        operators = list_operators(session)
    if not operators:
        click.echo("暂无运营人员 (no operators)")
        return
    _table(
        ["用户名 username", "姓名 name", "邮箱 email", "状态 status", "最近登录 last login"],
        [
            [
                op.username,
                op.display_name,
                op.email or "",
                "在用 active" if op.active else "已停用 inactive",
                _local(op.last_login_at, DEFAULT_TIMEZONE),
            ]
            for op in operators
        ],
    )


@operator_cli.command("reset-password", help="重设运营人员密码并使其登录失效 (set a new password).")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="从标准输入读取密码 (read the password from stdin)")
@handles_errors
def operator_reset_password(username: str, password_stdin: bool) -> None:
    with cli_session() as session:
        operator = get_operator(session, username)
        password = _new_password(password_stdin)
        reset_operator_password(session, operator, password)
        session.commit()
        click.echo(f"已重设 {operator.username} 的密码，其现有登录已失效 (password reset; sessions ended)")


@operator_cli.command("deactivate", help="停用运营人员 (deactivate an operator).")
@click.argument("username")
@handles_errors
def operator_deactivate(username: str) -> None:
    with cli_session() as session:
        operator = deactivate_operator(session, get_operator(session, username))
        session.commit()
        click.echo(f"已停用运营人员 {operator.username} (operator deactivated)")


@operator_cli.command("activate", help="重新启用运营人员 (reactivate an operator).")
@click.argument("username")
@handles_errors
def operator_activate(username: str) -> None:
    with cli_session() as session:
        operator = activate_operator(session, get_operator(session, username))
        session.commit()
        click.echo(f"已启用运营人员 {operator.username} (operator activated)")


__all__ = ["cli_actor", "cli_session", "handles_errors", "operator_cli", "tenant_cli"]
