"""Reminders before each deadline, to whoever still owes the step — once per recipient and lead time.

The sample rules remind 3 days and 1 day before every deadline at 09:00. The 2026Q3 member round
opens on 8 October 2026 (after National Day); 个人自评 is due at the end of 14 October, so its
reminders fall on 11 October and 13 October at 09:00 Beijing time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fivestar.enums import Role
from fivestar.inbox.models import Notice
from fivestar.member_rounds.models import BranchStep, Evaluation, MemberRound, RoundBranch, SelfState
from fivestar.outbox.delivery import deliver_due
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.scheduling.runner import run_due
from fivestar.scheduling.views import describe_items
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.integration.test_outbox_delivery import Mailbox, mail_settings, smtp  # noqa: F401 - fixture

UTC = dt.UTC
OPENED = dt.datetime(2026, 10, 8, 1, 0, tzinfo=UTC)  # 09:00 Beijing
SELF_3 = dt.datetime(2026, 10, 11, 1, 0, tzinfo=UTC)
SELF_1 = dt.datetime(2026, 10, 13, 1, 0, tzinfo=UTC)


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def district(session: Session, create_tenant: Any, create_org: Any, create_member: Any,
             create_account: Any) -> dict[str, Any]:
    from fivestar.member_rounds.opening import open_round

    tenant = create_tenant(slug="remind")
    first = create_org(tenant, kind="branch", name="第一党支部")
    second = create_org(tenant, kind="branch", name="第二党支部")
    people = {}
    for name, branch, email in (("甲", first, "jia@example.org"), ("乙", first, None),
                                ("丙", first, "bing@example.org"), ("丁", second, "ding@example.org")):
        member = create_member(tenant, branch, name=f"党员{name}")
        people[name] = create_account(tenant, roles=[(Role.MEMBER, None)], member=member, email=email,
                                      username=f"m-{name}")
    secretary = create_account(tenant, roles=[(Role.BRANCH_SECRETARY, first)], username="shuji",
                               email="shuji@example.org", display_name="一支书记")
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="gongwei", display_name="工委干事")
    with clock.frozen(OPENED), tenant_context(tenant.id):
        member_round = open_round(session, tenant, period_key="2026Q3").round
        session.flush()
        # 丙 has already submitted: no reminder for 丙.
        session.execute(update(Evaluation).where(Evaluation.member_id == people["丙"].member_id)
                        .values(self_state=SelfState.SUBMITTED))
        # The second branch is already at review: its secretary owes nothing for the joint step.
        session.execute(update(RoundBranch).where(RoundBranch.branch_id == second.id).values(step=BranchStep.REVIEW))
        session.flush()
    return {"tenant": tenant, "round": member_round, "people": people, "secretary": secretary, "admin": admin,
            "first": first, "second": second}


def sweep(factory: Callable[[], Session], at: dt.datetime) -> Any:
    with clock.frozen(at):
        return run_due(factory, now=at, base_url="https://fivestar.example.org")


def outbox(session: Session, tenant: Any) -> list[OutboxMessage]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_reminders_are_planned_per_step_and_lead_time(
    session: Session, factory: Callable[[], Session], district: dict[str, Any]
) -> None:
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    with tenant_context(district["tenant"].id):
        rows = {row.key: row.due_at for row in session.scalars(select(DueItem).where(DueItem.kind == DueKind.REMINDER))}
    rid = district["round"].id
    assert rows[f"m{rid}:self:20261014:3"] == SELF_3
    assert rows[f"m{rid}:self:20261014:1"] == SELF_1
    steps = {key.split(":")[1] for key in rows}
    assert steps == {"self", "joint", "review", "report"}
    assert len(rows) == 8  # four deadlines, two lead times each


def test_a_reminder_goes_to_whoever_still_owes_the_step_once(
    session: Session, factory: Callable[[], Session], district: dict[str, Any]
) -> None:
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    assert outbox(session, district["tenant"]) == []
    report = sweep(factory, SELF_3)
    assert report.done >= 1
    messages = outbox(session, district["tenant"])
    inapp = sorted(m.recipient for m in messages if m.channel is Channel.INAPP)
    emails = sorted(m.recipient for m in messages if m.channel is Channel.EMAIL)
    assert inapp == ["党员乙", "党员丁", "党员甲"] or sorted(inapp) == sorted(["党员甲", "党员乙", "党员丁"])
    assert "党员丙" not in inapp  # submitted
    assert emails == ["ding@example.org", "jia@example.org"]  # 乙 has no address: inbox only
    subject = messages[0].subject
    assert "个人自评" in subject and "10月14日" in subject and "还有 3 天" in subject
    with tenant_context(district["tenant"].id):
        item = session.scalar(select(DueItem).where(DueItem.key.like("%:self:20261014:3")))
    assert item is not None and item.state is DueState.DONE and "提醒 3 人" in (item.outcome or "")
    assert "新写入 5 条消息" in (item.outcome or "")  # 3 notices + 2 e-mails (counted on both databases)

    # A second beat, a redelivered message: nothing new.
    with tenant_context(district["tenant"].id):
        session.execute(update(DueItem).where(DueItem.id == item.id).values(state=DueState.PENDING))
        session.flush()
    sweep(factory, SELF_3 + dt.timedelta(minutes=1))
    assert len(outbox(session, district["tenant"])) == len(messages)

    # The 1-day reminder is a reminder of its own (its own dedupe keys); 甲 submits in between.
    with tenant_context(district["tenant"].id):
        session.execute(update(Evaluation).where(Evaluation.member_id == district["people"]["甲"].member_id)
                        .values(self_state=SelfState.SUBMITTED))
        session.flush()
    sweep(factory, SELF_1)
    later = [m for m in outbox(session, district["tenant"]) if m.id not in {x.id for x in messages}]
    assert sorted(m.recipient for m in later if m.channel is Channel.INAPP) == sorted(["党员乙", "党员丁"])


def test_secretaries_are_reminded_of_their_branch_steps(
    session: Session, factory: Callable[[], Session], district: dict[str, Any]
) -> None:
    with tenant_context(district["tenant"].id):
        joint_due = session.scalar(select(MemberRound.joint_due_at).where(MemberRound.id == district["round"].id))
    assert joint_due is not None
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    with tenant_context(district["tenant"].id):
        joint = session.scalar(select(DueItem).where(DueItem.key.like("%:joint:%:3")))
    assert joint is not None
    sweep(factory, joint.due_at)
    messages = [m for m in outbox(session, district["tenant"]) if "党群联评" in m.subject]
    assert sorted(m.recipient for m in messages) == ["shuji@example.org", "一支书记"]
    notice = next(m for m in messages if m.channel is Channel.INAPP)
    assert "第一党支部尚未完成党群联评" in notice.body_text and "第二党支部" not in notice.body_text


def test_an_extended_deadline_drops_the_old_reminders_and_plans_new_ones(
    session: Session, factory: Callable[[], Session], district: dict[str, Any]
) -> None:
    from fivestar.member_rounds.closing import extend_deadline

    sweep(factory, OPENED + dt.timedelta(minutes=5))
    with clock.frozen(OPENED + dt.timedelta(hours=1)), tenant_context(district["tenant"].id):
        member_round = session.get(MemberRound, district["round"].id)
        assert member_round is not None
        extend_deadline(session, member_round, step="self", new_day=dt.date(2026, 10, 16), reason="系统维护")
        session.flush()
    sweep(factory, OPENED + dt.timedelta(hours=2))  # plans the new date's reminders
    sweep(factory, SELF_3)  # the old date's 3-day reminder is due: it finds the date changed
    with tenant_context(district["tenant"].id):
        rows = {row.key.split(":", 1)[1]: row for row in session.scalars(select(DueItem).where(
            DueItem.kind == DueKind.REMINDER, DueItem.key.like("%:self:%")))}
    old = rows["self:20261014:3"]
    assert old.state is DueState.DONE and "截止日期已变更" in (old.outcome or "")
    assert rows["self:20261016:3"].due_at == dt.datetime(2026, 10, 13, 1, 0, tzinfo=UTC)
    assert outbox(session, district["tenant"]) == []


def test_delivery_fills_the_inbox_and_mails_once(
    session: Session, factory: Callable[[], Session], district: dict[str, Any], settings: Any,
    smtp: tuple[Mailbox, int],  # noqa: F811 - the fixture
) -> None:
    mailbox, port = smtp
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    sweep(factory, SELF_3)
    mail = mail_settings(settings, port)
    # Outbox times are real time (delivery does not follow a demo's fast clock): deliver now.
    first = deliver_due(factory, mail)
    second = deliver_due(factory, mail)
    assert first.sent == 5 and second.claimed == 0  # 3 notices + 2 e-mails, once
    assert sorted(str(m["To"]) for m in mailbox.received) == ["ding@example.org", "jia@example.org"]
    body = mailbox.received[0].get_body(preferencelist=("plain",))
    assert body is not None and "https://fivestar.example.org/t/remind/" in body.get_content()
    with tenant_context(district["tenant"].id):
        notices = list(session.scalars(select(Notice)))
        assert {n.account_id for n in notices} == {district["people"][k].id for k in ("甲", "乙", "丁")}
        assert all(n.link == "/t/remind/" and n.read_at is None for n in notices)
        states = set(session.scalars(select(OutboxMessage.state)))
    assert states == {DeliveryState.SENT}


def test_the_inbox_page_shows_reminders_to_their_owner_only(
    session: Session, factory: Callable[[], Session], district: dict[str, Any], settings: Any,
    smtp: tuple[Mailbox, int],  # noqa: F811 - the fixture
    client: FlaskClient, login: Any,
) -> None:
    _mailbox, port = smtp
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    sweep(factory, SELF_3)
    deliver_due(factory, mail_settings(settings, port))
    with tenant_context(district["tenant"].id):
        mine = session.scalar(select(Notice).where(Notice.account_id == district["people"]["甲"].id))
        theirs = session.scalar(select(Notice).where(Notice.account_id == district["people"]["乙"].id))
    assert mine is not None and theirs is not None
    login(district["tenant"], district["people"]["甲"])
    home = client.get("/t/remind/").get_data(as_text=True)
    assert "1 条未读消息" in home
    page = client.get("/t/remind/inbox/").get_data(as_text=True)
    assert "个人自评将于" in page
    assert client.get(f"/t/remind/inbox/{theirs.id}").status_code == 404
    opened = client.get(f"/t/remind/inbox/{mine.id}")
    assert opened.status_code == 200 and "您的个人自评尚未提交" in opened.get_data(as_text=True)
    session.expire_all()
    with tenant_context(district["tenant"].id):
        assert session.get(Notice, mine.id).read_at is not None  # type: ignore[union-attr]
        assert session.get(Notice, theirs.id).read_at is None  # type: ignore[union-attr]


def test_the_administrator_sees_deliveries_and_resends_a_failed_one(
    session: Session, factory: Callable[[], Session], district: dict[str, Any], client: FlaskClient, login: Any,
) -> None:
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    sweep(factory, SELF_3)
    with tenant_context(district["tenant"].id):
        failed = session.scalar(select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL).limit(1))
        assert failed is not None
        failed.state, failed.attempts, failed.last_error = DeliveryState.FAILED, 8, "SMTP 550: mailbox unavailable"
        sent = session.scalar(select(OutboxMessage).where(OutboxMessage.channel == Channel.INAPP).limit(1))
        assert sent is not None
        sent.state = DeliveryState.SENT
        session.flush()
        failed_id, sent_id = failed.id, sent.id
    login(district["tenant"], district["people"]["甲"])
    assert client.get("/t/remind/accounts/outbox").status_code == 403
    assert client.get("/t/remind/schedule/").status_code == 403
    client.post("/t/remind/logout")
    login(district["tenant"], district["admin"])
    page = client.get("/t/remind/accounts/outbox?state=failed").get_data(as_text=True)
    assert "SMTP 550" in page and "重新发送" in page and "电子邮件" in page
    schedule = client.get("/t/remind/schedule/").get_data(as_text=True)
    assert "提醒 3 人" in schedule
    # Each row says what it is about in words; the key is there for support staff.
    assert "2026年第三季度党员星级评定 · 个人自评 · 10月14日截止 · 提前 3 天" in schedule
    assert "2026年第三季度党员星级评定 · 个人自评 · 10月14日截止 · 提前 1 天" in schedule
    assert f"m{district['round'].id}:self:20261014:3" in schedule
    everything = client.get("/t/remind/accounts/outbox").get_data(as_text=True)
    assert "站内消息" in everything  # every channel, not only e-mail
    assert client.post(f"/t/remind/accounts/outbox/{sent_id}/resend").status_code == 400  # only failed ones
    assert client.post(f"/t/remind/accounts/outbox/{failed_id}/resend").status_code == 302
    session.expire_all()
    with tenant_context(district["tenant"].id):
        again = session.get(OutboxMessage, failed_id)
        assert again is not None and again.state is DeliveryState.PENDING and again.attempts == 0
        count = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 5


def test_group_robots_hear_of_the_reminders_of_their_organisations(
    session: Session, factory: Callable[[], Session], district: dict[str, Any], settings: Any,
    smtp: tuple[Mailbox, int],  # noqa: F811 - the fixture
) -> None:
    """A district-wide WeCom robot and a DingTalk robot on the second branch: each gets one post per
    reminder about the organisations it covers, through the outbox, delivered to a loopback robot."""
    from fivestar.notify.models import WebhookKind
    from fivestar.notify.services import WebhookInput, create_webhook
    from tests.robot_support import LoopbackRobot

    _mailbox, port = smtp
    robot_settings = mail_settings(settings, port, webhook_hosts="127.0.0.1")
    with LoopbackRobot() as robot, tenant_context(district["tenant"].id):
        everyone = create_webhook(session, robot_settings, WebhookInput(
            name="工委工作群", kind="wecom", organisation_id=None, url=robot.url(WebhookKind.WECOM)))
        second = create_webhook(session, robot_settings, WebhookInput(
            name="二支部群", kind="dingtalk", organisation_id=district["second"].id,
            url=robot.url(WebhookKind.DINGTALK)))
        session.flush()
        sweep(factory, OPENED + dt.timedelta(minutes=5))
        sweep(factory, SELF_3)
        posts = [m for m in outbox(session, district["tenant"]) if m.channel is Channel.WEBHOOK]
        assert sorted((m.webhook_id, m.recipient) for m in posts) == sorted(
            [(everyone.id, "工委工作群"), (second.id, "二支部群")])
        by_robot = {m.webhook_id: m.body_text for m in posts}
        assert "第一党支部（2 人）" in by_robot[everyone.id] and "第二党支部（1 人）" in by_robot[everyone.id]
        assert "第二党支部（1 人）" in by_robot[second.id] and "第一党支部" not in by_robot[second.id]
        report = deliver_due(factory, robot_settings)
        assert report.failed == 0 and report.retried == 0, report.errors
        assert len(robot.requests) == 2
        assert all("五星争创" in str(r.json) for r in robot.requests)
        again = deliver_due(factory, robot_settings)
        assert again.claimed == 0 and len(robot.requests) == 2  # once each

        # The first branch's joint step: the second branch's robot hears nothing of it.
        with tenant_context(district["tenant"].id):
            joint = session.scalar(select(DueItem).where(DueItem.key.like("%:joint:%:3")))
        assert joint is not None
        sweep(factory, joint.due_at)
        joint_posts = [m for m in outbox(session, district["tenant"])
                       if m.channel is Channel.WEBHOOK and "党群联评" in m.subject]
        assert [m.webhook_id for m in joint_posts] == [everyone.id]


# --- public notices that ended, rectification deadlines ---------------------------------------------------


def _in_notice(session: Session, tenant: Any, branch: Any, last_day: dt.date) -> None:
    with tenant_context(tenant.id):
        session.execute(update(RoundBranch).where(RoundBranch.branch_id == branch.id).values(
            step=BranchStep.NOTICE, notice_started_at=OPENED,
            notice_ends_at=clock.end_of_day(last_day, "Asia/Shanghai")))
        session.flush()


def test_secretaries_hear_when_their_notice_has_ended_on_the_next_working_day(
    session: Session, factory: Callable[[], Session], district: dict[str, Any], create_account: Any
) -> None:
    tenant, rid = district["tenant"], district["round"].id
    create_account(tenant, roles=[(Role.BRANCH_SECRETARY, district["second"])], username="shuji2",
                   display_name="二支书记")
    # The first branch's notice ends on Friday 9 October: the next working day is Saturday 10 October,
    # a working day in 2026 (调休 after National Day). The second's ends on Friday 16 October: Monday.
    _in_notice(session, tenant, district["first"], dt.date(2026, 10, 9))
    _in_notice(session, tenant, district["second"], dt.date(2026, 10, 16))
    sweep(factory, OPENED + dt.timedelta(minutes=5))
    with tenant_context(tenant.id):
        rows = {row.key: row.due_at for row in session.scalars(
            select(DueItem).where(DueItem.kind == DueKind.REMINDER, DueItem.key.like("%:notice:%")))}
    assert rows == {f"m{rid}:notice:20261009:0": dt.datetime(2026, 10, 10, 1, 0, tzinfo=UTC),
                    f"m{rid}:notice:20261016:0": dt.datetime(2026, 10, 19, 1, 0, tzinfo=UTC)}
    with tenant_context(tenant.id):
        items = list(session.scalars(select(DueItem).where(DueItem.key.like("%:notice:%")).order_by(DueItem.due_at)))
        assert list(describe_items(session, items).values()) == [
            "2026年第三季度党员星级评定 · 公示期满 · 10月9日", "2026年第三季度党员星级评定 · 公示期满 · 10月16日"]

    sweep(factory, dt.datetime(2026, 10, 10, 1, 0, tzinfo=UTC))
    first = [m for m in outbox(session, tenant) if "公示" in m.subject]
    assert sorted(m.recipient for m in first) == ["shuji@example.org", "一支书记"]
    notice = next(m for m in first if m.channel is Channel.INAPP)
    assert "10月9日 期满" in notice.subject and "五星争创" in notice.subject
    assert "第一党支部的公示已于 10月9日 期满" in notice.body_text and "上报五星党员名单" in notice.body_text

    # The second branch reported early (its notice was cut short by hand): nobody left to tell.
    with tenant_context(tenant.id):
        session.execute(update(RoundBranch).where(RoundBranch.branch_id == district["second"].id)
                        .values(step=BranchStep.FINALISED))
        session.flush()
    sweep(factory, dt.datetime(2026, 10, 19, 1, 0, tzinfo=UTC))
    assert [m for m in outbox(session, tenant) if "公示" in m.subject] == first
    with tenant_context(tenant.id):
        second = session.scalar(select(DueItem).where(DueItem.key == f"m{rid}:notice:20261016:0"))
    assert second is not None and second.state is DueState.DONE and "已无人需要提醒" in (second.outcome or "")


def test_rectification_deadlines_remind_the_secretary_after_the_round_closed(
    session: Session, factory: Callable[[], Session], district: dict[str, Any]
) -> None:
    from fivestar.member_rounds.models import Rectification, RoundState

    tenant, rid = district["tenant"], district["round"].id
    set_at = dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    with tenant_context(tenant.id):
        member_id = district["people"]["甲"].member_id
        evaluation = session.scalar(select(Evaluation).where(Evaluation.member_id == member_id))
        assert evaluation is not None
        session.add(Rectification(tenant_id=tenant.id, evaluation_id=evaluation.id, due_on=dt.date(2026, 12, 1),
                                  requirement="按时参加组织生活", set_at=set_at, set_by="一支书记"))
        session.execute(update(MemberRound).where(MemberRound.id == rid).values(state=RoundState.CLOSED))
        session.flush()
    sweep(factory, set_at + dt.timedelta(minutes=5))
    with tenant_context(tenant.id):
        rows = {row.key: row.due_at for row in session.scalars(select(DueItem).where(DueItem.kind == DueKind.REMINDER))}
    assert rows == {f"m{rid}:rectify:20261201:3": dt.datetime(2026, 11, 28, 1, 0, tzinfo=UTC),
                    f"m{rid}:rectify:20261201:1": dt.datetime(2026, 11, 30, 1, 0, tzinfo=UTC)}
    with tenant_context(tenant.id):
        items = list(session.scalars(select(DueItem).order_by(DueItem.due_at)))
        assert list(describe_items(session, items).values()) == [
            "2026年第三季度党员星级评定 · 限期整改 · 12月1日到期 · 提前 3 天",
            "2026年第三季度党员星级评定 · 限期整改 · 12月1日到期 · 提前 1 天"]

    sweep(factory, dt.datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    messages = outbox(session, tenant)
    assert sorted(m.recipient for m in messages) == ["shuji@example.org", "一支书记"]  # not the member
    notice = next(m for m in messages if m.channel is Channel.INAPP)
    assert "限期整改将于 12月1日 到期（还有 3 天）" in notice.subject
    assert "第一党支部（1 名党员）" in notice.body_text and "整改期限为 12月1日" in notice.body_text

    # Recorded as completed before the 1-day reminder: nobody is reminded again.
    with tenant_context(tenant.id):
        session.execute(update(Rectification).where(Rectification.evaluation_id == evaluation.id)
                        .values(completed_on=dt.date(2026, 11, 29), outcome="已整改"))
        session.flush()
    sweep(factory, dt.datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    assert len(outbox(session, tenant)) == len(messages)
    with tenant_context(tenant.id):
        last = session.scalar(select(DueItem).where(DueItem.key == f"m{rid}:rectify:20261201:1"))
    assert last is not None and last.state is DueState.DONE and "已无人需要提醒" in (last.outcome or "")


def test_the_schedule_warns_while_a_years_holidays_are_not_known(
    district: dict[str, Any], client: FlaskClient, login: Any, tmp_path: Any
) -> None:
    from fivestar.timekeeping.holidays import load_arrangements

    login(district["tenant"], district["admin"])
    try:
        with clock.frozen(dt.datetime(2034, 6, 1, 2, 0, tzinfo=UTC)):
            page = client.get("/t/remind/schedule/").get_data(as_text=True)
            assert 'id="calendar-unknown"' in page and "2034、2035 年的节假日安排尚未收录" in page
            arranged = tmp_path / "holidays.toml"
            arranged.write_text('[2034]\nholidays = ["2034-01-01"]\n[2035]\nholidays = ["2035-01-01"]\n',
                                encoding="utf-8")
            clock.set_arrangements(load_arrangements(arranged))
            assert 'id="calendar-unknown"' not in client.get("/t/remind/schedule/").get_data(as_text=True)
        # Years the library knows: no warning.
        with clock.frozen(dt.datetime(2025, 6, 1, 2, 0, tzinfo=UTC)):
            clock.set_arrangements({})
            assert 'id="calendar-unknown"' not in client.get("/t/remind/schedule/").get_data(as_text=True)
    finally:
        clock.set_arrangements({})
