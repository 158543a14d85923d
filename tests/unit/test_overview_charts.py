"""The dashboard's SVG drawings: well-formed, labels escaped, every count written, bars to scale,
hatching on what is missing, and the legend in words."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fivestar.overview.charts import WIDTH, render
from fivestar.overview.dashboard import Chart, ChartRow, Series

SVG = "{http://www.w3.org/2000/svg}"


def _chart(whole: bool = False) -> Chart:
    return Chart(
        key="t",
        title="各单位<党支部>星级",
        row_heading="单位",
        series=(
            Series("5", "五星", "#7a0d1f"),
            Series("4", "四星", "#b3202f"),
            Series("none", "未定级", "#bdbdbd", True),
        ),
        rows=(ChartRow("甲<script>", (3, 1, 0)), ChartRow("乙", (1, 1, 2))),
        whole=whole,
    )


def test_well_formed_and_escaped() -> None:
    markup = str(render(_chart()))
    root = ET.fromstring(markup)  # noqa: S314 - our own output; raises when not well-formed
    assert "<script>" not in markup and "甲&lt;script&gt;" in markup
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"五星", "四星", "未定级"} <= set(texts)  # the legend in words
    assert "甲<script> · 4" in texts and "乙 · 4" in texts  # each row's total
    assert texts.count("3") == 1 and texts.count("2") == 1  # counts inside their segments


def test_bars_to_scale() -> None:
    root = ET.fromstring(str(render(_chart())))  # noqa: S314 - our own output
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    widths = [float(r.get("width", 0)) for r in bars]
    # Both rows total 4: each is the full width; 3 of 4 is three quarters.
    assert abs(widths[0] - WIDTH * 3 / 4) < 0.01 and abs(sum(widths[:2]) - WIDTH) < 0.01
    hatched = [r for r in root.iter(f"{SVG}rect") if (r.get("fill") or "").startswith("url(#hatch-t)")]
    assert len(hatched) == 2  # the legend swatch and 乙's two branches without a level
