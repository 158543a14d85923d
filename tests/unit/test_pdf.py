"""PDFs with Chinese text: the shipped font, its licence, embedding, text that reads back."""

from __future__ import annotations

import io
import re

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from fivestar.documents import pdf
from fivestar.documents.desk_card import DeskCard, render


def _gb2312() -> set[str]:
    chars: set[str] = set()
    for lead in range(0xA1, 0xF8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def _text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_font_ships_with_its_licence_and_covers_gb2312() -> None:
    assert pdf.FONT_PATH.is_file()
    size = pdf.FONT_PATH.stat().st_size
    assert 500_000 < size < 4_000_000  # a few MB at most
    licence = pdf.FONT_LICENCE_PATH.read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0" in licence
    notice = (pdf.FONT_DIR / "NOTICE.txt").read_text(encoding="utf-8")
    assert "WenQuanYi" in notice and "make_font_subset.py" in notice
    font = TTFont(str(pdf.FONT_PATH))
    try:
        assert "glyf" in font and "CFF " not in font  # TrueType outlines: PDF embeds them as FontFile2
        cmap = font.getBestCmap()
        wanted = _gb2312() | set("★☆（），。：；！？、《》") | {chr(c) for c in range(0x20, 0x7F)}
        missing = sorted(ch for ch in wanted if ord(ch) not in cmap)
        assert not missing, "".join(missing[:50])
        assert all(ord(ch) in cmap for ch in "喆堃珺昇")  # GBK characters that names use
    finally:
        font.close()


def test_a_document_embeds_a_subset_and_its_text_reads_back() -> None:
    doc = pdf.new_document(size="A4", title="党员星级评定结果公示", footer="测试工委 · 2026Q1 · 规则第 1 版")
    doc.add_page()
    pdf.centred(doc, "第一党支部党员星级评定结果公示", y=20, size=16)
    doc.set_font(pdf.FONT_FAMILY, size=11)
    doc.cell(0, 8, "欧阳喆 五星 ★★★★★ 95.5分（示例）")
    data = pdf.finish(doc)
    assert data.startswith(b"%PDF-")
    assert b"/FontFile2" in data
    names = set(re.findall(rb"/BaseFont\s*/([A-Z]{6})\+WenQuanYiMicroHei", data))
    assert names, "the font is not embedded as a subset"
    assert b"/ToUnicode" in data
    text = _text(data)
    assert "第一党支部党员星级评定结果公示" in text and "欧阳喆 五星 ★★★★★ 95.5分（示例）" in text
    assert "测试工委 · 2026Q1 · 规则第 1 版" in text
    reader = PdfReader(io.BytesIO(data))
    assert reader.metadata is not None and reader.metadata.title == "党员星级评定结果公示"
    # a subset: far smaller than the 3 MB font
    assert len(data) < 60_000


def test_every_page_carries_the_footer_and_its_number() -> None:
    doc = pdf.new_document(size="A5", footer="公示名单")
    for _ in range(3):
        doc.add_page()
        doc.cell(0, 8, "一页")
    text = _text(pdf.finish(doc))
    assert text.count("公示名单") == 3
    assert "1 / 3" in text and "2 / 3" in text and "3 / 3" in text and "{nb}" not in text


def test_long_text_shrinks_to_fit() -> None:
    doc = pdf.new_document(size="A6", landscape=True)
    doc.add_page()
    long_name = "某某区财政局机关第一党支部联合党支部" * 2
    size = pdf.fit_size(doc, long_name, width=100, size=20)
    assert 6 <= size < 20
    assert doc.get_string_width(long_name) <= 100 or size == 6
    assert pdf.fit_size(doc, "短", width=100, size=20) == 20
    pdf.close(doc)  # an abandoned document still closes its font file


def test_stars_are_drawn_as_shapes() -> None:
    doc = pdf.new_document(size="A6", landscape=True)
    doc.add_page()
    width = pdf.draw_stars(doc, centre_x=74, top=20, filled=3, of=5, size=10, gap=2)
    assert width == 58
    data = pdf.finish(doc)
    page = PdfReader(io.BytesIO(data)).pages[0]
    contents = page.get_contents()
    assert contents is not None
    ops = contents.get_data().decode("latin-1")
    assert ops.count(" m") == 5 and ops.count(" l") >= 5 * 10  # five closed ten-point outlines
    assert ops.count("B\n") + ops.count("B ") == 3  # three filled and stroked …
    assert _text(data).strip() == ""  # shapes, not text


def test_unknown_page_size_is_refused() -> None:
    with pytest.raises(ValueError, match="page size"):
        pdf.new_document(size="B5")  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [0, 1, 5])
def test_desk_card_renders_each_level(level: int) -> None:
    data = render(
        DeskCard(
            tenant_name="测试区直机关工委",
            member_name="欧阳喆",
            branch_name="区财政局机关第一党支部",
            period_label="2026年第一季度",
            level=level,
            title="五星党员" if level == 5 else "无星",
            heading="党员星级评定",
            provenance="评定期次 2026Q1 · 规则第 1 版",
        )
    )
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    text = _text(data)
    assert "欧阳喆" in text and "区财政局机关第一党支部" in text and "2026年第一季度" in text
    assert ("五星党员" if level == 5 else "无星") in text
