"""The district's audit trail as the inspectors read it: filters, keyset pages, readable diffs.

`audit_events` is not scoped by the tenancy hook (it is not a tenant-owned table): every query here
filters `tenant_id` itself. An event names its object by `object_type` (the table) and `object_id`
(a string). What it is *about* — its organisation, member and round — comes from one small select
per object type (`SUBJECTS`): the object's table joined to what it hangs under. Filters use them as
`object_type = T AND object_id IN (SELECT …)` per type, so the composite index
`(tenant_id, object_type, object_id)` serves them; a page's subjects are one UNION ALL of the same
selects restricted to the page's ids. A page is therefore a fixed number of queries, whatever it
holds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import LazyString
from sqlalchemy import ColumnElement, Integer, Select, String, and_, cast, literal, null, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.models import Account
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import (
    BallotMeeting,
    BranchRating,
    BranchRound,
    EvidenceFile,
    QuarterlyReview,
)
from fivestar.i18n import _, _l
from fivestar.inspection.models import SpotCheck
from fivestar.member_rounds.models import (
    Evaluation,
    MemberRound,
    Mentorship,
    Objection,
    Rectification,
    RoundBranch,
    TalkRecord,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member

PAGE_SIZE = 30

# --- words for people ------------------------------------------------------------------------------

FAMILIES: dict[str, LazyString] = {
    "org": _l("组织"),
    "member": _l("党员信息"),
    "account": _l("账号与角色"),
    "rules": _l("评定规则"),
    "member_round": _l("党员评定（全区）"),
    "round_branch": _l("党员评定（支部步骤）"),
    "evaluation": _l("党员评定（个人）"),
    "objection": _l("公示异议"),
    "branch_round": _l("支部评定（全区）"),
    "branch_rating": _l("支部星级评定"),
    "ballot_meeting": _l("议星测评"),
    "evidence": _l("佐证材料"),
    "quarterly_review": _l("一季一小评"),
    "spot_check": _l("随机抽查"),
    "import": _l("导入"),
    "report": _l("报表"),
    "export_target": _l("上报上级设置"),
    "export_delivery": _l("上报上级发送"),
    "webhook": _l("群机器人"),
    "outbox": _l("消息发送"),
    "tenant": _l("单位"),
    "demo": _l("演示"),
}

ACTIONS: dict[str, LazyString] = {
    "org.create": _l("新建组织"),
    "org.update": _l("修改组织"),
    "org.move": _l("调整组织隶属"),
    "org.deactivate": _l("停用组织"),
    "org.reactivate": _l("恢复组织"),
    "member.create": _l("新增党员"),
    "member.update": _l("修改党员信息"),
    "member.move": _l("党员调动支部"),
    "member.transfer_out": _l("党员转出"),
    "member.reactivate": _l("党员恢复在册"),
    "account.create": _l("新建账号"),
    "account.invite": _l("邀请账号"),
    "account.update": _l("修改账号"),
    "account.deactivate": _l("停用账号"),
    "account.reactivate": _l("恢复账号"),
    "account.role_grant": _l("授予角色"),
    "account.role_revoke": _l("撤销角色"),
    "account.password_set": _l("设置密码"),
    "account.password_change": _l("修改密码"),
    "account.password_reset": _l("重置密码"),
    "rules.version": _l("发布评定规则新版本"),
    "member_round.open": _l("开启党员评定"),
    "member_round.close": _l("结束党员评定"),
    "member_round.extend_deadline": _l("延长截止时间"),
    "member_round.score": _l("计算得分"),
    "member_round.member_not_added": _l("党员未加入评定"),
    "round_branch.meeting": _l("记录党群联评会议"),
    "round_branch.start_joint": _l("开始党群联评"),
    "round_branch.start_review": _l("开始支部审评"),
    "round_branch.submit_notice": _l("审评结果进入公示"),
    "round_branch.return": _l("工委退回支部结果"),
    "round_branch.finalise": _l("支部上报结果"),
    "evaluation.self_save_draft": _l("保存个人自评"),
    "evaluation.self_submit": _l("提交个人自评"),
    "evaluation.self_enter_for_member": _l("代党员录入自评"),
    "evaluation.self_return": _l("退回个人自评"),
    "evaluation.joint": _l("党群联评评分"),
    "evaluation.review": _l("支部审评评分"),
    "evaluation.adjust": _l("公示后调整结果"),
    "evaluation.join": _l("党员加入评定"),
    "evaluation.move": _l("评定随党员调动"),
    "evaluation.reactivate": _l("恢复评定"),
    "evaluation.withdraw": _l("党员退出评定"),
    "evaluation.mentors": _l("安排帮扶指导员"),
    "evaluation.talk": _l("记录谈话教育"),
    "evaluation.rectification": _l("限期整改"),
    "evaluation.rectification_result": _l("整改结果"),
    "objection.file": _l("提出公示异议"),
    "objection.answer": _l("答复公示异议"),
    "branch_round.open": _l("开启支部评定"),
    "branch_round.extend_deadline": _l("延长截止时间"),
    "branch_round.finalise": _l("确定并公布星级"),
    "branch_round.results_notified": _l("通知评定结果"),
    "branch_rating.save_recommendation": _l("保存荐星"),
    "branch_rating.submit_recommendation": _l("提交荐星"),
    "branch_rating.opinion": _l("保存支部意见"),
    "branch_rating.submit_opinion": _l("上报支部意见"),
    "branch_rating.forward": _l("机关党委报送工委"),
    "branch_rating.org_return": _l("机关党委退回"),
    "branch_rating.decide": _l("定星"),
    "ballot_meeting.setup": _l("设置议星会议"),
    "ballot_meeting.issue_slips": _l("生成测评票"),
    "ballot_meeting.reissue": _l("重新生成测评票"),
    "ballot_meeting.close": _l("结束投票"),
    "ballot_meeting.tally": _l("录入纸质票"),
    "evidence.upload": _l("上传佐证材料"),
    "evidence.delete": _l("删除佐证材料"),
    "quarterly_review.submit": _l("提交季度小评"),
    "quarterly_review.revise": _l("修改季度小评"),
    "quarterly_review.comment": _l("工委点评季度小评"),
    "spot_check.draw": _l("随机抽查"),
    "tenant.create": _l("开通单位"),
    "import.run": _l("导入名册"),
    "report.request": _l("生成报表"),
    "export_target.create": _l("新建上报目标"),
    "export_target.update": _l("修改上报目标"),
    "export_target.delete": _l("删除上报目标"),
    "export_target.activate": _l("启用上报目标"),
    "export_target.deactivate": _l("停用上报目标"),
    "export_delivery.resend": _l("重新上报"),
    "webhook.create": _l("新建群机器人"),
    "webhook.update": _l("修改群机器人"),
    "webhook.delete": _l("删除群机器人"),
    "outbox.resend": _l("重新发送消息"),
    "demo.self_assessments": _l("演示数据：个人自评"),
    "demo.branch_ratings": _l("演示数据：支部评定"),
    "demo.clock_advance": _l("演示时钟前移"),
}

FIELDS: dict[str, LazyString] = {
    "name": _l("名称"),
    "level": _l("星级"),
    "total": _l("总分"),
    "step": _l("步骤"),
    "state": _l("状态"),
    "status": _l("状态"),
    "reason": _l("理由"),
    "branch_id": _l("支部"),
    "member_id": _l("党员"),
    "round_id": _l("轮次"),
    "scores": _l("分数"),
    "proposed_level": _l("荐星星级"),
    "proposed_total": _l("荐星总分"),
    "opinion_level": _l("支部意见星级"),
    "decided_level": _l("定星星级"),
    "decision_reason": _l("定星理由"),
    "answer": _l("答复"),
    "disqualifier": _l("不予评星情形"),
    "bonus": _l("加分"),
    "self_due_at": _l("自评截止"),
    "joint_due_at": _l("联评截止"),
    "review_due_at": _l("审评截止"),
    "report_due_at": _l("上报截止"),
    "self_report_due_at": _l("自评上报截止"),
    "committee_due_at": _l("工委反馈截止"),
}

ACTOR_KINDS: dict[str, LazyString] = {
    "system": _l("系统"),
    "cli": _l("命令行"),
    "public": _l("公开页面"),
    "operator": _l("平台运营方"),
}


def action_label(action: str) -> str:
    found = ACTIONS.get(action)
    return str(found) if found is not None else action


def family_label(action: str) -> str:
    found = FAMILIES.get(action.split(".", 1)[0])
    return str(found) if found is not None else action.split(".", 1)[0]


# --- what an event is about ------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What one object type hangs under: a select of (oid, org, member, member round, branch round)."""

    object_type: str
    build: Callable[[int], Select[Any]]
    has: frozenset[str]  # which of org_id, member_id, member_round_id, branch_round_id it fills


