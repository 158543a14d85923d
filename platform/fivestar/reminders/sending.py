"""Send one reminder row: find who still owes the step, write their messages to the outbox.

Runs as the row's tenant inside the scheduled-items runner's transaction; the row is marked done in
the same transaction, and every message's dedupe key names the reminder (round, step, deadline,
lead time) and the recipient, so a rerun — a retry, a second beat — writes nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.errors import ServiceError
from fivestar.member_rounds.honour import period_label
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.notify.services import webhooks_for
from fivestar.orgs.models import Organisation
from fivestar.outbox.models import Channel
from fivestar.outbox.services import Outgoing, normalise_recipient, queue_many, render_email
from fivestar.reminders import obligations
from fivestar.reminders.obligations import Owing
from fivestar.reminders.planning import (
    BRANCH_STEPS,
    MEMBER_STEPS,
    NOTICE_STEP,
    PLAN_ITEM_STEP,
    RECTIFY_STEP,
    ReminderKey,
    local_day,
)
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

STEP_LABELS: dict[str, str] = {
    "self": "个人自评",
    "joint": "党群联评",
    "review": "支部审评",
    "report": "上报名单",
    "notice": "公示期满",
    "rectify": "限期整改",
    "self_report": "党支部自评上报",
    "committee": "工委定星反馈",
    "item": "整改提升计划事项",
}


log = logging.getLogger(__name__)

#: Writes the body for one person given the names of the organisations their duties are about.
Detail = Callable[[Owing, list[str]], str]


class ReminderSkipped(Exception):  # noqa: N818 - not an error: the reminder is no longer needed
    """The reminder is not needed any more (round closed, deadline moved); finish without sending."""


def send_reminder(session: Session, tenant: Tenant, key_text: str, *, base_url: str) -> str:
    """Queue the reminder's messages; returns the outcome for the administrator (Chinese)."""
    key = ReminderKey.parse(key_text)
    if key.round_kind == "m":
        subject_round, owing, detail = _member(session, tenant, key)
    elif key.round_kind == "p":
        subject_round, owing, detail = _plan_items(session, key)
    else:
        subject_round, owing, detail = _branch(session, tenant, key)
    label = STEP_LABELS[key.step]
    when = _day(key)
    # 五星争创 in every subject: DingTalk robots guarded by a keyword drop messages without it.
    if key.step == NOTICE_STEP:
        subject = f"【五星争创·提醒】{subject_round}公示已于 {when} 期满，请上报名单"
        what = f"{label}（{when}）"
    elif key.step in (RECTIFY_STEP, PLAN_ITEM_STEP):
        lead = "今天到期" if key.lead == 0 else f"还有 {key.lead} 天"
        what_due = "限期整改" if key.step == RECTIFY_STEP else "的事项"
        subject = f"【五星争创·提醒】{subject_round}{what_due}将于 {when} 到期（{lead}）"
        what = f"{label}（{when}到期，提前 {key.lead} 天）"
    else:
        lead = "今天截止" if key.lead == 0 else f"还有 {key.lead} 天"
        subject = f"【五星争创·提醒】{subject_round}{label}将于 {when} 截止（{lead}）"
        what = f"{label}（{when}截止，提前 {key.lead} 天）"
    if not owing:
        return f"{what}：已无人需要提醒"
    names = _organisation_names(session, {o.organisation_id for o in owing if o.organisation_id is not None})
    link = f"/t/{tenant.slug}/"
    messages: list[Outgoing] = []
    by_account: dict[int, list[Owing]] = defaultdict(list)
    for duty in owing:
        by_account[duty.account_id].append(duty)
    for account_id, duties in by_account.items():
        person = duties[0]
        text = detail(person, [names.get(d.organisation_id or 0, "") for d in duties])
        body = f"{person.display_name}，您好：\n\n{text}\n\n{tenant.name}"
        messages.append(Outgoing(Channel.INAPP, person.display_name, subject, body,
                                 f"reminder:{key}:a:{account_id}", account_id=account_id, link=link))
        if person.email:
            try:
                address = normalise_recipient(person.email)
            except ServiceError:
                log.warning("account %s has an invalid e-mail address; reminded in the inbox only", account_id)
                address = None
        else:
            address = None
        if address:
            email_text, email_html = render_email("reminder", {
                "recipient_name": person.display_name, "tenant_name": tenant.name, "subject": subject,
                "text": text, "link": base_url.rstrip("/") + link,
            })
            messages.append(Outgoing(Channel.EMAIL, address, subject, email_text,
                                     f"reminder:{key}:e:{account_id}", body_html=email_html))
    messages.extend(_robot_messages(session, key, subject, owing, names))
    added = queue_many(session, tenant.id, messages)
    people = len(by_account)
    return f"{what}：提醒 {people} 人，新写入 {added} 条消息"


