"""The demo clock's button, inside a tenant (where the demo's people are logged in).

Registered for every app so the blueprint tree is the same everywhere, but it answers 404 unless
FIVESTAR_DEMO_CLOCK is on."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, request
from flask_login import current_user, login_required

from fivestar.demo.clock import advance
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.web.core import _safe_next
from fivestar.web.session import db

demo_bp = Blueprint("demo", __name__, url_prefix="/demo")


@demo_bp.post("/clock")
@login_required
def advance_clock() -> Any:
    if not current_app.config["FIVESTAR_SETTINGS"].demo_clock or current_user.is_operator:
        abort(404)
    try:
        days = int(request.form.get("days", "0"))
        advance(db(), days)
    except (ValueError, ServiceError) as error:
        db().rollback()
        flash(getattr(error, "message", _("天数无效")), "error")
    else:
        db().commit()
        flash(_("演示时钟已快进 %(n)d 天。", n=days), "success")
    return redirect(_safe_next(request.form.get("next")))
