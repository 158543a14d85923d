"""What every `fivestar` command shares: the instance's settings, or exit status 2 with the reason.

Lives below the features so that their own command modules (`tenants/cli.py`, `imports/cli.py`,
`demo/cli.py`) can use it without importing `fivestar.cli`, which imports them to register their
commands.
"""

from __future__ import annotations

import sys

import click

from fivestar.config import ConfigError, Settings, load_settings


def settings_or_exit() -> Settings:
    """The settings from FIVESTAR_* variables with the holiday calendar installed; exit 2 if invalid."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    settings.install_holidays()
    return settings


__all__ = ["settings_or_exit"]