def _member(session: Session, tenant: Tenant, key: ReminderKey) -> tuple[str, list[Owing], Detail]:
    member_round = session.get(MemberRound, key.round_id)
    if member_round is None:
        raise ReminderSkipped("评定已删除，不再提醒")
    round_name = f"{period_label(member_round.period_key)}党员星级评定"
    if key.step == RECTIFY_STEP:  # after the results: whatever the round's state
        return round_name, *_rectifications(session, round_name, member_round.id, key)
    if member_round.state is not RoundState.OPEN:
        raise ReminderSkipped("评定已结束，不再提醒")
    if key.step == NOTICE_STEP:
        return round_name, *_ended_notices(session, tenant, round_name, member_round.id, key)
    due_at = getattr(member_round, MEMBER_STEPS[key.step])
    if due_at is None or local_day(due_at, tenant.timezone) != key.deadline:
        raise ReminderSkipped("截止日期已变更，按新日期提醒")
    label = STEP_LABELS[key.step]
    if key.step == "self":
        owing = obligations.members_without_self_assessment(session, member_round.id)

        def detail(person: Owing, orgs: list[str]) -> str:
            return f"{round_name}的{label}将于 {_day(key)} 截止，您的个人自评尚未提交，请登录系统及时完成。"
    else:
        owing = obligations.secretaries_of_branches_at(session, member_round.id,
                                                       obligations.MEMBER_STEPS_OWING[key.step])

        def detail(person: Owing, orgs: list[str]) -> str:
            return f"{round_name}的{label}将于 {_day(key)} 截止，{'、'.join(orgs)}尚未完成{label}，请及时组织。"
    return round_name, owing, detail


def _ended_notices(session: Session, tenant: Tenant, round_name: str, round_id: int,
                   key: ReminderKey) -> tuple[list[Owing], Detail]:
    """Branches still in public notice whose notice ended on the key's day: they may report now."""
    zone = ZoneInfo(tenant.timezone)
    day_start = dt.datetime.combine(key.deadline, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)
    after = day_start - dt.timedelta(microseconds=1)
    owing = obligations.secretaries_of_ended_notices(session, round_id, after, clock.end_of_day(key.deadline,
                                                                                                  tenant.timezone))

    def detail(person: Owing, orgs: list[str]) -> str:
        return (f"{round_name}中，{'、'.join(orgs)}的公示已于 {_day(key)} 期满。如收到异议，请先答复；"
                "然后请及时上报五星党员名单。")

    return owing, detail


def _rectifications(session: Session, round_name: str, round_id: int, key: ReminderKey) -> tuple[list[Owing], Detail]:
    """Secretaries of the branches with members whose rectification deadline is the key's day."""
    owing, members = obligations.secretaries_of_rectifications(session, round_id, key.deadline)
    by_name: dict[str, int] = {}
    names = _organisation_names(session, set(members))
    for branch_id, count in members.items():
        by_name[names.get(branch_id, "")] = count

    def detail(person: Owing, orgs: list[str]) -> str:
        where = "、".join(f"{org}（{by_name.get(org, 0)} 名党员）" for org in orgs)
        return (f"{round_name}中被限期整改的党员，整改期限为 {_day(key)}：{where}。"
                "请及时了解整改情况，在系统中记录结果，按规定提出处理意见。")

    return owing, detail