_ORG = frozenset({"org_id"})
_MEMBER = frozenset({"member_id"})
_MROUND = frozenset({"member_round_id"})
_BROUND = frozenset({"branch_round_id"})


def _cols(
    oid: Any, org_id: Any, member_id: Any, member_round_id: Any, branch_round_id: Any
) -> list[Any]:
    return [
        cast(oid, String).label("oid"),
        (org_id if org_id is not None else cast(null(), Integer)).label("org_id"),
        (member_id if member_id is not None else cast(null(), Integer)).label("member_id"),
        (member_round_id if member_round_id is not None else cast(null(), Integer)).label("member_round_id"),
        (branch_round_id if branch_round_id is not None else cast(null(), Integer)).label("branch_round_id"),
    ]


def _organisations(t: int) -> Select[Any]:
    return select(*_cols(Organisation.id, Organisation.id, None, None, None)).where(Organisation.tenant_id == t)


def _members(t: int) -> Select[Any]:
    return select(*_cols(Member.id, Member.branch_id, Member.id, None, None)).where(Member.tenant_id == t)


def _accounts(t: int) -> Select[Any]:
    person = aliased(Member)
    return (
        select(*_cols(Account.id, person.branch_id, Account.member_id, None, None))
        .outerjoin(person, and_(person.id == Account.member_id, person.tenant_id == Account.tenant_id))
        .where(Account.tenant_id == t)
    )


