"""Reading an uploaded workbook into plain rows, without a database and without trusting the file.

The file is checked by its content, not its name: an .xlsx is a zip archive holding
`xl/workbook.xml`. Old .xls files, encrypted workbooks, OpenDocument sheets, CSV and anything
corrupt are refused with a message that says what to do, never an exception that becomes a 500 —
openpyxl raises a zoo of exception types on bad input (BadZipFile, KeyError, XML parse errors,
ValueError, TypeError…), so opening and streaming are guarded as a whole. Decompressed size is
bounded so a small "zip bomb" cannot exhaust memory, and rows beyond a configurable cap stop the
read. openpyxl's `read_only` mode streams the sheet XML instead of building every cell object.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fivestar.i18n import _
from fivestar.imports.columns import DEFAULT_MAX_ROWS, SHEET_COLUMNS, SHEET_ORDER, Column, normalise_header
from fivestar.imports.report import IssueCollector

MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024  # 50,000 rows of sheet XML are ~40 MB
MAX_BLANK_RUN = 10_000  # a run of empty (often merely formatted) rows this long ends the sheet
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(slots=True)
class RawSheet:
    """A data sheet as read: where its header is, which columns it has, and the non-empty rows.

    `rows` holds `(excel_row_number, values)` with `values[i]` the cell under `columns[i]` of the
    sheet's specification (None when that column is absent or the cell is blank).
    """

    name: str
    columns: tuple[Column, ...]
    header_row: int = 1
    present: frozenset[str] = frozenset()
    rows: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.present

    def index(self, key: str) -> int:
        for position, column in enumerate(self.columns):
            if column.key == key:
                return position
        raise KeyError(key)


@dataclass(slots=True)
class RawWorkbook:
    sheets: dict[str, RawSheet] = field(default_factory=dict)
    issues: IssueCollector = field(default_factory=IssueCollector)
    file_problem: bool = False

    def sheet(self, name: str) -> RawSheet | None:
        return self.sheets.get(name)

    @property
    def row_count(self) -> int:
        return sum(len(sheet.rows) for sheet in self.sheets.values())


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def sniff(data: bytes) -> str | None:
    """Why these bytes are not an .xlsx workbook we can open, or None when they look like one."""
    if not data:
        return _("文件是空的，请选择填好的 Excel 工作簿（.xlsx）。")
    if data.startswith(_OLE_MAGIC):
        return _("这是旧版 Excel（.xls）或加密的文件，请在 Excel 中“另存为”Excel 工作簿（.xlsx）并取消密码后再导入。")
    if not data.startswith(_ZIP_MAGIC):
        return _("文件不是 Excel 工作簿（.xlsx），请下载模板填写后再导入。")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return _("文件已损坏，无法作为 Excel 工作簿（.xlsx）打开。")
    if "xl/workbook.xml" not in names:
        if "content.xml" in names:
            return _("这是 OpenDocument 表格（.ods），请在表格软件中另存为 Excel 工作簿（.xlsx）后再导入。")
        return _("文件不是 Excel 工作簿（.xlsx），请下载模板填写后再导入。")
    if total > MAX_UNCOMPRESSED_BYTES:
        return _("文件解压后过大，请分批导入。")
    return None


def read_workbook(data: bytes, *, max_rows: int = DEFAULT_MAX_ROWS) -> RawWorkbook:
    """Read the 组织 and 党员 sheets of `data`. Problems go into `result.issues`; nothing raises."""
    result = RawWorkbook()
    problem = sniff(data)
    if problem:
        result.issues.add("", None, None, problem)
        result.file_problem = True
        return result
    try:
        with warnings.catch_warnings():
            # openpyxl warns about features it drops (extensions, styles); they do not matter here.
            warnings.simplefilter("ignore")
            _read_sheets(data, result, max_rows)
    except Exception:  # noqa: BLE001 - any failure of a third-party parser on user bytes is "corrupt file"
        result.sheets.clear()
        result.issues = IssueCollector()
        result.issues.add(
            "", None, None, _("无法读取该 Excel 文件，文件可能已损坏。请在 Excel 中打开并重新保存后再试。")
        )
        result.file_problem = True
        return result
    if not result.sheets:
        result.issues.add("", None, None, _("工作簿中没有“组织”或“党员”工作表，请使用导入模板。"))
        return result
    if result.row_count == 0 and not result.issues:
        result.issues.add("", None, None, _("工作簿中没有可导入的数据：请在“组织”或“党员”工作表中填写后再导入。"))
    return result


def _read_sheets(data: bytes, result: RawWorkbook, max_rows: int) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        names = {str(name).strip(): name for name in workbook.sheetnames}
        for sheet_name in SHEET_ORDER:
            actual = names.get(sheet_name)
            if actual is None:
                continue
            worksheet = workbook[actual]
            if hasattr(worksheet, "reset_dimensions"):
                # Some writers store a wrong <dimension>; without this openpyxl stops reading there.
                worksheet.reset_dimensions()
            raw = _read_sheet(sheet_name, worksheet.iter_rows(values_only=True), result.issues, max_rows)
            result.sheets[sheet_name] = raw
    finally:
        workbook.close()


def _read_sheet(name: str, rows: Iterator[tuple[Any, ...]], issues: IssueCollector, max_rows: int) -> RawSheet:
    spec = SHEET_COLUMNS[name]
    sheet = RawSheet(name=name, columns=spec)
    positions: list[int | None] = []
    header_found = False
    blank_run = 0
    for number, row in enumerate(rows, start=1):
        if all(_is_blank(value) for value in row):
            blank_run += 1
            if blank_run >= MAX_BLANK_RUN:
                break
            continue
        blank_run = 0
        if not header_found:
            header_found = True
            sheet.header_row = number
            positions = _match_headers(sheet, row, issues)
            if any(column.required and not sheet.has(column.key) for column in spec):
                return sheet  # rows cannot be read meaningfully without the required columns
            continue
        if len(sheet.rows) >= max_rows:
            message = _("“%(sheet)s”工作表超过 %(max)d 行数据的上限，请分批导入。", sheet=name, max=max_rows)
            issues.add(name, number, None, message)
            return sheet
        values = tuple(
            None if position is None or position >= len(row) or _is_blank(row[position]) else row[position]
            for position in positions
        )
        if all(value is None for value in values):
            continue  # only columns we do not read are filled in
        sheet.rows.append((number, values))
    return sheet


def _match_headers(sheet: RawSheet, row: tuple[Any, ...], issues: IssueCollector) -> list[int | None]:
    found: dict[str, int] = {}
    by_header = {column.header: column for column in sheet.columns}
    for position, value in enumerate(row):
        header = normalise_header(value)
        column = by_header.get(header)
        if column is None:
            continue
        if column.key in found:
            message = _("列“%(header)s”出现了不止一次。", header=column.header)
            issues.add(sheet.name, sheet.header_row, column.header, message)
            continue
        found[column.key] = position
    for column in sheet.columns:
        if column.required and column.key not in found:
            issues.add(sheet.name, sheet.header_row, column.header, _("缺少必填列“%(header)s”。", header=column.header))
    sheet.present = frozenset(found)
    return [found.get(column.key) for column in sheet.columns]
