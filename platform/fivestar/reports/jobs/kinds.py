"""What can be asked for: each report kind, the round it is about and the formats it comes in, and
the words people read for kinds, formats and states.

One table, so the round pages' "生成报表" forms, the service's checks and the list page never
disagree about what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fivestar.i18n import _
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportKind

RoundType = Literal["member", "branch"]
BOTH = (ReportFormat.XLSX, ReportFormat.PDF)


@dataclass(frozen=True)
class KindSpec:
    kind: ReportKind
    round_type: RoundType  # the round the report is about: a member round or a branch round
    formats: tuple[ReportFormat, ...]


KINDS: dict[ReportKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(ReportKind.MEMBER_RESULTS, "member", BOTH),
        KindSpec(ReportKind.FIVE_STAR, "member", BOTH),
        KindSpec(ReportKind.NOTICE_LISTS, "member", BOTH),
        KindSpec(ReportKind.BRANCH_LEVELS, "branch", BOTH),
    )
}


def kinds_for(round_type: RoundType) -> list[KindSpec]:
    return [spec for spec in KINDS.values() if spec.round_type == round_type]


def kind_label(kind: ReportKind) -> str:
    return {
        ReportKind.MEMBER_RESULTS: _("党员星级评定结果"),
        ReportKind.FIVE_STAR: _("五星党员名单"),
        ReportKind.NOTICE_LISTS: _("公示名单"),
        ReportKind.BRANCH_LEVELS: _("党支部星级（按组织）"),
    }[kind]


def format_label(fmt: ReportFormat) -> str:
    return {ReportFormat.XLSX: "Excel", ReportFormat.PDF: "PDF"}[fmt]


def state_label(state: JobState) -> str:
    return {
        JobState.QUEUED: _("排队中"),
        JobState.RUNNING: _("生成中"),
        JobState.DONE: _("已完成"),
        JobState.FAILED: _("失败"),
        JobState.EXPIRED: _("已过期"),
    }[state]


def choices(round_type: RoundType) -> list[tuple[str, str]]:
    """(value, label) of the kinds a round page offers, for its select."""
    return [(spec.kind.value, kind_label(spec.kind)) for spec in kinds_for(round_type)]


def format_choices() -> list[tuple[str, str]]:
    return [(fmt.value, format_label(fmt)) for fmt in ReportFormat]


__all__ = [
    "KINDS",
    "KindSpec",
    "RoundType",
    "choices",
    "format_choices",
    "format_label",
    "kind_label",
    "kinds_for",
    "state_label",
]
