"""The public notice page through the test client: no login, what it shows and hides, filing an
objection (CSRF, rate limit, only while the notice runs), unknown links and other districts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.member_rounds.models import Objection
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import after_notice, evaluation_of, finalise_directly, put_on_notice, text_of


@pytest.fixture
def on_notice(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    round_branch = put_on_notice(session, opened)
    put_on_notice(session, opened, "two", dict(zip(opened["twos"], (4, 3, 2), strict=True)))
    return {**opened, "rb": round_branch, "url": f"/t/{opened['tenant'].slug}/notice/{round_branch.notice_token}"}


def _objections(session: Session, world: dict[str, Any]) -> list[Objection]:
    session.expire_all()
    with tenant_context(world["tenant"].id):
        return list(session.scalars(select(Objection).order_by(Objection.id)))


def test_the_page_shows_the_branch_notice_without_login(client: FlaskClient, on_notice: dict[str, Any]) -> None:
    response = client.get(on_notice["url"])
    page = text_of(response)
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for text in ("轮次测试工委", "第一党支部党员星级评定结果公示", "2026年第一季度", "公示期 5 个工作日",
                 "2026-04-07 09:00", "2026-04-13 23:59", "赵书记", "钱支委", "孙党员", "五星", "四星", "不予评星"):
        assert text in page, text
    # no scores, no phone numbers, nothing of the other branch
    assert "95" not in re.sub(r"<[^>]+>", " ", page).replace("2026", "")
    for member in on_notice["ones"]:
        assert member.phone not in page
    assert "第二党支部" not in page and "李1" not in page
    assert 'name="text"' in page and "提交异议" in page
    assert "下载打印版" in page


def test_filing_an_objection_from_the_page(
    client: FlaskClient, on_notice: dict[str, Any], session: Session
) -> None:
    target = evaluation_of(session, on_notice, on_notice["ones"][1])
    response = client.post(
        on_notice["url"],
        data={"text": "钱支委本季度有两次无故缺勤", "filer_name": "", "evaluation_id": str(target.id)},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(on_notice["url"])
    assert "已收到您的异议" in text_of(client.get(on_notice["url"]))
    [objection] = _objections(session, on_notice)
    assert (objection.text, objection.evaluation_id, objection.filer_name) == (
        "钱支委本季度有两次无故缺勤", target.id, None
    )
    with tenant_context(on_notice["tenant"].id):
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "objection.file"))
    assert event is not None and (event.actor_kind, event.actor_name) == ("public", "公示页面")


def test_an_empty_objection_keeps_what_was_typed(
    client: FlaskClient, on_notice: dict[str, Any], session: Session
) -> None:
    response = client.post(on_notice["url"], data={"text": "  ", "filer_name": "王群众", "filer_contact": "139"})
    page = text_of(response)
    assert response.status_code == 400
    assert "请填写异议内容" in page and 'value="王群众"' in page
    assert _objections(session, on_notice) == []


def test_filing_after_the_notice_ended_is_refused_but_the_page_stays(
    client: FlaskClient, on_notice: dict[str, Any], session: Session, frozen_now: Any
) -> None:
    frozen_now.move(after_notice(on_notice["rb"]))
    page = client.get(on_notice["url"])
    assert page.status_code == 200 and "公示期已结束，不再受理异议" in text_of(page)
    assert 'name="text"' not in text_of(page)
    response = client.post(on_notice["url"], data={"text": "晚到的异议"})
    assert response.status_code == 400
    assert "公示期已于 2026-04-13 23:59 结束，不能再提出异议" in text_of(response)
    assert _objections(session, on_notice) == []


def test_a_reported_notice_stays_readable(client: FlaskClient, on_notice: dict[str, Any], session: Session) -> None:
    finalise_directly(session, on_notice, on_notice["rb"])
    response = client.get(on_notice["url"])
    assert response.status_code == 200 and "赵书记" in text_of(response)
    assert client.post(on_notice["url"], data={"text": "有异议"}).status_code == 400
    assert _objections(session, on_notice) == []


def test_unknown_stale_and_future_links_are_not_found(
    client: FlaskClient, on_notice: dict[str, Any], session: Session, frozen_now: Any
) -> None:
    slug = on_notice["tenant"].slug
    for token in ("x" * 32, "short", on_notice["rb"].notice_token + "x"):
        for method in ("GET", "POST"):
            response = client.open(f"/t/{slug}/notice/{token}", method=method, data={"text": "有异议"})
            assert response.status_code == 404, (token, method)
            assert "赵书记" not in text_of(response)
            assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    frozen_now.move(on_notice["rb"].notice_started_at.replace(hour=0))  # before it starts
    assert client.get(on_notice["url"]).status_code == 404
    assert _objections(session, on_notice) == []


def test_another_districts_slug_does_not_open_the_notice(
    client: FlaskClient, on_notice: dict[str, Any], create_tenant: Any
) -> None:
    create_tenant(slug="other-district")
    response = client.get(on_notice["url"].replace(on_notice["tenant"].slug, "other-district"))
    assert response.status_code == 404 and "赵书记" not in text_of(response)


def test_filing_needs_the_csrf_token(
    client: FlaskClient, on_notice: dict[str, Any], session: Session, csrf_enabled: None
) -> None:
    assert client.post(on_notice["url"], data={"text": "没有令牌"}).status_code == 400
    page = text_of(client.get(on_notice["url"]))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    response = client.post(on_notice["url"], data={"text": "有令牌", "csrf_token": token.group(1)})
    assert response.status_code == 302
    assert [o.text for o in _objections(session, on_notice)] == ["有令牌"]


def test_filing_is_rate_limited_per_address(
    app: Flask, client: FlaskClient, on_notice: dict[str, Any], session: Session
) -> None:
    app.config["FIVESTAR_OBJECTION_LIMIT"] = "3 per hour"
    try:
        statuses = [client.post(on_notice["url"], data={"text": f"异议{i}"}).status_code for i in range(4)]
        assert statuses == [302, 302, 302, 429]
        other = client.post(on_notice["url"], data={"text": "换个地址"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert other.status_code == 302
        assert client.get(on_notice["url"]).status_code == 200  # reading is not limited
    finally:
        app.config.pop("FIVESTAR_OBJECTION_LIMIT")
    with tenant_context(on_notice["tenant"].id):
        assert session.scalar(select(func.count()).select_from(Objection)) == 4


def test_the_default_limit_is_ten_an_hour(client: FlaskClient, on_notice: dict[str, Any]) -> None:
    statuses = [client.post(on_notice["url"], data={"text": f"异议{i}"}).status_code for i in range(11)]
    assert statuses == [302] * 10 + [429]
