"""The branch round's report: every branch's levels grouped by organisation, in Excel and PDF, and the
"生成报表" action of the committee's round page."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.kernel import task_names
from fivestar.reports.jobs import content
from fivestar.reports.jobs.models import ReportFormat, ReportJob, ReportKind
from fivestar.tenancy import tenant_context
from tests.rounds.report_support import about, add_job, pdf_text, sheet_rows, workbook


def _produce(session: Session, world: dict[str, Any], fmt: ReportFormat) -> bytes:
    job = add_job(session, world, ReportKind.BRANCH_LEVELS, fmt, round_id=world["published_round"].id)
    out = io.BytesIO()
    with tenant_context(world["tenant"].id):
        made = content.plan(session, world["tenant"], job)
        assert made.write(out, lambda _rows: None) == made.total == 2
        assert made.filename.startswith("党支部星级（按组织）-2024-") and made.filename.endswith(f".{fmt.value}")
    return out.getvalue()


def test_branch_levels_by_organisation_in_excel(session: Session, published: dict[str, Any]) -> None:
    book = workbook(_produce(session, published, ReportFormat.XLSX))
    head = about(book)
    assert head["单位"] == "支部评定测试工委"
    assert head["评定期次"] == "2024年度"
    assert head["规则版本"] == "第 1 版"
    assert head["范围"] == "全部党支部"
    assert head["生成时间"]
    rows = sheet_rows(book, "党支部星级")
    assert rows[0] == (
        "上级组织", "党支部", "环节", "上年星级", "荐星得分", "荐星星级", "支部意见", "定星星级", "定星理由"
    )
    by_branch = {row[1]: row for row in rows[1:]}
    assert by_branch["预算科党支部"][0] == "区财政局机关党委"
    assert by_branch["预算科党支部"][2] == "已定星" and by_branch["预算科党支部"][7] == "四星"
    assert by_branch["区档案馆党支部"][7] == "五星"
    assert by_branch["区档案馆党支部"][0] != "区财政局机关党委"  # directly under the committee


def test_branch_levels_in_pdf_are_grouped_under_their_organisation(
    session: Session, published: dict[str, Any]
) -> None:
    text = pdf_text(_produce(session, published, ReportFormat.PDF))
    for expected in ("支部评定测试工委", "2024年度 党支部星级（按组织）", "规则版本：第 1 版", "区财政局机关党委",
                     "预算科党支部", "四星", "区档案馆党支部", "五星"):
        assert expected in text, expected


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("fivestar.broker.enqueue", lambda _s, task, *args, queue="default": calls.append(
        (task, *args, queue)))
    return calls


def test_the_committee_round_page_asks_for_branch_levels(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session, sent: list[tuple[Any, ...]]
) -> None:
    slug, round_id = opened["tenant"].slug, opened["round"].id
    login(opened["tenant"], opened["committee"])
    page = client.get(f"/t/{slug}/branch-rating/{round_id}").get_data(as_text=True)
    assert "生成报表" in page and f"/t/{slug}/reports/branch-rounds/{round_id}" in page
    assert 'value="branch_levels"' in page and 'value="member_results"' not in page
    response = client.post(f"/t/{slug}/reports/branch-rounds/{round_id}", data={"kind": "branch_levels",
                                                                                 "format": "pdf"})
    assert response.status_code == 302
    with tenant_context(opened["tenant"].id):
        [job] = session.scalars(select(ReportJob))
    assert (job.kind, job.format, job.parameters) == (ReportKind.BRANCH_LEVELS, ReportFormat.PDF,
                                                      {"round_id": round_id})
    assert job.title == "2025年度 · 党支部星级（按组织）"
    assert sent == [(task_names.REPORTS_GENERATE, opened["tenant"].id, job.id, "reports")]
    wrong = client.post(f"/t/{slug}/reports/branch-rounds/{round_id}", data={"kind": "five_star", "format": "xlsx"})
    assert wrong.status_code == 400
    login(opened["tenant"], opened["org_staff"])
    assert client.post(f"/t/{slug}/reports/branch-rounds/{round_id}", data={"kind": "branch_levels",
                                                                            "format": "xlsx"}).status_code == 403
