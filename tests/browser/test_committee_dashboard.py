"""The committee's dashboard on a phone: a committee member of the demo district opens it at 375 px,
the page does not scroll sideways, the charts are drawn (server-side SVG, nothing from other hosts,
no console errors), a chart's numbers download as Excel, and the advanced-organisation report and the
follow-up overview (overdue first) are one tap away."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from fivestar.demo.seed import DEMO_PASSWORD, seed_demo
from fivestar.tenants.models import Tenant

PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="session")
def demo_slug(live_app: tuple[Any, Any]) -> str:
    app, _server = live_app
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            seed_demo(session)
            session.commit()
            tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo-east"))
            assert tenant is not None
            return str(tenant.slug)
        finally:
            session.close()


def test_dashboard_on_a_phone(browser: Any, live_app: tuple[Any, Any], demo_slug: str, tmp_path: Path) -> None:
    _app, server = live_app
    base = f"{server.url}/t/{demo_slug}"
    context = browser.new_context(viewport=PHONE, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(server.url) else foreign.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{base}/login")
        page.fill("#username", "committee")
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/overview/")
        assert page.locator("h1").inner_text() == "工委看板"
        charts = page.locator("svg.chart-svg")
        assert charts.count() >= 4
        # Each drawing fits the phone's width, and so does the page.
        widths = page.evaluate(
            "[...document.querySelectorAll('svg.chart-svg')].map(s => s.getBoundingClientRect().right)"
        )
        assert max(widths) <= PHONE["width"]
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page is {overflow}px wider than the viewport"
        # Labels stay legible: rendered text no smaller than 10 px.
        smallest = page.evaluate(
            "Math.min(...[...document.querySelectorAll('svg.chart-svg text')]"
            ".map(t => t.getBoundingClientRect().height))"
        )
        assert smallest >= 10
        page.screenshot(path=str(tmp_path / "dashboard-375.png"), full_page=True)

        section = page.locator("#chart-org-levels")
        assert "各单位党支部当前星级" in section.inner_text()
        with page.expect_download() as info:
            section.locator("a.chart-download").click()
        download = info.value
        book = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
        rows = list(book["数据"].iter_rows(values_only=True))
        assert rows[0][0] == "单位" and rows[0][-1] == "合计" and len(rows) > 1
        assert sum(row[-1] for row in rows[1:]) > 0

        page.click("text=先进机关党组织推荐参考")
        page.wait_for_url(f"{base}/overview/advanced")
        assert page.locator("table.advanced-orgs, .advanced-orgs, p.card").count() > 0
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1

        page.goto(f"{base}/overview/followups")
        first = page.locator("table.followup-lines tbody tr").first
        assert "已逾期" in first.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    finally:
        context.close()
    assert foreign == [], f"the page loaded assets from other hosts: {foreign}"
    assert errors == []
