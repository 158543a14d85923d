"""Moving a rating step's deadline later: the one set of rules every round kind follows.

The member round (member_rounds/closing.py) and the branch rating (branch_rounds/committee.py) both
let the committee give a later day for a step, with a reason. What is allowed is the same for both,
so it is written once here: a reason is required (and bounded), the new day is not in the past and
is later than the current deadline, and the new deadline stays before the next step's (extend the
later step first, so the steps stay in order). The deadline is the end of that day in the tenant's
time zone, as when the round opened. Callers keep their own state checks, saving and audit event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.timekeeping import clock

REASON_MAX = 500


def local_day(moment: dt.datetime, timezone: str) -> str:
    """The calendar day of `moment` in the tenant's zone, as 2026-04-30."""
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


def checked_extension(
    *,
    label: str,
    current: dt.datetime | None,
    new_day: dt.date,
    reason: str | None,
    timezone: str,
    later: Sequence[tuple[str, dt.datetime | None]] = (),
) -> tuple[dt.datetime, str]:
    """The new deadline (end of `new_day` in `timezone`) and the cleaned reason, or a refusal.

    `label` names the step for messages; `later` lists the following steps' (label, deadline) in
    order: the new deadline must stay before the first of them that has one.
    """
    text = (reason or "").strip()
    if not text:
        raise ServiceError(_("延长期限须填写原因"), field="reason")
    if len(text) > REASON_MAX:
        raise ServiceError(_("原因最长 %(n)d 个字", n=REASON_MAX), field="reason")
    if current is None:
        raise ServiceError(_("本轮没有“%(step)s”期限，无需延长", step=label), field="step")
    today = clock.today_in(timezone)
    if new_day < today:
        raise ServiceError(
            _("新的截止日期 %(day)s 已经过去，请选择今天（%(today)s）或以后的日期", day=new_day.isoformat(),
              today=today.isoformat()),
            field="new_day",
        )
    new_due = clock.end_of_day(new_day, timezone)
    if new_due <= current:
        raise ServiceError(
            _("新的截止日期须晚于当前的%(step)s截止日期 %(day)s", step=label, day=local_day(current, timezone)),
            field="new_day",
        )
    for next_label, next_due in later:
        if next_due is None:
            continue
        if new_due >= next_due:
            raise ServiceError(
                _(
                    "新的%(step)s截止日期须早于%(next)s截止日期 %(day)s；请先延长%(next)s期限",
                    step=label, next=next_label, day=local_day(next_due, timezone),
                ),
                field="new_day",
            )
        break
    return new_due, text


__all__ = ["REASON_MAX", "checked_extension", "local_day"]
