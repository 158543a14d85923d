"""Messages that could not be delivered, for the administrators' home page (`fivestar.kernel.worklist`).

The outbox (below accounts) holds every mail, group-robot message and in-app notice; one that failed
after all its retries waits for an administrator, who reads the error and sends it again from the
outbox page (accounts/admin_views.py). Failures of the last `RECENT` days are listed, summed in one
item (one statement): an old failure nobody resent is no longer work.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize
from fivestar.accounts.principal import Principal
from fivestar.i18n import _
from fivestar.kernel.worklist import WorkItem
from fivestar.outbox.models import DeliveryState, OutboxMessage

RECENT = dt.timedelta(days=30)


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    if not authorize(principal, Action.ACCOUNT_MANAGE):
        return []
    failed = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.state == DeliveryState.FAILED, OutboxMessage.created_at >= now - RECENT)
    )
    if not failed:
        return []
    return [
        WorkItem(
            kind="outbox.failed",
            title=_("消息发送失败：查看原因并重新发送"),
            endpoint="tenant.accounts.outbox",
            params={"state": DeliveryState.FAILED.value},
            detail=_("邮件、群机器人和站内消息（最近 %(days)d 天）", days=RECENT.days),
            count=int(failed),
        )
    ]
