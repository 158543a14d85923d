"""日程: what the calendar will do for the district and what it did — planned openings and reminders,
with their state and outcome — for the committee's staff (`ROUND_MANAGE`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import case, select

from fivestar.accounts.policy import Action, require
from fivestar.i18n import _l
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

schedule_bp = Blueprint("schedule", __name__, url_prefix="/schedule")

KIND_LABELS = {
    DueKind.OPEN_MEMBER_ROUND: _l("开启党员评定"),
    DueKind.OPEN_BRANCH_ROUND: _l("开启党支部评定"),
    DueKind.REMINDER: _l("截止提醒"),
}
STATE_LABELS = {
    DueState.PENDING: _l("待执行"),
    DueState.RUNNING: _l("执行中"),
    DueState.DONE: _l("已完成"),
    DueState.FAILED: _l("失败"),
}
SHOWN = 200


@schedule_bp.get("/")
@login_required
def index() -> Any:
    require(current_user, Action.ROUND_MANAGE, current_tenant())
    pending_first = case((DueItem.state.in_((DueState.PENDING, DueState.RUNNING)), 0), else_=1)
    items = list(db().scalars(
        select(DueItem).order_by(pending_first, DueItem.due_at.desc(), DueItem.id.desc()).limit(SHOWN)
    ))
    upcoming = sorted((i for i in items if i.state in (DueState.PENDING, DueState.RUNNING)), key=lambda i: i.due_at)
    past = [i for i in items if i.state not in (DueState.PENDING, DueState.RUNNING)]
    return render_template("schedule/index.html", upcoming=upcoming, past=past,
                           kind_label=lambda k: str(KIND_LABELS.get(k, k)),
                           state_label=lambda s: str(STATE_LABELS.get(s, s)))
