"""Calendar items that failed (a round that did not open by itself, a reminder not sent), for the home
page of whoever runs the rounds. Failures of the last `RECENT` days, summed in one item (one statement);
the schedule page says what each was and why it failed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize
from fivestar.accounts.principal import Principal
from fivestar.i18n import _
from fivestar.kernel.worklist import WorkItem
from fivestar.scheduling.models import DueItem, DueState

RECENT = dt.timedelta(days=30)


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    if not authorize(principal, Action.ROUND_MANAGE):
        return []
    failed = session.scalar(
        select(func.count())
        .select_from(DueItem)
        .where(DueItem.state == DueState.FAILED, DueItem.due_at >= now - RECENT)
    )
    if not failed:
        return []
    return [
        WorkItem(
            kind="scheduling.failed",
            title=_("日程任务执行失败：查看原因"),
            endpoint="tenant.schedule.index",
            detail=_("自动开启评定、截止提醒（最近 %(days)d 天）", days=RECENT.days),
            count=int(failed),
        )
    ]
