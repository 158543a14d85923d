"""站内消息: every account's own inbox (reminders and other notices), under /t/<slug>/inbox/."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, require
from fivestar.i18n import _
from fivestar.inbox import services
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

inbox_bp = Blueprint("inbox", __name__, url_prefix="/inbox")


def _account_id() -> int:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    account_id = getattr(current_user, "account_id", None)
    if account_id is None:
        abort(404)
    return int(account_id)


@inbox_bp.get("/")
@login_required
def index() -> Any:
    account_id = _account_id()
    notices = services.latest(db(), account_id)
    unread = services.unread_count(db(), account_id)
    return render_template("inbox/index.html", notices=notices, unread=unread)


@inbox_bp.get("/<int:notice_id>")
@login_required
def open_notice(notice_id: int) -> Any:
    account_id = _account_id()
    notice = services.open_notice(db(), account_id, notice_id)
    if notice is None:
        abort(404)
    db().commit()
    return render_template("inbox/notice.html", notice=notice)


@inbox_bp.post("/read")
@login_required
def read_all() -> Any:
    count = services.mark_all_read(db(), _account_id())
    db().commit()
    flash(_("已将 %(n)d 条消息标为已读。", n=count), "success")
    return redirect(url_for(".index"))
