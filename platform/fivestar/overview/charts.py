"""Charts drawn on the server as SVG: no JavaScript, nothing fetched from another host, printable.

One drawing, the horizontal stacked bar: a row per organisation, period, year, indicator or round,
its label on a line of its own above the bar (so long Chinese names never squeeze the bars on a
phone), each segment a series in a colour that stays apart from its neighbours in greyscale (the
palettes in overview.dashboard run from dark to light), the count written inside every segment wide
enough to hold it, the row's total at the end of the label, and a legend in words. The page shows the
same numbers as a table beside the drawing, so nothing depends on telling colours apart.

The SVG has a `viewBox` 360 units wide and scales to its container; at 375 px a unit is about a
pixel, so 12-unit text stays legible.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from fivestar.overview.dashboard import Chart

WIDTH = 360
FONT = 12
BAR = 18
ROW_GAP = 10
LABEL_GAP = 4
SWATCH = 11
LEGEND_LINE = 18
MIN_SEGMENT_FOR_TEXT = 18


def text_width(text: str, size: float = FONT) -> float:
    """Roughly how wide `text` is: a CJK character is a full em, anything else about 0.6 em."""
    return sum(size if ord(ch) > 0x2E7F else size * 0.6 for ch in text)


def _ink_on(colour: str) -> str:
    """Black or white text, whichever reads on the fill (by the fill's luminance)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else "#fff"


def _hatch_id(chart: Chart) -> str:
    return f"hatch-{chart.key}"


def _hatch(chart: Chart) -> str:
    """A diagonal hatching, drawn over the colour of `hatched` series (ids unique per chart on a page)."""
    return (
        f'<defs><pattern id="{_hatch_id(chart)}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="none"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="#333" stroke-width="1.5"/></pattern></defs>'
    )


def _box(
    chart: Chart,
    colour: str,
    hatched: bool,
    x: float,
    y: float,
    width: float,
    height: float,
    stroke: str,
    title: str = "",
) -> str:
    """A filled rectangle, hatched on top when asked, with an optional tooltip."""
    tip = f"<title>{escape(title)}</title>" if title else ""
    box = (
        f'<rect x="{x:.2f}" y="{y:.1f}" width="{width:.2f}" height="{height}" fill="{colour}" '
        f'stroke="{stroke}" stroke-width="0.5">{tip}</rect>'
    )
    if hatched:
        box += (
            f'<rect x="{x:.2f}" y="{y:.1f}" width="{width:.2f}" height="{height}" '
            f'fill="url(#{_hatch_id(chart)})" opacity="0.35"/>'
        )
    return box


def _legend(chart: Chart) -> tuple[list[str], float]:
    parts: list[str] = []
    x, y = 0.0, 0.0
    for series in chart.series:
        width = SWATCH + 4 + text_width(series.label) + 12
        if x and x + width > WIDTH:
            x, y = 0.0, y + LEGEND_LINE
        parts.append(
            _box(chart, series.colour, series.hatched, x, y + 2, SWATCH, SWATCH, "#555")
            + f'<text x="{x + SWATCH + 4:.1f}" y="{y + 12:.1f}" font-size="{FONT}">{escape(series.label)}</text>'
        )
        x += width
    return parts, y + LEGEND_LINE + 6


def render(chart: Chart) -> Markup:
    """The chart as an inline `<svg>` element (safe markup: every label is escaped)."""
    parts, top = _legend(chart)
    scale_to = max((row.total for row in chart.rows), default=0)
    y = top
    for row in chart.rows:
        total = row.total
        caption = f"{row.label} · {total}"
        parts.append(f'<text x="0" y="{y + FONT:.1f}" font-size="{FONT}">{escape(caption)}</text>')
        y += FONT + LABEL_GAP
        full = total if chart.whole else scale_to
        parts.append(
            f'<rect x="0" y="{y:.1f}" width="{WIDTH}" height="{BAR}" fill="#fafafa" stroke="#ddd" stroke-width="0.5"/>'
        )
        x = 0.0
        for series, value in zip(chart.series, row.values, strict=True):
            if not value or not full:
                continue
            width = WIDTH * value / full
            title = f"{row.label} {series.label}: {value}"
            parts.append(_box(chart, series.colour, series.hatched, x, y, width, BAR, "#fff", title))
            if width >= MIN_SEGMENT_FOR_TEXT or width >= text_width(str(value)) + 4:
                parts.append(
                    f'<text x="{x + width / 2:.2f}" y="{y + BAR - 5:.1f}" font-size="{FONT - 1}" '
                    f'text-anchor="middle" fill="{_ink_on(series.colour)}">{value}</text>'
                )
            x += width
        y += BAR + ROW_GAP
    height = max(y, top + 4)
    svg = (
        f'<svg class="chart-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-label="{escape(chart.title)}" font-family="sans-serif">'
        f"<title>{escape(chart.title)}</title>{_hatch(chart)}{''.join(parts)}</svg>"
    )
    return Markup(svg)  # noqa: S704 - built above from escaped labels and numbers only


__all__ = ["render", "text_width"]
