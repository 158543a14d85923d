"""The district's audit trail as the inspectors read it: filters, keyset pages, readable diffs.

`audit_events` is not scoped by the tenancy hook (it is not a tenant-owned table): every query here
filters `tenant_id` itself. An event names its object by `object_type` (the table) and `object_id`
(a string). What it is *about* — its organisation, member and round — comes from one small select
per object type (`SUBJECTS`): the object's table joined to what it hangs under. Filters use them as
`object_type = T AND object_id IN (SELECT …)` per type, so the composite index
`(tenant_id, object_type, object_id)` serves them; a page's subjects are one UNION ALL of the same
selects restricted to the page's ids. A page is therefore a fixed number of queries, whatever it
holds.

The words people read (action, field and actor labels) are `trail_labels`; the per-type selects
are `trail_subjects`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.models import Account
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import (
    BranchRound,
)
from fivestar.i18n import _
from fivestar.inspection.trail_labels import ACTOR_KINDS, FAMILIES, FIELDS, action_label, family_label
from fivestar.inspection.trail_subjects import SUBJECTS, subject_clause
from fivestar.member_rounds.models import (
    MemberRound,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member

PAGE_SIZE = 30


# --- filters and pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailFilters:
    actor: str | None = None  # "account:<id>" or an actor kind ("system", "cli", "public")
    member_id: int | None = None  # events about this member
    org_path: str | None = None  # events about this organisation or anything under it
    member_round_id: int | None = None
    branch_round_id: int | None = None
    family: str | None = None  # the action's prefix, e.g. "branch_rating"
    date_from: dt.date | None = None  # in the tenant's time zone, inclusive
    date_to: dt.date | None = None


def filter_clauses(tenant_id: int, filters: TrailFilters, zone: str) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [AuditEvent.tenant_id == tenant_id]
    if filters.actor:
        kind, _sep, ident = filters.actor.partition(":")
        clauses.append(AuditEvent.actor_kind == kind)
        if ident.isdigit():
            clauses.append(AuditEvent.actor_id == int(ident))
    if filters.family:
        clauses.append(AuditEvent.action.startswith(f"{filters.family}.", autoescape=True))
    if filters.member_id is not None:
        wanted = filters.member_id
        clauses.append(subject_clause(tenant_id, "member_id", lambda col: col == wanted))
    if filters.org_path is not None:
        path = filters.org_path
        orgs = select(Organisation.id).where(
            Organisation.tenant_id == tenant_id, Organisation.path.startswith(path, autoescape=True)
        )
        clauses.append(subject_clause(tenant_id, "org_id", lambda col: col.in_(orgs)))
    if filters.member_round_id is not None:
        mround = filters.member_round_id
        clauses.append(subject_clause(tenant_id, "member_round_id", lambda col: col == mround))
    if filters.branch_round_id is not None:
        bround = filters.branch_round_id
        clauses.append(subject_clause(tenant_id, "branch_round_id", lambda col: col == bround))
    local = ZoneInfo(zone)
    if filters.date_from is not None:
        start = dt.datetime.combine(filters.date_from, dt.time(0), tzinfo=local).astimezone(dt.UTC)
        clauses.append(AuditEvent.occurred_at >= start)
    if filters.date_to is not None:
        end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(0), tzinfo=local)
        clauses.append(AuditEvent.occurred_at < end.astimezone(dt.UTC))
    return clauses


@dataclass
class DiffRow:
    key: str
    label: str
    before: str
    after: str
    changed: bool


@dataclass
class TrailEntry:
    event: AuditEvent
    what: str
    family: str
    actor: str
    org_name: str | None = None
    member_name: str | None = None
    member_round: str | None = None
    branch_round: str | None = None
    diff: list[DiffRow] = field(default_factory=list)

    @property
    def changed(self) -> list[DiffRow]:
        return [row for row in self.diff if row.changed]


@dataclass
class TrailPage:
    entries: list[TrailEntry]
    next_cursor: str | None


def encode_cursor(event: AuditEvent) -> str:
    return f"{event.occurred_at.astimezone(dt.UTC).strftime('%Y%m%d%H%M%S%f')}-{event.id}"


def decode_cursor(text: str | None) -> tuple[dt.datetime, int] | None:
    """The (time, id) of the last event of the previous page; None for a missing or garbled one."""
    if not text:
        return None
    stamp, _sep, ident = text.partition("-")
    try:
        when = dt.datetime.strptime(stamp, "%Y%m%d%H%M%S%f").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if not ident.isdigit():
        return None
    return when, int(ident)


def trail_page(
    session: Session,
    tenant_id: int,
    filters: TrailFilters,
    *,
    zone: str,
    cursor: tuple[dt.datetime, int] | None = None,
    page_size: int = PAGE_SIZE,
) -> TrailPage:
    """One page of events, newest first, after `cursor` (keyset: (occurred_at, id) descending).

    Two queries: the events (one more than a page, to know whether another follows) and what
    they are about.
    """
    query = select(AuditEvent).where(*filter_clauses(tenant_id, filters, zone))
    if cursor is not None:
        when, ident = cursor
        query = query.where(
            or_(AuditEvent.occurred_at < when, and_(AuditEvent.occurred_at == when, AuditEvent.id < ident))
        )
    rows = list(
        session.scalars(query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(page_size + 1))
    )
    more = len(rows) > page_size
    events = rows[:page_size]
    entries = describe(session, tenant_id, events)
    return TrailPage(entries=entries, next_cursor=encode_cursor(events[-1]) if more and events else None)


def load_event(session: Session, tenant_id: int, event_id: int) -> AuditEvent | None:
    """One event of this district (another district's id is not found)."""
    return session.scalar(select(AuditEvent).where(AuditEvent.id == event_id, AuditEvent.tenant_id == tenant_id))


def describe(session: Session, tenant_id: int, events: Sequence[AuditEvent]) -> list[TrailEntry]:
    """Entries with what each event is about, in one UNION ALL query over the page's objects."""
    wanted: dict[str, set[str]] = {}
    for event in events:
        if event.object_id is not None:
            wanted.setdefault(event.object_type, set()).add(event.object_id)
    about: dict[tuple[str, str], Any] = {}
    parts = []
    for subject in SUBJECTS:
        ids = wanted.get(subject.object_type)
        if not ids:
            continue
        sub = subject.build(tenant_id).subquery()
        parts.append(
            select(literal(subject.object_type).label("object_type"), *sub.c).where(sub.c.oid.in_(sorted(ids)))
        )
    if parts:
        found = union_all(*parts).subquery()
        org = aliased(Organisation)
        person = aliased(Member)
        mround = aliased(MemberRound)
        bround = aliased(BranchRound)
        statement = (
            select(found.c.object_type, found.c.oid, org.name, person.name, mround.period_key, bround.year)
            .select_from(found)
            .outerjoin(org, and_(org.id == found.c.org_id, org.tenant_id == tenant_id))
            .outerjoin(person, and_(person.id == found.c.member_id, person.tenant_id == tenant_id))
            .outerjoin(mround, and_(mround.id == found.c.member_round_id, mround.tenant_id == tenant_id))
            .outerjoin(bround, and_(bround.id == found.c.branch_round_id, bround.tenant_id == tenant_id))
        )
        found_rows: Iterable[Any] = session.execute(statement)
        for object_type, oid, org_name, member_name, period_key, year in found_rows:
            about[(object_type, oid)] = (org_name, member_name, period_key, year)
    entries = []
    for event in events:
        org_name, member_name, period_key, year = about.get((event.object_type, event.object_id or ""), (None,) * 4)
        entries.append(
            TrailEntry(
                event=event,
                what=action_label(event.action),
                family=family_label(event.action),
                actor=actor_label(event),
                org_name=org_name,
                member_name=member_name,
                member_round=period_key,
                branch_round=str(year) if year is not None else None,
                diff=diff(event.before, event.after),
            )
        )
    return entries


def actor_label(event: AuditEvent) -> str:
    """The actor's name as recorded; a bare kind ("system") in words."""
    kind = ACTOR_KINDS.get(event.actor_kind)
    if kind is not None and (not event.actor_name or event.actor_name == event.actor_kind):
        return str(kind)
    return event.actor_name


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[DiffRow]:
    """Every field of before and after, changed ones flagged (the page highlights them)."""
    old = dict(before or {})
    new = dict(after or {})
    keys = list(old) + [key for key in new if key not in old]
    rows = []
    for key in keys:
        label = FIELDS.get(key)
        rows.append(
            DiffRow(
                key=key,
                label=f"{label}（{key}）" if label is not None else key,
                before=_show(old.get(key)) if key in old else "",
                after=_show(new.get(key)) if key in new else "",
                changed=(key in old) != (key in new) or old.get(key) != new.get(key),
            )
        )
    return rows


# --- the filter form's choices --------------------------------------------------------------------


def actor_choices(session: Session, tenant_id: int) -> list[tuple[str, str]]:
    accounts = session.execute(
        select(Account.id, Account.display_name, Account.username)
        .where(Account.tenant_id == tenant_id)
        .order_by(Account.display_name, Account.id)
    )
    choices = [(f"account:{ident}", f"{name}（{username}）") for ident, name, username in accounts]
    choices += [(kind, str(label)) for kind, label in ACTOR_KINDS.items() if kind != "operator"]
    return choices


def family_choices() -> list[tuple[str, str]]:
    return [(key, str(label)) for key, label in FAMILIES.items()]


def member_round_label(period: str) -> str:
    return _("%(period)s 党员星级评定", period=period)


def branch_round_label(year: int) -> str:
    return _("%(year)d 年度党支部星级评定", year=year)


@dataclass(frozen=True)
class RoundChoice:
    value: str  # "m<id>" or "b<id>"
    label: str


def round_choices(session: Session, tenant_id: int) -> list[RoundChoice]:
    """Every member round and branch round of the district, newest first (two queries)."""
    member_rounds = session.execute(
        select(MemberRound.id, MemberRound.period_key)
        .where(MemberRound.tenant_id == tenant_id)
        .order_by(MemberRound.period_start.desc())
    )
    branch_rounds = session.execute(
        select(BranchRound.id, BranchRound.year)
        .where(BranchRound.tenant_id == tenant_id)
        .order_by(BranchRound.year.desc())
    )
    choices = [RoundChoice(f"m{ident}", member_round_label(period)) for ident, period in member_rounds]
    choices += [RoundChoice(f"b{ident}", branch_round_label(year)) for ident, year in branch_rounds]
    return choices


def parse_round(value: str | None) -> tuple[str, int] | None:
    """("member", id) or ("branch", id) from a round choice's value; None for anything else."""
    if not value or len(value) < 2 or value[0] not in "mb" or not value[1:].isdigit():
        return None
    return ("member" if value[0] == "m" else "branch", int(value[1:]))
