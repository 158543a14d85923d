"""Writing a report that is one table — as an Excel workbook or as a PDF — row by row.

A `Table` is plain data: the header (tenant, round, rule-set version, scope, time of generation),
the columns and an *iterator* of rows, usually a streaming query. The writers consume the rows one
at a time and forget them, calling `progress(rows so far)` as they go, so an Excel file of any size
is written in flat memory (XlsxWriter `constant_memory`, the same options and about-sheet as the
member round's workbooks: `member_rounds/workbooks.py`).

PDF is different: fpdf2 keeps the whole document until it is finished, so memory grows with the
pages. The service refuses PDFs above `PDF_MAX_ROWS` rows (Excel has no such limit).

Both formats name where the data comes from: the workbook's first sheet (说明) and the PDF's heading
and the footer of every page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import IO

from fpdf import FPDF
from fpdf.enums import Align

from fivestar.audit.chain import head_label
from fivestar.documents import pdf
from fivestar.i18n import _
from fivestar.member_rounds.workbooks import WorkbookHeader, streaming_workbook, workbook_formats, write_about

Cell = str | Decimal | int | float | None
Progress = Callable[[int], None]

TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Column:
    heading: str
    width: float  # Excel: characters; PDF: the share of the line, in the same unit
    number: bool = False  # a score or total: an Excel number with two decimals, right-aligned in PDF


@dataclass(frozen=True)
class Table:
    title: str  # what the report is: 五星党员名单
    sheet_name: str  # the Excel sheet of the rows
    header: WorkbookHeader  # tenant, round, rule-set version, scope, time of generation
    columns: Sequence[Column]
    rows: Iterable[Sequence[Cell]]
    total: int  # how many rows to expect (for the progress percentage)
    # PDF: the rows come ordered by these columns; each new combination of their values starts a
    # group heading (an organisation, a branch and its notice period), and the columns themselves
    # are not repeated on every line. Excel keeps them as ordinary columns (people filter by them).
    group_columns: tuple[int, ...] = ()


def _no_progress(_rows: int) -> None:
    return None


# --- Excel -----------------------------------------------------------------------------------------


def write_xlsx(out: IO[bytes] | str, table: Table, progress: Progress = _no_progress) -> int:
    """The table as a workbook: the about-sheet, then one sheet of rows under a heading row."""
    written = 0
    with streaming_workbook(out) as workbook:
        formats = workbook_formats(workbook)
        write_about(workbook, table.header, table.title, formats)
        sheet = workbook.add_worksheet(table.sheet_name)
        for index, column in enumerate(table.columns):
            sheet.set_column(index, index, column.width)
            sheet.write_string(0, index, column.heading, formats["head"])
        sheet.freeze_panes(1, 0)
        numbers = [column.number for column in table.columns]
        score = formats["score"]
        for row in table.rows:
            written += 1
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, str):
                    sheet.write_string(written, col, value)
                else:
                    sheet.write_number(written, col, float(value), score if numbers[col] else None)
            progress(written)
    return written


# --- PDF -------------------------------------------------------------------------------------------

PAGE_WIDTH, PAGE_HEIGHT = pdf.PAGE_SIZES["A4"][1], pdf.PAGE_SIZES["A4"][0]  # landscape
MARGIN = 12.0
ROW = 7.0
HEAD_ROW = 8.0
GROUP_ROW = 8.0
BOTTOM = PAGE_HEIGHT - MARGIN - 6.0  # room for the footer
HEAD_FILL: pdf.Colour = (242, 242, 242)
GROUP_FILL: pdf.Colour = (253, 232, 235)
LINE: pdf.Colour = (215, 215, 215)
TEXT_SIZE = 9.5


def cell_text(value: Cell) -> str:
    """A cell as printed: numbers without needless zeros (95, 87.5), nothing for a blank."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.quantize(TWO_PLACES).normalize(), "f")
    if isinstance(value, float):
        return format(Decimal(str(value)).quantize(TWO_PLACES).normalize(), "f")
    return str(value)


def provenance(header: WorkbookHeader) -> str:
    """tenant · round · rule-set version · time of generation: the line every page ends with."""
    parts = [
        header.tenant,
        header.period,
        _("规则第 %(n)s 版", n=header.rules_version) if header.rules_version is not None else "",
        _("生成于 %(time)s", time=header.generated),
        head_label(header.audit_head) if header.audit_head is not None else "",
    ]
    return " · ".join(part for part in parts if part)


