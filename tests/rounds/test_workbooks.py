"""Workbooks: the round's results to Excel (a branch or the whole tenant), the five-star list, and the
public-notice list as PDF — their content, and who may download them."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import openpyxl
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import Role
from fivestar.member_rounds import core, notice, notice_paper, workbooks
from fivestar.member_rounds.models import PartKind, ScoreStage, SelfState
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import (
    evaluation_of,
    finalise_directly,
    put_on_notice,
    round_branch_of,
    score,
    scores_for,
    text_of,
)

HEAD = ["期次", "上级组织", "支部", "党员编号", "姓名"]
TAIL = ["加分", "总分", "星级", "不予评星原因", "自评状态"]


@pytest.fixture
def results(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    one = put_on_notice(session, opened)
    with tenant_context(opened["tenant"].id):
        rules = core.round_rules(session, opened["round"])
        bonus = {**scores_for(rules, 4), (PartKind.BONUS, "district_commendation", ""): Decimal(2)}
        evaluation = evaluation_of(session, opened, opened["ones"][1])
        core.write_scores(session, [evaluation.id], ScoreStage.FINAL, {evaluation.id: bonus})
        evaluation.total = Decimal(87)
        evaluation_of(session, opened, opened["twos"][0]).self_state = SelfState.DRAFT
        session.flush()
    score(session, opened, {opened["twos"][1]: 5})
    return {**opened, "rb_one": one}


def _workbook(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data), read_only=True)


def _rows(book: Any, sheet: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in book[sheet].iter_rows(values_only=True)]


@pytest.mark.parametrize("batch", [500, 2])
def test_the_tenant_export_has_every_member_with_final_scores(
    session: Session, results: dict[str, Any], batch: int
) -> None:
    out = io.BytesIO()
    with tenant_context(results["tenant"].id):
        written = workbooks.write_results(session, out, results["tenant"], results["round"], batch=batch)
    book = _workbook(out.getvalue())
    assert book.sheetnames == ["说明", "评定结果"]
    about = {row[0]: row[1] for row in _rows(book, "说明") if row and row[0]}
    assert about["单位"] == "轮次测试工委"
    assert about["评定期次"] == "2026年第一季度（2026Q1）"
    assert about["规则版本"] == "第 1 版"
    assert about["范围"] == "全部支部"
    assert about["生成时间"] == "2026-04-07 09:00"
    rows = _rows(book, "评定结果")
    with tenant_context(results["tenant"].id):
        fields = core.score_fields(core.round_rules(session, results["round"]))
    score_heads = [f"{f.part_label}·{f.label}" if f.criterion_key else f.label for f in fields]
    assert list(rows[0]) == HEAD + score_heads + TAIL
    assert "学习方面·政治理论学习" in score_heads  # one column per criterion where the rules list criteria
    assert written == 6 and len(rows) == 7
    n = len(fields)
    by_name = {row[4]: row for row in rows[1:]}
    assert list(by_name) == ["赵书记", "钱支委", "孙党员", "李1", "李2", "李3"]  # by branch, then number
    zhao = by_name["赵书记"]
    assert zhao[:5] == ("2026Q1", "区财政局机关党委", "第一党支部", "A001", "赵书记")
    assert sum(zhao[5:5 + n]) == 95 and all(isinstance(v, int | float) for v in zhao[5:5 + n])
    assert zhao[5 + n:] == (None, 95, "五星", "", "已提交")
    assert by_name["钱支委"][5 + n:8 + n] == (2, 87, "四星")
    assert sum(by_name["钱支委"][5:5 + n]) == 85
    assert by_name["孙党员"][7 + n:9 + n] == ("不予评星", "不按时足额交纳党费：连续三个月未交党费")
    assert by_name["李1"][5:] == (None,) * (n + 2) + ("—", "", "草稿")
    assert by_name["李2"][6 + n:8 + n] == (95, "五星")


def test_a_branch_export_holds_that_branch_only(session: Session, results: dict[str, Any]) -> None:
    out = io.BytesIO()
    with tenant_context(results["tenant"].id):
        workbooks.write_results(
            session, out, results["tenant"], results["round"], round_branch=_loaded(session, results)
        )
    book = _workbook(out.getvalue())
    rows = _rows(book, "评定结果")
    assert [row[4] for row in rows[1:]] == ["赵书记", "钱支委", "孙党员"]
    assert {row[0]: row[1] for row in _rows(book, "说明") if row and row[0]}["范围"] == "第一党支部"


def _loaded(session: Session, world: dict[str, Any]) -> Any:
    return core.load_round_branch(session, round_branch_of(session, world, "one").id)


def test_names_are_never_turned_into_formulas(session: Session, results: dict[str, Any]) -> None:
    with tenant_context(results["tenant"].id):
        results["ones"][0].name = "=HYPERLINK(\"http://evil\")"
        session.flush()
        out = io.BytesIO()
        workbooks.write_results(session, out, results["tenant"], results["round"])
    rows = _rows(_workbook(out.getvalue()), "评定结果")
    assert rows[1][4] == "=HYPERLINK(\"http://evil\")"
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    assert book["评定结果"]["E2"].data_type == "s"


def test_the_five_star_list(session: Session, results: dict[str, Any]) -> None:
    finalise_directly(session, results, results["rb_one"])
    principal = Principal(session_token="t", display_name="工委", tenant_id=results["tenant"].id, account_id=1,
                          grants=(Grant(Role.TENANT_ADMIN),))
    out = io.BytesIO()
    with tenant_context(results["tenant"].id):
        written = workbooks.write_five_star(session, out, results["tenant"], principal, results["round"])
    rows = _rows(_workbook(out.getvalue()), "五星党员")
    assert written == 1
    assert rows == [
        ("序号", "姓名", "党员编号", "支部", "上级组织", "总分"),
        (1, "赵书记", "A001", "第一党支部", "区财政局机关党委", 95),
    ]


def test_the_notice_pdf_embeds_its_font_and_lists_the_members(session: Session, results: dict[str, Any]) -> None:
    from pypdf import PdfReader

    with tenant_context(results["tenant"].id):
        found = notice.find_notice(session, results["rb_one"].notice_token or "")
        assert found is not None
        view = notice.notice_view(session, found)
        data = notice_paper.notice_pdf(view, "轮次测试工委", 1, link="http://fivestar.test/t/x/notice/abc")
    assert data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.1)  # A4
    text = reader.pages[0].extract_text()
    expected_texts = (
        "第一党支部党员星级评定结果公示", "赵书记", "五星", "钱支委", "四星", "不予评星", "公示期 5 个工作日"
    )
    for expected in expected_texts:
        assert expected in text, expected
    fonts = [f for f in reader.pages[0]["/Resources"]["/Font"].values()]
    assert any("WenQuanYi" in str(font.get_object()["/BaseFont"]) for font in fonts)


# --- downloads ---------------------------------------------------------------------------------------------


def _url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}/rounds{path}"


def test_downloads_carry_a_utf8_filename_and_are_not_cached(
    client: FlaskClient, login: Any, results: dict[str, Any]
) -> None:
    login(results["tenant"], results["admin"])
    response = client.get(_url(results, f"/{results['round'].id}/results.xlsx"))
    assert response.status_code == 200
    assert response.mimetype == workbooks.XLSX_MIMETYPE
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("党员星级评定结果-2026Q1-20260407-0900.xlsx") in disposition
    assert response.headers["Cache-Control"] == "private, no-store"
    rows = _rows(_workbook(response.get_data()), "评定结果")
    assert len(rows) == 7
    five = client.get(_url(results, f"/{results['round'].id}/five-star.xlsx"))
    assert five.status_code == 200 and _rows(_workbook(five.get_data()), "五星党员")[0][1] == "姓名"


def test_a_secretary_exports_their_branch_but_not_the_tenant(
    client: FlaskClient, login: Any, results: dict[str, Any], session: Session
) -> None:
    one, two = round_branch_of(session, results, "one"), round_branch_of(session, results, "two")
    login(results["tenant"], results["secretary"])
    response = client.get(_url(results, f"/branches/{one.id}/results.xlsx"))
    assert response.status_code == 200
    assert [row[4] for row in _rows(_workbook(response.get_data()), "评定结果")[1:]] == ["赵书记", "钱支委", "孙党员"]
    assert client.get(_url(results, f"/branches/{two.id}/results.xlsx")).status_code == 404
    assert client.get(_url(results, f"/{results['round'].id}/results.xlsx")).status_code == 403


def test_a_member_exports_nothing_and_another_district_finds_nothing(
    client: FlaskClient, login: Any, results: dict[str, Any], session: Session, create_tenant: Any,
    create_account: Any
) -> None:
    one = round_branch_of(session, results, "one")
    login(results["tenant"], results["member"])
    assert client.get(_url(results, f"/branches/{one.id}/results.xlsx")).status_code == 404
    assert client.get(_url(results, f"/{results['round'].id}/results.xlsx")).status_code == 403
    client.post(f"/t/{results['tenant'].slug}/logout")
    other = create_tenant(slug="other-district")
    intruder = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="intruder")
    login(other, intruder)
    for path in (f"/branches/{one.id}/results.xlsx", f"/{results['round'].id}/results.xlsx",
                 f"/{results['round'].id}/five-star.xlsx"):
        assert client.get(f"/t/other-district/rounds{path}").status_code == 404, path


def test_the_public_notice_pdf_download(client: FlaskClient, results: dict[str, Any]) -> None:
    token = results["rb_one"].notice_token
    response = client.get(f"/t/{results['tenant'].slug}/notice/{token}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert client.get(f"/t/{results['tenant'].slug}/notice/{'x' * 32}/pdf").status_code == 404
    assert "赵书记" not in text_of(client.get(f"/t/{results['tenant'].slug}/notice/{'x' * 32}/pdf"))
