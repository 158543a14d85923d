"""Report jobs without a database: the keeping time setting, the kinds table, how PDF cells print."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fivestar.config import ConfigError, load_settings
from fivestar.member_rounds.workbooks import WorkbookHeader
from fivestar.reports.jobs import kinds
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportKind
from fivestar.reports.jobs.tables import cell_text, provenance


def test_reports_are_kept_seven_days_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIVESTAR_REPORT_KEEP_DAYS", raising=False)
    assert load_settings().report_keep_days == 7
    monkeypatch.setenv("FIVESTAR_REPORT_KEEP_DAYS", "30")
    assert load_settings().report_keep_days == 30


@pytest.mark.parametrize("value", ["0", "-1", "366", "a week"])
def test_a_bad_keeping_time_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FIVESTAR_REPORT_KEEP_DAYS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FIVESTAR_REPORT_KEEP_DAYS" in str(caught.value)


def test_every_kind_has_a_round_formats_and_words() -> None:
    assert set(kinds.KINDS) == set(ReportKind)
    assert [spec.kind for spec in kinds.kinds_for("branch")] == [ReportKind.BRANCH_LEVELS]
    assert {value for value, _label in kinds.choices("member")} == {"member_results", "five_star", "notice_lists"}
    for kind in ReportKind:
        assert kinds.kind_label(kind)
    assert [label for _value, label in kinds.format_choices()] == ["Excel", "PDF"]
    assert {kinds.state_label(state) for state in JobState} == {"排队中", "生成中", "已完成", "失败", "已过期"}
    assert all(ReportFormat.PDF in spec.formats for spec in kinds.KINDS.values())


@pytest.mark.parametrize(
    ("value", "printed"),
    [(None, ""), (Decimal("95.00"), "95"), (Decimal("87.50"), "87.5"), (18.25, "18.25"), (3, "3"), ("五星", "五星")],
)
def test_pdf_cells_print_numbers_without_needless_zeros(value: object, printed: str) -> None:
    assert cell_text(value) == printed  # type: ignore[arg-type]


def test_every_pdf_page_ends_with_where_the_report_comes_from() -> None:
    header = WorkbookHeader(tenant="东城区直机关工委", period="2026年第一季度（2026Q1）", rules_version=3,
                          scope="全部支部", generated="2026-04-07 09:00")
    assert provenance(header) == "东城区直机关工委 · 2026年第一季度（2026Q1） · 规则第 3 版 · 生成于 2026-04-07 09:00"