def _plan_items(session: Session, key: ReminderKey) -> tuple[str, list[Owing], Detail]:
    """Secretaries of the branches whose published plan has items due on the key's day, not done."""
    branch_round = session.get(BranchRound, key.round_id)
    if branch_round is None:
        raise ReminderSkipped("评定已删除，不再提醒")
    plan_name = f"{branch_round.year + 1} 年整改提升计划"
    owing, items = obligations.secretaries_of_plan_items(session, branch_round.id, key.deadline)
    names = _organisation_names(session, set(items))
    by_name = {names.get(branch_id, ""): count for branch_id, count in items.items()}

    def detail(person: Owing, orgs: list[str]) -> str:
        where = "、".join(f"{org}（{by_name.get(org, 0)} 项）" for org in orgs)
        return (f"{plan_name}中完成时限为 {_day(key)} 的整改事项尚未完成：{where}。"
                "请抓紧推进，完成后在系统中更新进度并上传证明材料。")

    return plan_name, owing, detail


def _branch(session: Session, tenant: Tenant, key: ReminderKey) -> tuple[str, list[Owing], Detail]:
    branch_round = session.get(BranchRound, key.round_id)
    if branch_round is None or branch_round.state is not BranchRoundState.OPEN:
        raise ReminderSkipped("评定已结束，不再提醒")
    due_at = getattr(branch_round, BRANCH_STEPS[key.step])
    if due_at is None or local_day(due_at, tenant.timezone) != key.deadline:
        raise ReminderSkipped("截止日期已变更，按新日期提醒")
    round_name = f"{branch_round.year} 年度党支部星级评定"
    label = STEP_LABELS[key.step]
    if key.step == "self_report":
        owing = obligations.branch_self_report_owing(session, branch_round.id)

        def detail(person: Owing, orgs: list[str]) -> str:
            return (f"{round_name}的{label}将于 {_day(key)} 截止，{'、'.join(orgs)}尚未完成荐星、议星或审核报送，"
                    "请及时办理。")
    else:
        owing, undecided = obligations.committee_if_undecided(session, branch_round.id)

        def detail(person: Owing, orgs: list[str]) -> str:
            return f"{round_name}的{label}将于 {_day(key)} 截止，还有 {undecided} 个党支部尚未定星。"
    return round_name, owing, detail


def _day(key: ReminderKey) -> str:
    return f"{key.deadline.month}月{key.deadline.day}日"


def _organisation_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))).all())


def _robot_messages(session: Session, key: ReminderKey, subject: str, owing: Iterable[Owing],
                    names: dict[int, str]) -> list[Outgoing]:
    """One post per group robot that covers any organisation involved (or the whole district)."""
    duties = list(owing)
    involved = {d.organisation_id for d in duties if d.organisation_id is not None}
    ancestors = _with_ancestors(session, involved)
    robots = webhooks_for(session, set().union(*ancestors.values()) if ancestors else set())
    if not robots:
        return []
    people: dict[int | None, set[int]] = defaultdict(set)
    for duty in duties:
        people[duty.organisation_id].add(duty.account_id)
    messages = []
    for robot in robots:
        covered = involved if robot.organisation_id is None else {
            org for org in involved if robot.organisation_id in ancestors.get(org, {org})}
        if robot.organisation_id is not None and not covered:
            continue
        ordered = sorted(covered, key=lambda org: names.get(org, ""))
        lines = [f"- {names.get(org, '')}（{len(people[org])} 人）" for org in ordered]
        if None in people and robot.organisation_id is None:
            lines.append(f"- 工委（{len(people[None])} 人）")
        text = "尚未完成：\n" + "\n".join(lines) if lines else "请相关同志及时办理。"
        messages.append(Outgoing(Channel.WEBHOOK, robot.name, subject, text, f"reminder:{key}:w:{robot.id}",
                                 webhook_id=robot.id))
    return messages


def _with_ancestors(session: Session, ids: set[int]) -> dict[int, set[int]]:
    """Each organisation with itself and every organisation above it (from the materialised path)."""
    if not ids:
        return {}
    paths = dict(session.execute(select(Organisation.id, Organisation.path).where(Organisation.id.in_(ids))).all())
    return {org: {int(part) for part in str(path).strip("/").split("/") if part} | {org} for org, path in paths.items()}
