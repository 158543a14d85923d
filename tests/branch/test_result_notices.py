"""亮星, the notice of the result to every organisation: one e-mail per organisation and recipient
(branch secretaries and committee members, 机关党委/党总支 staff), none for accounts without an
address, never twice on a retry, delivery asked for after commit, and really delivered by the
outbox to an SMTP server on loopback."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.models import RoleGrant
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import publication
from fivestar.enums import Role
from fivestar.errors import ServiceError
from fivestar.kernel import task_names
from fivestar.kernel.rounds import seeding
from fivestar.outbox.delivery import deliver_due
from fivestar.outbox.models import OutboxMessage
from fivestar.tenancy import cross_tenant, tenant_context

LINK = "http://fivestar.test/t/branch-district/stars/?year=2024"


class Mailbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
        controller.loop.close()


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    """Sessions on the test's connection: what deliver_due commits is rolled back with the test."""
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What notify_results asked the broker for (after commit), instead of a real broker."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(publication, "enqueue_after_commit", lambda *args, **kw: calls.append(args))
    return calls


@pytest.fixture
def addressed(session: Session, published: dict[str, Any], create_account: Any) -> dict[str, Any]:
    """Addresses for the accounts of the district: the organisations' roles, and others that must
    not be notified. `direct`'s secretary has none; the 机关党委's staff is also on `direct`'s
    committee; a second account shares the secretary's address; an inactive one has its own."""
    world = dict(published)
    tenant = world["tenant"]
    with tenant_context(tenant.id):
        for key, address in (
            ("secretary", "shuji@example.org"),
            ("branch_committee", "zhiwei@example.org"),
            ("org_staff", "jiguan@example.org"),
            ("admin", "gongwei@example.org"),
            ("committee", "weiyuan@example.org"),
            ("member", "dangyuan@example.org"),
            ("inspector", "ducha@example.org"),
        ):
            world[key].email = address
        world["direct_secretary"].email = None
        session.add(
            RoleGrant(
                tenant_id=tenant.id,
                account_id=world["org_staff"].id,
                role=Role.BRANCH_COMMITTEE,
                organisation_id=world["direct"].id,
            )
        )
        session.flush()
    world["shared"] = create_account(
        tenant, roles=[(Role.BRANCH_COMMITTEE, world["one"])], username="gongyong", email="SHUJI@example.org"
    )
    world["inactive"] = create_account(
        tenant,
        roles=[(Role.BRANCH_COMMITTEE, world["one"])],
        username="tingyong",
        email="old@example.org",
        active=False,
    )
    return world


def _notify(session: Session, world: dict[str, Any], settings: Any) -> publication.NoticeReport:
    tenant = world["tenant"]
    with tenant_context(tenant.id):
        report = publication.notify_results(
            session,
            world["published_round"],
            settings,
            lambda year: publication.public_page_url(settings, tenant.slug, year),
        )
        session.flush()
    return report


def _messages(session: Session, world: dict[str, Any]) -> list[OutboxMessage]:
    prefix = f"branch-result:{world['published_round'].id}:"
    with tenant_context(world["tenant"].id):
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith(prefix)).order_by(OutboxMessage.id)
            )
        )


def _organisation(message: OutboxMessage) -> int:
    return int(message.dedupe_key.split(":")[2])


