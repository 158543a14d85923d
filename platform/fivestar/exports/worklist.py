"""Reports to superior committees that could not be sent, for the administrators' home page.

An export delivery (exports/sending.py) that failed after all its retries alerted the administrators
once; it stays failed until someone fixes the target and presses 重新发送 on the exports page. Every
failed delivery is listed in one summed item (one statement), as long as it stays failed: a report the
superior committee never received is always work.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize
from fivestar.accounts.principal import Principal
from fivestar.exports.models import ExportDelivery, ExportState
from fivestar.i18n import _
from fivestar.kernel.worklist import WorkItem


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    if not authorize(principal, Action.EXPORT_MANAGE):
        return []
    failed = session.scalar(
        select(func.count()).select_from(ExportDelivery).where(ExportDelivery.state == ExportState.FAILED)
    )
    if not failed:
        return []
    return [
        WorkItem(
            kind="exports.failed",
            title=_("上报上级失败：检查接收方设置后重新发送"),
            endpoint="tenant.exports.index",
            detail=_("向上级工委报送的评定结果"),
            count=int(failed),
        )
    ]
