"""亮星 on paper: the A3 bulletin-board poster of a year and the A4 plaque of a branch — valid PDFs of
the right size, Chinese in an embedded font subset, text that reads back, only published results."""

from __future__ import annotations

import io
import re
from typing import Any

from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind
from tests.branch.publication_support import DIRECT_TOTALS, ONE_TOTALS, Decided, build_round

A3_POINTS = (841.89, 1190.55)  # 297 × 420 mm
A4_LANDSCAPE_POINTS = (841.89, 595.28)  # 297 × 210 mm


def _size(page: Any) -> tuple[float, float]:
    return float(page.mediabox.width), float(page.mediabox.height)


def _close(size: tuple[float, float], expected: tuple[float, float]) -> bool:
    return abs(size[0] - expected[0]) < 1 and abs(size[1] - expected[1]) < 1


def _text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _embedded(data: bytes) -> bool:
    """Chinese set in a TrueType subset that travels inside the file, never a system font."""
    return b"/FontFile2" in data and re.search(rb"/BaseFont\s*/[A-Z]{6}\+WenQuanYiMicroHei", data) is not None


def test_the_poster_is_an_a3_pdf_with_every_branch_level_and_medal(
    client: FlaskClient, published: dict[str, Any]
) -> None:
    response = client.get(f"/t/{published['tenant'].slug}/stars/poster.pdf")  # no login
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["X-Robots-Tag"] == "index, follow, noarchive"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert data.startswith(b"%PDF-") and _embedded(data)
    reader = PdfReader(io.BytesIO(data))
    assert all(_close(_size(page), A3_POINTS) for page in reader.pages)
    assert reader.metadata is not None and reader.metadata.title == "2024年度党支部星级评定结果"
    text = _text(data)
    assert published["tenant"].name in text and "2024年度党支部星级评定结果" in text
    assert "预算科党支部" in text and "区档案馆党支部" in text and "区财政局机关党委" in text
    assert "四星" in text and "五星" in text
    assert "金星" in text and "银星" in text and "铜星" in text
    assert "班子建设" in text and "群众评价" in text
    assert "经 2025年2月10日 工委会议研究决定，现予公布" in text
    assert "规则第 1 版" in text and "生成于" in text


def test_a_poster_of_60_branches_flows_onto_more_a3_pages(
    client: FlaskClient, session: Session, create_tenant: Any, create_org: Any
) -> None:
    tenant = create_tenant(slug="poster-sixty", name="六十支部测试工委")
    decisions = []
    parties = [create_org(tenant, OrgKind.PARTY_COMMITTEE, name=f"第{n}机关党委", code=f"P{n}") for n in range(1, 5)]
    for index in range(60):
        parent = parties[index % 5] if index % 5 < 4 else None  # every fifth directly under the committee
        branch = create_org(
            tenant, OrgKind.BRANCH, parent=parent, name=f"测试{index:02d}号党支部", code=f"B{index:03d}"
        )
        decisions.append(Decided(branch, index % 6, DIRECT_TOTALS if index % 2 else ONE_TOTALS))
    build_round(session, tenant, year=2024, decisions=decisions)
    response = client.get(f"/t/{tenant.slug}/stars/poster.pdf?year=2024")
    assert response.status_code == 200
    data = response.get_data()
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    assert all(_close(_size(page), A3_POINTS) for page in reader.pages)
    assert _embedded(data)
    text = _text(data)
    missing = [f"测试{index:02d}号党支部" for index in range(60) if f"测试{index:02d}号党支部" not in text]
    assert not missing, missing
    for label in ("五星", "四星", "三星", "二星", "一星", "无星"):
        assert label in text, label
    assert "（续）" in text  # an organisation continued on the next page says so
    assert f"1 / {len(reader.pages)}" in text and f"{len(reader.pages)} / {len(reader.pages)}" in text


def test_the_plaque_is_an_a4_landscape_pdf_titled_by_level(client: FlaskClient, published: dict[str, Any]) -> None:
    slug = published["tenant"].slug
    response = client.get(f"/t/{slug}/stars/plaque/{published['published_direct'].id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    data = response.get_data()
    assert _embedded(data)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1 and _close(_size(reader.pages[0]), A4_LANDSCAPE_POINTS)
    text = _text(data)
    assert "五星党支部" in text and "区档案馆党支部" in text and "2024年度" in text
    assert published["tenant"].name in text and "2025年2月10日" in text
    assert f"编号 {published['published_direct'].id}" in text
    four = client.get(f"/t/{slug}/stars/plaque/{published['published_one'].id}.pdf")
    assert four.status_code == 200 and "四星党支部" in _text(four.get_data())


def test_plaques_only_for_published_ratings_with_stars(
    client: FlaskClient, session: Session, published: dict[str, Any], opened: dict[str, Any]
) -> None:
    slug = published["tenant"].slug
    # the open round's ratings: as if they did not exist
    for rating in (opened["rating_one"], opened["rating_direct"]):
        assert client.get(f"/t/{slug}/stars/plaque/{rating.id}.pdf").status_code == 404
    assert client.get(f"/t/{slug}/stars/plaque/987654.pdf").status_code == 404
    # a branch rated 无星 gets no plaque, with a reason
    _round, ratings = build_round(session, published["tenant"], year=2023, decisions=[Decided(published["one"], 0)])
    refused = client.get(f"/t/{slug}/stars/plaque/{ratings[published['one'].id].id}.pdf")
    assert refused.status_code == 409 and "无星" in refused.get_data(as_text=True)


def test_a_poster_of_a_year_without_results_is_not_found(client: FlaskClient, published: dict[str, Any]) -> None:
    slug = published["tenant"].slug
    missing = client.get(f"/t/{slug}/stars/poster.pdf?year=2020")
    assert missing.status_code == 404 and "没有已公布" in missing.get_data(as_text=True)
    assert client.get(f"/t/{slug}/stars/poster.pdf?year=x").status_code == 400


def test_the_pdfs_are_rate_limited_per_address(app: Any, client: FlaskClient, published: dict[str, Any]) -> None:
    """Drawing a PDF costs CPU and anyone may ask: a few per minute per address, then 429."""
    slug, rating = published["tenant"].slug, published["published_direct"]
    app.config["FIVESTAR_PUBLIC_PDF_LIMIT"] = "2 per minute"
    try:
        assert client.get(f"/t/{slug}/stars/plaque/{rating.id}.pdf").status_code == 200
        assert client.get(f"/t/{slug}/stars/plaque/{rating.id}.pdf").status_code == 200
        assert client.get(f"/t/{slug}/stars/plaque/{rating.id}.pdf").status_code == 429
        assert client.get(f"/t/{slug}/stars/").status_code == 200  # the page itself is not limited
    finally:
        app.config.pop("FIVESTAR_PUBLIC_PDF_LIMIT")
