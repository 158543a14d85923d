"""先进机关党组织: the report's lines worked out by hand from the seeded tree (rules: five-star branches;
机关党委/党总支 with ≥ 80 % of their branches at four stars or better), its Excel and PDF, and refusals."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.overview.advanced import advanced_report
from fivestar.tenancy import tenant_context


def _report(session: Session, world: dict[str, Any]) -> Any:
    with tenant_context(world["tenant"].id):
        return advanced_report(session, world["tenant"])


def test_lines_by_hand(session: Session, world: dict[str, Any]) -> None:
    report = _report(session, world)
    assert report.level_year == 2025  # the newest finalised year, not 2024 nor the open 2026
    # Five-star branches in 2025: 甲1, 乙1, 直属 (乙6 was five-star in 2024 only).
    assert {line.name for line in report.branch_lines} == {"甲1支部", "乙1支部", "直属支部"}
    assert all(line.met and line.level == 5 and line.threshold == 5 for line in report.branch_lines)
    orgs = {line.name: line for line in report.org_lines}
    assert set(orgs) == {"甲机关党委", "乙机关党委", "乙党总支"}
    jia = orgs["甲机关党委"]  # 5, 4, 4, 4, 3 and one branch without a level: 4 / 5 = 80 %, just at
    assert (jia.branches, jia.unrated, jia.at_level, jia.share, jia.needed, jia.met) == (
        5,
        1,
        4,
        Decimal("0.8000"),
        4,
        True,
    )
    assert jia.threshold == Decimal("0.80") and jia.share_text == "80.00%" and jia.threshold_text == "80.00%"
    yi = orgs["乙机关党委"]  # 5, 4, 4, 4, 4, 3 and the 党总支's 4, 4, 2: 7 / 9 = 77.78 %, just under
    assert (yi.branches, yi.unrated, yi.at_level, yi.share, yi.needed, yi.met) == (
        9,
        0,
        7,
        Decimal("0.7778"),
        8,
        False,
    )
    assert yi.share_text == "77.78%"
    zong = orgs["乙党总支"]  # 4, 4, 2: 2 / 3
    assert (zong.branches, zong.at_level, zong.share, zong.needed, zong.met) == (3, 2, Decimal("0.6667"), 3, False)
    assert report.org_lines[0].name == "甲机关党委"  # those that may be proposed first
    assert report.proposable_orgs == 1


def test_page_shows_the_numbers(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["committee"])
    html = client.get("/t/overview/overview/advanced").get_data(as_text=True)
    assert "甲机关党委" in html and "80.00%" in html and "77.78%" in html and "直属支部" in html


def test_excel_and_pdf_hold_the_lines(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["admin"])
    response = client.get("/t/overview/overview/advanced.xlsx")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    orgs = list(book["机关党委、党总支"].iter_rows(values_only=True))
    assert orgs[0][0] == "组织"
    rows = {row[0]: row for row in orgs[1:]}
    assert rows["甲机关党委"][2:9] == (5, 1, 4, 0.8, 0.8, 4, "符合")
    assert rows["乙机关党委"][2:5] == (9, 0, 7) and rows["乙机关党委"][8] == "不符合"
    assert abs(rows["乙机关党委"][5] - 0.7778) < 1e-9
    branches = [row[0] for row in book["党支部"].iter_rows(min_row=2, values_only=True)]
    assert sorted(branches) == sorted(["甲1支部", "乙1支部", "直属支部"])

    pdf = client.get("/t/overview/overview/advanced.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    for expected in ("甲机关党委", "77.78%", "80.00%", "直属支部", "不符合"):
        assert expected in text


def test_refusals(
    client: FlaskClient, login: Any, world: dict[str, Any], create_tenant: Any, create_account: Any
) -> None:
    from fivestar.enums import Role

    login(world["tenant"], world["secretary"])
    for path in ("advanced", "advanced.xlsx", "advanced.pdf", "", "chart.xlsx?chart=org-levels"):
        assert client.get(f"/t/overview/overview/{path}").status_code == 403, path
    client.post("/t/overview/logout")
    other = create_tenant(slug="elsewhere")
    admin = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="other-admin")
    login(other, admin)
    page = client.get("/t/elsewhere/overview/advanced").get_data(as_text=True)
    assert "甲机关党委" not in page  # another district's report shows its own (empty) tree
    assert client.get("/t/overview/overview/advanced").status_code in (302, 401, 403, 404)


def test_an_adjustment_moves_the_report(session: Session, world: dict[str, Any]) -> None:
    """增星摘星 between rounds: 乙6 raised from three to four stars makes 乙 8 / 9 = 88.89 %, met."""
    from fivestar import audit
    from fivestar.standing.models import Cause
    from fivestar.standing.services import AdjustmentInput, check_adjustment, history_version, record_adjustment
    from fivestar.standing.subjects import Subject

    subject = Subject.branch(world["y"][5].id)
    with tenant_context(world["tenant"].id), audit.acting_as(audit.Actor("test", None, "工委")):
        checked = check_adjustment(
            session,
            subject,
            None,
            AdjustmentInput(
                to_level="4",
                cause=Cause.HONOUR.value,
                reason="获市级表彰",
                meeting_name="工委会议",
                meeting_date="2026-04-15",
            ),
            version=history_version(session, subject),
            today=dt.date(2026, 4, 20),
        )
        record_adjustment(session, checked)
        session.flush()
    report = _report(session, world)
    yi = {line.name: line for line in report.org_lines}["乙机关党委"]
    assert (yi.branches, yi.at_level, yi.share, yi.met) == (9, 8, Decimal("0.8889"), True)
    assert report.adjusted == 1 and report.level_year == 2025


def test_rules_without_a_criterion(
    client: FlaskClient, login: Any, session: Session, create_tenant: Any, create_account: Any
) -> None:
    """A rule set without `[branch.advanced]`: the report says so, proposes nobody, and its files still open."""
    from pathlib import Path

    from fivestar.enums import Role

    rules = (Path(__file__).resolve().parents[2] / "tenants" / "zoucheng-public-weighted.toml").read_text("utf-8")
    tenant = create_tenant(slug="no-advanced", rules_toml=rules)
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="a")
    with tenant_context(tenant.id):
        report = advanced_report(session, tenant)
    assert report.criterion is None and report.branch_lines == () and report.org_lines == ()
    login(tenant, admin)
    assert "评定规则未设定先进机关党组织条件" in client.get("/t/no-advanced/overview/advanced").get_data(as_text=True)
    assert client.get("/t/no-advanced/overview/advanced.pdf").data.startswith(b"%PDF")
    assert client.get("/t/no-advanced/overview/advanced.xlsx").status_code == 200
