"""Planning: turn each tenant's rules into `due_items` rows (idempotent; run by every sweep).

For a tenant whose rules say `auto_open`, the planner keeps one row for the member round of the
period that has just ended (if its opening is less than `CATCH_UP` ago and no round exists yet)
and one for the period running now, and likewise one for this year's branch round. For every open
round it keeps one reminder row per step deadline and lead time, and rows for public notices that
have ended and for rectification deadlines (`fivestar.reminders.planning`). A pending
row whose instant the rules have since moved is moved with them; a row already claimed, done or
failed is left as it is. Planning never opens anything: the runner does, at the row's instant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound
from fivestar.member_rounds.models import MemberRound
from fivestar.member_rounds.opening import previous_period
from fivestar.reminders import planning as reminder_planning
from fivestar.rules import RuleSet, load_rules_data
from fivestar.rules.schedule import member_period
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.timekeeping import clock
from fivestar.timekeeping.local_times import branch_opening_at, member_opening_at

#: How late an opening may still happen (the platform was down at the instant, or the rule was
#: switched on just after it). Later than this, opening would leave members almost no time: the
#: committee opens such a round by hand.
CATCH_UP = dt.timedelta(days=7)


@dataclass(frozen=True)
class Planned:
    kind: DueKind
    key: str
    due_at: dt.datetime


_rules_cache: dict[tuple[int, str], RuleSet] = {}


def rules_for(version: RuleSetVersion) -> RuleSet:
    """The rule set of a stored version, parsed once per process (versions never change)."""
    cache_key = (version.id, version.content_hash)
    rules = _rules_cache.get(cache_key)
    if rules is None:
        if len(_rules_cache) > 512:
            _rules_cache.clear()
        rules = _rules_cache[cache_key] = load_rules_data(version.document)
    return rules


def take_write_lock(session: Session) -> None:
    """On SQLite, start the transaction as a writer. Several sweeps read and then write; in WAL mode
    a reader whose snapshot another writer has since moved cannot become a writer and fails at once
    with "database is locked", whatever the busy timeout. A statement that could write, even one
    that matches nothing, takes the write lock first and waits for it. PostgreSQL needs nothing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE due_items SET id = id WHERE 0"))


def wanted_items(rules: RuleSet, timezone: str, now: dt.datetime) -> list[Planned]:
    """The rows the rules ask for around `now` (before looking at what already exists)."""
    items: list[Planned] = []
    today = now.astimezone(ZoneInfo(timezone)).date()
    if rules.schedule.member.auto_open:
        for period in (previous_period(rules, today), member_period(rules, today)):
            at = member_opening_at(rules, period, timezone, is_working_day=clock.is_working_day)
            if at >= now - CATCH_UP:
                items.append(Planned(DueKind.OPEN_MEMBER_ROUND, period.key, at))
    if rules.schedule.branch.auto_open:
        for held_in in (today.year, today.year + 1):
            branch_at = branch_opening_at(rules, held_in, timezone, is_working_day=clock.is_working_day)
            if branch_at is not None and branch_at >= now - CATCH_UP:
                items.append(Planned(DueKind.OPEN_BRANCH_ROUND, str(held_in - 1), branch_at))
    return items


def plan_tenant(session: Session, tenant: Tenant, now: dt.datetime) -> int:
    """Add or move the tenant's due rows; returns how many rows were added. Commits nothing."""
    take_write_lock(session)
    with tenant_context(tenant.id):
        version = session.scalar(
            select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1)
        )
        if version is None:
            return 0
        current = rules_for(version)
        wanted = wanted_items(current, tenant.timezone, now)
        pinned_ids = reminder_planning.pinned_versions(session)
        pinned = {v.id: rules_for(v) for v in reminder_planning.versions(session, pinned_ids)}
        wanted.extend(
            Planned(DueKind.REMINDER, str(key), at)
            for key, at in reminder_planning.reminder_items(session, tenant.timezone, now, pinned, current)
        )
        if not wanted:
            return 0
        existing = {
            (row.kind, row.key): row
            for row in session.scalars(select(DueItem).where(DueItem.kind.in_({w.kind for w in wanted})))
        }
        opened_periods = set(session.scalars(select(MemberRound.period_key)))
        opened_years = {str(year) for year in session.scalars(select(BranchRound.year))}
        added = 0
        for item in wanted:
            row = existing.get((item.kind, item.key))
            if row is not None:
                if row.state is DueState.PENDING and row.due_at != item.due_at:
                    session.execute(
                        update(DueItem)
                        .where(DueItem.id == row.id, DueItem.state == DueState.PENDING)
                        .values(due_at=item.due_at)
                        .execution_options(synchronize_session=False)
                    )
                continue
            already = {DueKind.OPEN_MEMBER_ROUND: opened_periods, DueKind.OPEN_BRANCH_ROUND: opened_years}
            if item.key in already.get(item.kind, ()):
                continue  # opened by hand before the rules' instant: nothing left to do
            try:
                with session.begin_nested():
                    session.add(DueItem(tenant_id=tenant.id, kind=item.kind, key=item.key, due_at=item.due_at))
                added += 1
            except IntegrityError:
                pass  # another sweep planned it at the same moment
        return added
