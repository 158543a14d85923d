"""The demo's own pages, inside a tenant (where the demo's people are logged in): the clock's button
and the mail catcher's inbox (every e-mail the demo sent, read from `<data>/mail/*.eml`).

Registered for every app so the blueprint tree is the same everywhere, but they answer 404 unless
FIVESTAR_DEMO_CLOCK is on."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request
from flask_login import current_user, login_required

from fivestar.demo.fast_calendar import advance
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


MAIL_SHOWN = 100
MAIL_NAME = re.compile(r"^[0-9]{5}-[0-9a-f]{8}\.eml$")


def _mail_folder() -> Path:
    settings = current_app.config["FIVESTAR_SETTINGS"]
    if not settings.demo_clock or current_user.is_operator:
        abort(404)
    return Path(settings.resolved_data_dir) / "mail"


def _parse(path: Path) -> Any:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


@demo_bp.get("/mail")
@login_required
def mail() -> Any:
    """The demo's mail catcher: what the platform sent (invitations, reminders, result notices)."""
    folder = _mail_folder()
    name = request.args.get("n", "")
    if name:
        if not MAIL_NAME.match(name) or not (folder / name).is_file():
            abort(404)
        message = _parse(folder / name)
        body = message.get_body(preferencelist=("plain",))
        return render_template("demo/mail_message.html", message=message, name=name,
                               text=body.get_content() if body is not None else "")
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:MAIL_SHOWN]
    rows = [(path.name, _parse(path)) for path in files]
    return render_template("demo/mail.html", rows=rows, folder=folder)