def _member_rounds(t: int) -> Select[Any]:
    return select(*_cols(MemberRound.id, None, None, MemberRound.id, None)).where(MemberRound.tenant_id == t)


def _round_branches(t: int) -> Select[Any]:
    return select(*_cols(RoundBranch.id, RoundBranch.branch_id, None, RoundBranch.round_id, None)).where(
        RoundBranch.tenant_id == t
    )


def _evaluations(t: int) -> Select[Any]:
    return select(
        *_cols(Evaluation.id, Evaluation.branch_id, Evaluation.member_id, Evaluation.round_id, None)
    ).where(Evaluation.tenant_id == t)


def _objections(t: int) -> Select[Any]:
    person = aliased(Evaluation)
    return (
        select(*_cols(Objection.id, RoundBranch.branch_id, person.member_id, RoundBranch.round_id, None))
        .join(RoundBranch, RoundBranch.id == Objection.round_branch_id)
        .outerjoin(person, person.id == Objection.evaluation_id)
        .where(Objection.tenant_id == t)
    )


def _under_evaluation(model: Any) -> Callable[[int], Select[Any]]:
    def build(t: int) -> Select[Any]:
        return (
            select(*_cols(model.id, Evaluation.branch_id, Evaluation.member_id, Evaluation.round_id, None))
            .join(Evaluation, Evaluation.id == model.evaluation_id)
            .where(model.tenant_id == t)
        )

    return build


def _branch_rounds(t: int) -> Select[Any]:
    return select(*_cols(BranchRound.id, None, None, None, BranchRound.id)).where(BranchRound.tenant_id == t)


