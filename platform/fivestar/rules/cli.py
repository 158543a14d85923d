"""``fivestar rules …`` commands: check a rule-set file before it is uploaded or committed.

Exit status 0 means the file loads; 1 means it does not (each problem printed as ``<path>: <reason>``,
or one line for a missing, non-UTF-8 or non-TOML file).  The group is registered in the main
``fivestar`` CLI by the application; it does not import Flask.
"""

from __future__ import annotations

import click

from .errors import RuleSetError
from .loader import load_rules_file
from .summary import summarize

__all__ = ["rules_cli"]


@click.group(name="rules", help="规则集工具 (rule-set tools).")
def rules_cli() -> None:
    """Group for rule-set commands."""


@rules_cli.command("check", help="检查规则文件并打印摘要 (validate a rule-set TOML file and summarise it).")
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate FILE; print every error with its path, or a summary of the rules."""
    try:
        rules = load_rules_file(file)
    except RuleSetError as exc:
        for error in exc.errors:
            click.echo(f"{error.path}: {error.message}" if error.path else f"{file}: {error.message}")
        click.echo(f"{file}: {len(exc.errors)} 个错误 ({len(exc.errors)} error(s))", err=True)
        raise SystemExit(1) from None
    click.echo("\n".join(summarize(rules)))
    click.echo(f"{file}: 校验通过 (OK)")