def test_one_notice_per_organisation_and_recipient(
    session: Session, addressed: dict[str, Any], settings: Any, enqueued: list[tuple[Any, ...]]
) -> None:
    world = addressed
    report = _notify(session, world, settings)
    assert report == publication.NoticeReport(queued=4, already_queued=0, organisations=3, without_email=1)
    sent = {(m.recipient, _organisation(m)) for m in _messages(session, world)}
    assert sent == {
        ("shuji@example.org", world["one"].id),  # the secretary (and the account sharing the address: once)
        ("zhiwei@example.org", world["one"].id),
        ("jiguan@example.org", world["party"].id),  # the 机关党委 about its branches
        ("jiguan@example.org", world["direct"].id),  # the same person on direct's committee: that notice too
    }
    by_org = {_organisation(m): m for m in _messages(session, world) if m.recipient == "jiguan@example.org"}
    party, direct = by_org[world["party"].id], by_org[world["direct"].id]
    assert "区财政局机关党委所属党支部的评定结果如下" in party.body_text
    assert "预算科党支部：四星 ★★★★☆" in party.body_text and "区档案馆党支部" not in party.body_text
    assert "区档案馆党支部的评定结果如下" in direct.body_text and "五星 ★★★★★" in direct.body_text
    one = next(m for m in _messages(session, world) if m.recipient == "zhiwei@example.org")
    assert "班子建设：金星；党员队伍建设：银星；工作机制建设：铜星；工作业绩：无；群众评价：金星" in one.body_text
    assert one.subject == "【五星争创】2024年度党支部星级评定结果 / Branch star ratings 2024"
    assert LINK in one.body_text and one.body_html is not None and f'href="{LINK}"' in one.body_html
    assert "于 2025-02-10 研究决定" in one.body_text
    assert one.body_text.index("您好") < one.body_text.index("Hello")  # Chinese first, an English line
    # nobody else: not the committee, not members, not the inactive account
    assert not {m.recipient for m in _messages(session, world)} & {
        "gongwei@example.org",
        "weiyuan@example.org",
        "dangyuan@example.org",
        "ducha@example.org",
        "old@example.org",
    }
    # delivery asked for once, after commit; the notice is in the audit trail
    assert enqueued == [(session, settings, task_names.DELIVER_OUTBOX)]
    with tenant_context(world["tenant"].id):
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "branch_round.results_notified"))
    assert event is not None and event.after is not None and event.after["queued"] == 4


def test_a_second_attempt_mails_nobody_twice(
    session: Session, addressed: dict[str, Any], settings: Any, enqueued: list[tuple[Any, ...]]
) -> None:
    first = _notify(session, addressed, settings)
    again = _notify(session, addressed, settings)
    assert first.queued == 4
    assert (again.queued, again.already_queued) == (0, 4)
    assert len(_messages(session, addressed)) == 4
    assert len(enqueued) == 1  # nothing new: no delivery asked for, no audit event
    with tenant_context(addressed["tenant"].id):
        events = session.scalars(select(AuditEvent.id).where(AuditEvent.action == "branch_round.results_notified"))
        assert len(list(events)) == 1


def test_a_new_address_after_a_first_notice_gets_only_its_own(
    session: Session, addressed: dict[str, Any], settings: Any, enqueued: list[tuple[Any, ...]]
) -> None:
    _notify(session, addressed, settings)
    with tenant_context(addressed["tenant"].id):
        addressed["direct_secretary"].email = "shuji2@example.org"
        session.flush()
    report = _notify(session, addressed, settings)
    assert (report.queued, report.already_queued, report.without_email) == (1, 4, 0)
    assert ("shuji2@example.org", addressed["direct"].id) in {
        (m.recipient, _organisation(m)) for m in _messages(session, addressed)
    }


def test_no_addresses_no_mail(
    session: Session, published: dict[str, Any], settings: Any, enqueued: list[tuple[Any, ...]]
) -> None:
    report = _notify(session, published, settings)  # the fixture's accounts have no e-mail address
    assert report == publication.NoticeReport(queued=0, already_queued=0, organisations=0, without_email=4)
    assert _messages(session, published) == [] and enqueued == []


def test_an_open_round_is_not_notified(
    session: Session, opened: dict[str, Any], settings: Any, enqueued: list[tuple[Any, ...]]
) -> None:
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError):
        publication.notify_results(session, opened["round"], settings, lambda year: LINK)
    with tenant_context(opened["tenant"].id):
        assert session.scalar(select(OutboxMessage.id)) is None
    assert enqueued == []