def _branch_ratings(t: int) -> Select[Any]:
    return select(*_cols(BranchRating.id, BranchRating.branch_id, None, None, BranchRating.round_id)).where(
        BranchRating.tenant_id == t
    )


def _under_rating(model: Any) -> Callable[[int], Select[Any]]:
    def build(t: int) -> Select[Any]:
        return (
            select(*_cols(model.id, BranchRating.branch_id, None, None, BranchRating.round_id))
            .join(BranchRating, BranchRating.id == model.rating_id)
            .where(model.tenant_id == t)
        )

    return build


def _quarterly(t: int) -> Select[Any]:
    return select(*_cols(QuarterlyReview.id, QuarterlyReview.branch_id, None, None, None)).where(
        QuarterlyReview.tenant_id == t
    )


def _spot_checks(t: int) -> Select[Any]:
    return select(
        *_cols(SpotCheck.id, None, None, SpotCheck.member_round_id, SpotCheck.branch_round_id)
    ).where(SpotCheck.tenant_id == t)


SUBJECTS: tuple[Subject, ...] = (
    Subject(Organisation.__tablename__, _organisations, _ORG),
    Subject(Member.__tablename__, _members, _ORG | _MEMBER),
    Subject(Account.__tablename__, _accounts, _ORG | _MEMBER),
    Subject(MemberRound.__tablename__, _member_rounds, _MROUND),
    Subject(RoundBranch.__tablename__, _round_branches, _ORG | _MROUND),
    Subject(Evaluation.__tablename__, _evaluations, _ORG | _MEMBER | _MROUND),
    Subject(Objection.__tablename__, _objections, _ORG | _MEMBER | _MROUND),
    Subject(TalkRecord.__tablename__, _under_evaluation(TalkRecord), _ORG | _MEMBER | _MROUND),
    Subject(Rectification.__tablename__, _under_evaluation(Rectification), _ORG | _MEMBER | _MROUND),
    Subject(Mentorship.__tablename__, _under_evaluation(Mentorship), _ORG | _MEMBER | _MROUND),
    Subject(BranchRound.__tablename__, _branch_rounds, _BROUND),
    Subject(BranchRating.__tablename__, _branch_ratings, _ORG | _BROUND),
    Subject(BallotMeeting.__tablename__, _under_rating(BallotMeeting), _ORG | _BROUND),
    Subject(EvidenceFile.__tablename__, _under_rating(EvidenceFile), _ORG | _BROUND),
    Subject(QuarterlyReview.__tablename__, _quarterly, _ORG),
    Subject(SpotCheck.__tablename__, _spot_checks, _MROUND | _BROUND),
)


def _about(tenant_id: int, column: str, test: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """Events whose object's `column` passes `test`: `object_type = T AND object_id IN (…)` for
    each type that has the column."""
    clauses = []
    for subject in SUBJECTS:
        if column not in subject.has:
            continue
        sub = subject.build(tenant_id).subquery()
        clauses.append(
            and_(
                AuditEvent.object_type == subject.object_type,
                AuditEvent.object_id.in_(select(sub.c.oid).where(test(sub.c[column]))),
            )
        )
    return or_(*clauses) if clauses else literal(False)


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
        clauses.append(_about(tenant_id, "member_id", lambda col: col == wanted))
    if filters.org_path is not None:
        path = filters.org_path
        orgs = select(Organisation.id).where(
            Organisation.tenant_id == tenant_id, Organisation.path.startswith(path, autoescape=True)
        )
        clauses.append(_about(tenant_id, "org_id", lambda col: col.in_(orgs)))
    if filters.member_round_id is not None:
        mround = filters.member_round_id
        clauses.append(_about(tenant_id, "member_round_id", lambda col: col == mround))
    if filters.branch_round_id is not None:
        bround = filters.branch_round_id
        clauses.append(_about(tenant_id, "branch_round_id", lambda col: col == bround))
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
