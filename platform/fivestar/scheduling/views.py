"""日程: what the calendar will do for the district and what it did — planned openings and reminders,
with their state and outcome — for the committee's staff (`ROUND_MANAGE`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, require
from fivestar.branch_rounds.models import BranchRound
from fivestar.i18n import _, _l
from fivestar.member_rounds.honour import period_label
from fivestar.member_rounds.models import MemberRound
from fivestar.reminders.planning import NOTICE_STEP, PLAN_ITEM_STEP, RECTIFY_STEP, ReminderKey
from fivestar.reminders.sending import STEP_LABELS
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.timekeeping import clock
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

schedule_bp = Blueprint("schedule", __name__, url_prefix="/schedule")

KIND_LABELS = {
    DueKind.OPEN_MEMBER_ROUND: _l("开启党员评定"),
    DueKind.OPEN_BRANCH_ROUND: _l("开启党支部评定"),
    DueKind.REMINDER: _l("提醒"),
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
    described = describe_items(db(), items)
    this_year = clock.today_in(current_tenant().timezone).year
    years = {this_year, this_year + 1} | {i.due_at.year for i in upcoming}
    unknown_years = sorted(y for y in years if clock.calendar_source(y) is clock.CalendarSource.STATUTORY)
    return render_template("schedule/index.html", upcoming=upcoming, past=past, unknown_years=unknown_years,
                           kind_label=lambda k: str(KIND_LABELS.get(k, k)),
                           state_label=lambda s: str(STATE_LABELS.get(s, s)),
                           describe=lambda i: described.get(i.id, i.key))


def describe_items(session: Session, items: list[DueItem]) -> dict[int, str]:
    """What each row is about, as people say it — "2026年第三季度党员星级评定 · 个人自评 · 10月14日截止 ·
    提前 3 天" rather than its key `m12:self:20261014:3`. Two queries for the rounds' names, whatever
    the number of rows."""
    keys: dict[int, ReminderKey] = {}
    for item in items:
        if item.kind is DueKind.REMINDER:
            try:
                keys[item.id] = ReminderKey.parse(item.key)
            except ValueError:
                continue
    member_ids = {k.round_id for k in keys.values() if k.round_kind == "m"}
    branch_ids = {k.round_id for k in keys.values() if k.round_kind in ("b", "p")}
    member_names = {
        round_id: _("%(period)s党员星级评定", period=period_label(period))
        for round_id, period in (session.execute(select(MemberRound.id, MemberRound.period_key)
                                                 .where(MemberRound.id.in_(member_ids))) if member_ids else ())
    }
    branch_years = dict(session.execute(select(BranchRound.id, BranchRound.year)
                                        .where(BranchRound.id.in_(branch_ids))).all() if branch_ids else ())
    branch_names = {round_id: _("%(year)s 年度党支部星级评定", year=year) for round_id, year in branch_years.items()}
    # the plans that follow a branch round are the next year's work (整改提升计划, "p" keys)
    plan_names = {round_id: _("%(year)s 年整改提升计划", year=int(year) + 1) for round_id, year in branch_years.items()}
    described: dict[int, str] = {}
    for item in items:
        if item.kind is DueKind.OPEN_MEMBER_ROUND:
            described[item.id] = _("%(period)s党员星级评定", period=period_label(item.key))
        elif item.kind is DueKind.OPEN_BRANCH_ROUND:
            described[item.id] = _("%(year)s 年度党支部星级评定", year=item.key)
        elif item.id in keys:
            key = keys[item.id]
            names = {"m": member_names, "p": plan_names}.get(key.round_kind, branch_names)
            day = _("%(month)d月%(day)d日", month=key.deadline.month, day=key.deadline.day)
            if key.step == NOTICE_STEP:
                when = day
            elif key.step in (RECTIFY_STEP, PLAN_ITEM_STEP):
                when = _("%(day)s到期", day=day)
            else:
                when = _("%(day)s截止", day=day)
            parts = [names.get(key.round_id, key.round_kind + str(key.round_id)), STEP_LABELS.get(key.step, key.step),
                     when]
            if key.step != NOTICE_STEP:
                parts.append(_("当天") if key.lead == 0 else _("提前 %(n)d 天", n=key.lead))
            described[item.id] = " · ".join(parts)
    return described
