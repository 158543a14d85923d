"""Jinja helpers shared by every page: labels, permission checks, dates in the tenant's zone."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, g
from flask_babel import get_locale
from flask_login import current_user

from fivestar.accounts.policy import Action, authorize
from fivestar.labels import label
from fivestar.timekeeping import DEFAULT_TIMEZONE
from fivestar.web.nav import tenant_nav


def _can(action: str, obj: Any = None) -> bool:
    return authorize(current_user, Action(action), obj)


def _local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    tenant = g.get("tenant")
    zone = ZoneInfo(tenant.timezone if tenant is not None else DEFAULT_TIMEZONE)
    return value.astimezone(zone).strftime(fmt)


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def install(app: Flask) -> None:
    app.jinja_env.globals.update(can=_can, label=label, get_locale=get_locale, Action=Action, tenant_nav=tenant_nav)
    app.jinja_env.filters.update(label=label, local=_local, isodate=_date)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _inject() -> dict[str, Any]:
        return {"tenant": g.get("tenant"), "lang": str(get_locale() or "zh")}
