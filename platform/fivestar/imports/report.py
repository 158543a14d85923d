"""What an import found and did: every problem with its place in the workbook, and the counts.

Problems are reported as (sheet, row as Excel numbers it, column header, reason). All of them are
counted; only the first `MAX_KEPT_ISSUES` are kept, so a workbook of 50,000 bad rows cannot use up
the memory of the web process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fivestar.imports.columns import SHEET_COLUMNS, SHEET_ORDER

MAX_KEPT_ISSUES = 5_000


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One problem. `sheet` is "" for the file itself; `row`/`column` are None when not about a cell."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def sort_key(self) -> tuple[int, int, int]:
        """File problems first, then by sheet, row and the column's place in the sheet."""
        order = SHEET_ORDER.index(self.sheet) + 1 if self.sheet in SHEET_ORDER else 0
        headers = [column.header for column in SHEET_COLUMNS.get(self.sheet, ())]
        column = headers.index(self.column) if self.column in headers else -1
        return (order, self.row or 0, column)

    def as_line(self) -> str:
        where = [self.sheet or "-", str(self.row) if self.row is not None else "-", self.column or "-"]
        return "\t".join([*where, self.message])


class IssueCollector:
    """Counts every problem, keeps the first few thousand."""

    def __init__(self, limit: int = MAX_KEPT_ISSUES) -> None:
        self.limit = limit
        self.kept: list[ImportIssue] = []
        self.count = 0

    def add(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.count += 1
        if len(self.kept) < self.limit:
            self.kept.append(ImportIssue(sheet, row, column, message))

    def extend(self, other: IssueCollector) -> None:
        for issue in other.kept:
            self.add(issue.sheet, issue.row, issue.column, issue.message)
        self.count += other.count - len(other.kept)

    def __bool__(self) -> bool:
        return self.count > 0

    def sorted(self) -> list[ImportIssue]:
        return sorted(self.kept, key=ImportIssue.sort_key)


@dataclass(slots=True)
class SheetCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "moved": self.moved}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SheetCounts:
        data = data or {}
        return cls(**{key: int(data.get(key, 0)) for key in ("created", "updated", "unchanged", "moved")})


@dataclass(slots=True)
class ImportReport:
    """The outcome of one import. `ok` is True only when nothing was wrong (and so something was written)."""

    file_name: str
    sha256: str
    size: int
    issues: list[ImportIssue] = field(default_factory=list)
    issue_count: int = 0
    file_problem: bool = False  # the file itself is unusable (not an xlsx, corrupt, empty)
    orgs: SheetCounts = field(default_factory=SheetCounts)
    members: SheetCounts = field(default_factory=SheetCounts)
    dry_run: bool = False
    event_id: int | None = None  # the `import.run` audit event, when written

    @property
    def ok(self) -> bool:
        return self.issue_count == 0

    def summary(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "sha256": self.sha256,
            "size": self.size,
            "orgs": self.orgs.as_dict(),
            "members": self.members.as_dict(),
        }