def test_the_outbox_delivers_the_notices_over_smtp(
    session: Session,
    addressed: dict[str, Any],
    settings: Any,
    enqueued: list[tuple[Any, ...]],
    factory: Callable[[], Session],
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp
    _notify(session, addressed, settings)
    mail = settings.model_copy(update={"mail_server": "127.0.0.1", "mail_port": port, "mail_timeout_seconds": 5.0})
    report = deliver_due(factory, mail)
    assert (report.sent, report.failed) == (4, 0)
    assert sorted(str(m["To"]) for m in mailbox.received) == [
        "jiguan@example.org",
        "jiguan@example.org",
        "shuji@example.org",
        "zhiwei@example.org",
    ]
    for received in mailbox.received:
        assert str(received["Subject"]) == "【五星争创】2024年度党支部星级评定结果 / Branch star ratings 2024"
        text = received.get_body(preferencelist=("plain",))
        html = received.get_body(preferencelist=("html",))
        assert text is not None and LINK in text.get_content() and "评定结果如下" in text.get_content()
        assert html is not None and f'href="{LINK}"' in html.get_content()
    # a retry of the finalise after delivery still sends nothing more
    assert _notify(session, addressed, settings).queued == 0
    assert deliver_due(factory, mail).claimed == 0 and len(mailbox.received) == 4


def test_the_web_link_builder_points_at_the_public_page(app: Flask, settings: Any, published: dict[str, Any]) -> None:
    from fivestar.branch_rounds.publication_views import result_link_builder

    tenant = published["tenant"]
    with app.test_request_context(f"/t/{tenant.slug}/stars/"):
        g.tenant = tenant
        link = result_link_builder()(2024)
    assert link == publication.public_page_url(settings, tenant.slug, 2024) == LINK


def test_notices_stay_in_their_district(
    session: Session, addressed: dict[str, Any], settings: Any, enqueued: list[tuple[Any, ...]]
) -> None:
    _notify(session, addressed, settings)
    with cross_tenant("the test checks where the notices went"):
        tenants = set(
            session.scalars(
                select(OutboxMessage.tenant_id).where(OutboxMessage.dedupe_key.startswith("branch-result:"))
            )
        )
    assert tenants == {addressed["tenant"].id}


def test_finalising_on_the_committee_page_notifies_and_publishes(
    client: Any,
    login: Any,
    session: Session,
    opened: dict[str, Any],
    settings: Any,
    enqueued: list[tuple[Any, ...]],
) -> None:
    """The whole 亮星 step through the web: the committee finalises the year, every organisation's
    notice is queued in the same transaction, and the public page shows the stars."""
    from fivestar.branch_rounds.models import CriterionScore, RatingStep
    from fivestar.tenants.services import current_rules, version_rules
    from tests.branch.publication_support import DIRECT_TOTALS, ONE_TOTALS, spread

    world, tenant = opened, opened["tenant"]
    with tenant_context(tenant.id):
        version = current_rules(session, tenant)
        assert version is not None
        rules = version_rules(version)
        world["secretary"].email = "shuji@example.org"
        world["org_staff"].email = "jiguan@example.org"
        for rating, level, totals in ((world["rating_one"], 4, ONE_TOTALS), (world["rating_direct"], 3, DIRECT_TOTALS)):
            with seeding():
                rating.step = RatingStep.DECIDED
            rating.decided_level, rating.decided_by = level, "工委"
            for indicator, per in spread(rules, totals).items():
                for criterion, value in per.items():
                    session.add(
                        CriterionScore(
                            tenant_id=tenant.id,
                            rating_id=rating.id,
                            indicator_key=indicator,
                            criterion_key=criterion,
                            score=value,
                        )
                    )
        session.flush()
    assert "2025年度" not in client.get(f"/t/{tenant.slug}/stars/").get_data(as_text=True)
    login(tenant, world["admin"])
    response = client.post(
        f"/t/{tenant.slug}/branch-rating/{world['round'].id}/finalise",
        data={"meeting_date": "2026-01-06", "participants": "张主任、李委员", "version": str(world["round"].version)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    session.expire_all()
    notices = _messages(session, {**world, "published_round": world["round"]})
    assert {(m.recipient, _organisation(m)) for m in notices} == {
        ("shuji@example.org", world["one"].id),
        ("jiguan@example.org", world["party"].id),
    }
    link = f"http://fivestar.test/t/{tenant.slug}/stars/?year=2025"
    assert all(link in m.body_text for m in notices)
    assert len(enqueued) == 1
    page = client.get(f"/t/{tenant.slug}/stars/").get_data(as_text=True)
    assert "2025年度党支部星级评定结果" in page and "经 2026年1月6日 工委会议研究决定，现予公布" in page
    assert "预算科党支部" in page and "四星" in page and "三星" in page
