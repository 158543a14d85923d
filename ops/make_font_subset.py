"""Regenerate the Chinese font that Fivestar embeds in its PDFs (run by hand, at build time).

    python ops/make_font_subset.py [--source PATH] [--charset gbk|gb2312]

Source: WenQuanYi Micro Hei 0.2.0-beta (文泉驿微米黑), as shipped by Debian's `fonts-wqy-microhei`
package at /usr/share/fonts/truetype/wqy/wqy-microhei.ttc (upstream: the WenQuanYi project,
wqy-microhei-0.2.0-beta.tar.gz). Licence: Apache-2.0, or GPL-3+ with the font-embedding exception;
we use it under Apache-2.0 (LICENSE-Apache-2.0.txt and NOTICE.txt sit beside the output).

What it keeps: the first face of the collection (the proportional one), the characters of GBK by
default — every hanzi of GB2312 (≈6,763) and the ≈14,000 more of GBK that personal names often need
(喆, 堃, 珺 …) — plus ASCII, general and CJK punctuation, full-width forms and ★☆. Hinting, layout
tables and vertical metrics are dropped: PDFs need outlines and advance widths only. The output is
TrueType (glyf outlines), which PDF embeds as FontFile2; each PDF then carries only the glyphs it
uses (fivestar.documents.pdf subsets again when writing).

The result is deterministic (no timestamps), so running the script again gives the same bytes;
tests/unit/test_pdf.py checks the committed file covers what this script promises.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
OUTPUT = REPO / "platform" / "fivestar" / "reports" / "fonts" / "wqy-microhei-subset.ttf"

EXTRA_RANGES = (
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00FF),  # Latin-1 punctuation and letters (°, ±, ×, ÷, é …) where the font has them
    (0x2010, 0x203F),  # general punctuation: dashes, quotes, …, ‰, ※
    (0x2460, 0x2473),  # ①…⑳
    (0x2605, 0x2606),  # ★ ☆
    (0x3000, 0x303F),  # CJK symbols and punctuation: 、。《》「」【】〔〕
    (0xFF01, 0xFF5E),  # full-width forms: （），：；！？
)


def charset(name: str) -> set[int]:
    """Code points of a Chinese national character set (every valid double-byte sequence)."""
    if name == "gb2312":
        leads, trails = range(0xA1, 0xF8), range(0xA1, 0xFF)
    elif name == "gbk":
        leads, trails = range(0x81, 0xFF), range(0x40, 0xFF)
    else:
        raise SystemExit(f"unknown charset {name!r}")
    points: set[int] = set()
    for lead in leads:
        for trail in trails:
            try:
                text = bytes((lead, trail)).decode(name)
            except UnicodeDecodeError:
                continue
            points.update(ord(ch) for ch in text)
    return points


def wanted(name: str) -> set[int]:
    # GBK includes GB2312, but the two codecs map a few symbols differently (A1A4: · U+00B7 in GBK,
    # ・ U+30FB in GB2312): keep both readings.
    points = charset(name) | charset("gb2312")
    for low, high in EXTRA_RANGES:
        points.update(range(low, high + 1))
    return points


def build(source: Path, output: Path, charset_name: str) -> TTFont:
    if source.suffix.lower() == ".ttc":
        font = TTCollection(str(source), recalcTimestamp=False).fonts[0]
    else:
        font = TTFont(str(source), recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []  # no shaping tables: Chinese needs none, and fpdf2 does not use them
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.glyph_names = False
    options.name_IDs = ["*"]  # keep the copyright, licence and trademark records
    options.name_languages = ["*"]
    options.drop_tables += ["FFTM", "GDEF", "GPOS", "GSUB", "vhea", "vmtx", "gasp"]
    subsetter = subset.Subsetter(options)
    available = set(font.getBestCmap())
    subsetter.populate(unicodes=sorted(wanted(charset_name) & available))
    subsetter.subset(font)
    output.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(output))
    return font


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="wqy-microhei.ttc (or a .ttf)")
    parser.add_argument("--charset", default="gbk", choices=["gbk", "gb2312"])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"{args.source} not found: apt-get install fonts-wqy-microhei", file=sys.stderr)
        return 1
    font = build(args.source, args.output, args.charset)
    data = args.output.read_bytes()
    print(f"{args.output}: {len(data):,} bytes, {len(font.getBestCmap()):,} characters, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