class _PdfWriter:
    def __init__(self, doc: FPDF, table: Table) -> None:
        self.doc = doc
        self.table = table
        self.shown = [i for i in range(len(table.columns)) if i not in table.group_columns]
        share = sum(table.columns[i].width for i in self.shown) or 1.0
        usable = PAGE_WIDTH - 2 * MARGIN
        self.widths = [usable * table.columns[i].width / share for i in self.shown]
        self.y = MARGIN
        self.group: str | None = None
        self.stripe = False

    def text(self, value: str, x: float, width: float, height: float, *, size: float = TEXT_SIZE,
             colour: pdf.Colour = pdf.INK, align: Align = Align.L) -> None:
        doc = self.doc
        doc.set_font(pdf.FONT_FAMILY, size=size)
        if value and doc.get_string_width(value) > width - 2.0:
            pdf.fit_size(doc, value, width=width - 2.0, size=size, minimum=5.5)
        doc.set_text_color(*colour)
        doc.set_xy(x + 1.0, self.y)
        doc.cell(max(width - 2.0, 1.0), height, value, align=align)

    def heading_block(self) -> None:
        doc, header = self.doc, self.table.header
        doc.set_fill_color(*pdf.RED)
        doc.rect(0, 0, PAGE_WIDTH, 4, style="F")
        y = 9.0
        y += pdf.centred(doc, header.tenant, y=y, size=12, colour=pdf.DARK_RED)
        y += pdf.centred(doc, f"{header.period} {self.table.title}", y=y + 1, size=17, colour=pdf.RED) + 1
        facts = [
            _("评定期次：%(period)s", period=header.period),
            _("规则版本：第 %(n)s 版", n=header.rules_version) if header.rules_version is not None else "",
            _("范围：%(scope)s", scope=header.scope) if header.scope else "",
            _("生成时间：%(time)s", time=header.generated),
            _("共 %(n)d 行", n=self.table.total),
        ]
        y += pdf.centred(doc, "　".join(part for part in facts if part), y=y + 1, size=9, colour=pdf.MUTED) + 2
        if header.audit_head is not None:
            # The whole head, so a reader can check the chain against it (fivestar audit verify --head).
            line = _("审计链链头：%(head)s", head=str(header.audit_head))
            y += pdf.centred(doc, line, y=y - 1, size=7, colour=pdf.MUTED) + 1
        self.y = y

    def column_heads(self) -> None:
        doc = self.doc
        doc.set_fill_color(*HEAD_FILL)
        doc.rect(MARGIN, self.y, PAGE_WIDTH - 2 * MARGIN, HEAD_ROW, style="F")
        x = MARGIN
        for index, width in zip(self.shown, self.widths, strict=True):
            column = self.table.columns[index]
            self.text(column.heading, x, width, HEAD_ROW, size=9.5, align=Align.R if column.number else Align.L)
            x += width
        self.y += HEAD_ROW
        self.stripe = False

    def new_page(self) -> None:
        self.doc.add_page()
        self.y = MARGIN
        self.column_heads()
        if self.group is not None:
            self.group_row(self.group, continued=True)

    def room_for(self, height: float) -> bool:
        return self.y + height <= BOTTOM

    def group_row(self, name: str, *, continued: bool = False) -> None:
        doc = self.doc
        doc.set_fill_color(*GROUP_FILL)
        doc.rect(MARGIN, self.y, PAGE_WIDTH - 2 * MARGIN, GROUP_ROW, style="F")
        doc.set_fill_color(*pdf.RED)
        doc.rect(MARGIN, self.y, 1.5, GROUP_ROW, style="F")
        title = name or _("（无上级组织）")
        if continued:
            title = f"{title}（{_('续')}）"
        self.text(title, MARGIN + 3, PAGE_WIDTH - 2 * MARGIN - 3, GROUP_ROW, size=10.5, colour=pdf.DARK_RED)
        self.y += GROUP_ROW
        self.stripe = False

    def row(self, values: Sequence[Cell]) -> None:
        if self.table.group_columns:
            group = " · ".join(text for text in (cell_text(values[i]) for i in self.table.group_columns) if text)
            if group != self.group:
                if not self.room_for(GROUP_ROW + ROW):
                    self.group = None
                    self.new_page()
                self.group = group
                self.group_row(group)
        if not self.room_for(ROW):
            self.new_page()
        doc = self.doc
        if self.stripe:
            doc.set_fill_color(250, 250, 250)
            doc.rect(MARGIN, self.y, PAGE_WIDTH - 2 * MARGIN, ROW, style="F")
        self.stripe = not self.stripe
        x = MARGIN
        for index, width in zip(self.shown, self.widths, strict=True):
            number = self.table.columns[index].number
            self.text(cell_text(values[index]), x, width, ROW, align=Align.R if number else Align.L)
            x += width
        doc.set_draw_color(*LINE)
        doc.set_line_width(0.15)
        doc.line(MARGIN, self.y + ROW, PAGE_WIDTH - MARGIN, self.y + ROW)
        self.y += ROW


def render_pdf(table: Table, progress: Progress = _no_progress) -> tuple[bytes, int]:
    """The table as A4 landscape pages: the heading on the first, column heads (and the current
    group, marked 续) at the top of every page, the provenance line at the foot of every page."""
    header = table.header
    doc = pdf.new_document(
        size="A4",
        landscape=True,
        title=f"{header.period} {table.title}",
        subject=table.title,
        author=header.tenant,
        footer=provenance(header),
        margin=MARGIN,
    )
    written = 0
    try:
        doc.set_auto_page_break(auto=False)
        doc.add_page()
        writer = _PdfWriter(doc, table)
        writer.heading_block()
        writer.column_heads()
        for values in table.rows:
            writer.row(values)
            written += 1
            progress(written)
        if not written:
            writer.text(_("没有符合条件的记录。"), MARGIN, PAGE_WIDTH - 2 * MARGIN, ROW, colour=pdf.MUTED)
    except BaseException:
        pdf.close(doc)
        raise
    return pdf.finish(doc), written


def write_pdf(out: IO[bytes], table: Table, progress: Progress = _no_progress) -> int:
    data, written = render_pdf(table, progress)
    out.write(data)
    return written


__all__ = ["Cell", "Column", "Progress", "Table", "cell_text", "provenance", "render_pdf", "write_pdf", "write_xlsx"]

