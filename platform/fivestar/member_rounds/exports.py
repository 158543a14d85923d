"""Exports of a member round: results to Excel (a branch, or the whole tenant), the tenant's five-star
list to Excel, and a branch's public-notice list to PDF.

Excel is written row by row with XlsxWriter in `constant_memory` mode from a query that streams
(`yield_per`): each row is written and forgotten, so memory stays flat whatever the tenant's size.
Each batch's final scores are read with one query that pivots them into columns (a query per
batch, never per member).
Every workbook opens with a sheet naming the tenant, the round, the rule-set version and the time it
was made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy import Integer, Select, and_, any_, bindparam, case, func, select, type_coerce
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.principal import Principal
from fivestar.audit.chain import Head, head_label, report_head
from fivestar.documents import pdf
from fivestar.i18n import _
from fivestar.member_rounds import core
from fivestar.member_rounds.committee import five_star_rows, rules_version_number, self_state_label
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    PartKind,
    RoundBranch,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.notice import NoticeView, member_level_text, period_label
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.read_ahead import read_ahead, worth_reading_ahead
from fivestar.rules import RuleSet
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BATCH = 500
# Cell text is never turned into formulas or links: a name beginning with "=" stays a name.
WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


@contextmanager
def streaming_workbook(out: IO[bytes] | str) -> Iterator[Any]:
    """An XlsxWriter workbook with `WORKBOOK_OPTIONS`, written out to `out` when the block ends.

    In `constant_memory` mode every worksheet keeps its rows in a temporary file until the workbook
    is closed. When the block fails (a lost claim, a soft time limit, a database error) the workbook
    is not written; those files are closed and deleted instead, where XlsxWriter would leave them
    open in a long-running worker and on its disk."""
    workbook = xlsxwriter.Workbook(out, WORKBOOK_OPTIONS)
    try:
        yield workbook
    except BaseException:
        for sheet in workbook.worksheets():
            handle, name = getattr(sheet, "row_data_fh", None), getattr(sheet, "row_data_filename", None)
            if handle is not None:
                handle.close()
            if name:
                Path(name).unlink(missing_ok=True)
        raise
    workbook.close()


@dataclass(frozen=True)
class ExportHeader:
    tenant: str
    period: str
    rules_version: int | None
    scope: str
    generated: str
    # The tenant's audit chain head when the report was made (README "The audit trail"): a rewrite of the
    # database afterwards no longer matches what this paper says.
    audit_head: Head | None = None


def export_header(
    session: Session, tenant: Tenant, member_round: MemberRound, scope: str
) -> ExportHeader:
    zone = ZoneInfo(tenant.timezone)
    return ExportHeader(
        tenant=tenant.name,
        period=f"{period_label(member_round.period_key)}（{member_round.period_key}）",
        rules_version=rules_version_number(session, member_round),
        scope=scope,
        generated=clock.now().astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        audit_head=report_head(session, tenant.id),
    )


def write_about(workbook: Any, header: ExportHeader, title: str, formats: dict[str, Any]) -> None:
    sheet = workbook.add_worksheet(_("说明"))
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 48)
    sheet.write_string(0, 0, title, formats["title"])
    rows = [
        (_("单位"), header.tenant),
        (_("评定期次"), header.period),
        (_("规则版本"), _("第 %(n)s 版", n=header.rules_version) if header.rules_version is not None else ""),
        (_("范围"), header.scope),
        (_("生成时间"), header.generated),
    ]
    if header.audit_head is not None:
        rows += [
            (_("审计链"), head_label(header.audit_head)),
            (_("审计链链头"), str(header.audit_head)),
        ]
    for index, (name, value) in enumerate(rows, start=2):
        sheet.write_string(index, 0, name, formats["bold"])
        sheet.write_string(index, 1, value)


def workbook_formats(workbook: Any) -> dict[str, Any]:
    return {
        "title": workbook.add_format({"bold": True, "font_size": 14}),
        "bold": workbook.add_format({"bold": True}),
        "head": workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1, "text_wrap": True}),
        "score": workbook.add_format({"num_format": "0.00"}),
    }


def _write_number(sheet: Any, row: int, col: int, value: Decimal | None, fmt: Any) -> None:
    if value is None:
        sheet.write_blank(row, col, None)
    else:
        sheet.write_number(row, col, float(value), fmt)


# --- round results ---------------------------------------------------------------------------------------


def result_headers(rules: RuleSet) -> list[str]:
    """The results sheet's column headings, in order."""
    fields = core.score_fields(rules)
    score_heads = [
        f"{f.part_label}·{f.label}" if f.criterion_key else f.label for f in fields
    ]
    return [
        _("期次"),
        _("上级组织"),
        _("支部"),
        _("党员编号"),
        _("姓名"),
        *score_heads,
        _("加分"),
        _("总分"),
        _("星级"),
        _("不予评星原因"),
        _("自评状态"),
    ]


def _final_scores(session: Session, fields: list[core.ScoreField], ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """One batch's final scores, pivoted by the database into one value per score field plus the
    bonus sum, as integer hundredths (Excel gets `hundredths / 100`, the same double as the Decimal)."""
    raw = type_coerce(EvaluationScore.score, Integer)
    columns: list[Any] = [
        func.max(
            case(
                (
                    and_(  # the most selective test first: most rows fail it and skip the others
                        EvaluationScore.criterion_key == f.criterion_key,
                        EvaluationScore.part_key == f.part_key,
                        EvaluationScore.kind == f.kind,
                    ),
                    raw,
                )
            )
        )
        for f in fields
    ]
    columns.append(func.sum(case((EvaluationScore.kind == PartKind.BONUS, raw))))
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter: the statement's text is the same for every batch, so it is compiled
        # once and psycopg prepares it on the server (an IN list of 500 parameters would be new
        # SQL to render, parse and plan for every batch).
        batch_filter = EvaluationScore.evaluation_id == any_(bindparam("ids", ids, type_=postgresql.ARRAY(Integer)))
    else:
        batch_filter = EvaluationScore.evaluation_id.in_(ids)
    rows = session.execute(
        select(EvaluationScore.evaluation_id, *columns)
        .where(batch_filter, EvaluationScore.stage == ScoreStage.FINAL)
        .group_by(EvaluationScore.evaluation_id)
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def results_statement(member_round: MemberRound) -> Select[*tuple[Any, ...]]:
    """Every active member of the round with the branch, the organisation above it and the result, in
    the order of every results list (organisation, branch, member number): the Excel export's rows
    and the report jobs' results PDF."""
    parent = aliased(Organisation)
    return (
        select(
            Evaluation.id,
            parent.name.label("parent_name"),
            Organisation.name.label("branch_name"),
            Member.member_no,
            Member.name,
            Evaluation.total,
            Evaluation.level,
            Evaluation.rated,
            Evaluation.disqualifier,
            Evaluation.disqualifier_note,
            Evaluation.self_state,
        )
        .join(Member, Evaluation.member_id == Member.id)
        .join(Organisation, Evaluation.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .where(Evaluation.round_id == member_round.id, Evaluation.status == EvaluationStatus.ACTIVE)
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code, Member.member_no,
                  Evaluation.id)
    )


def write_results(
    session: Session,
    out: IO[bytes] | str,
    tenant: Tenant,
    member_round: MemberRound,
    *,
    round_branch: RoundBranch | None = None,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the round's results (one branch's, or every branch's) as a workbook to `out`;
    returns the number of member rows written. `progress`, if given, is called with the rows
    written so far after each batch (the report jobs record it; fivestar.reports.jobs)."""
    rules = core.round_rules(session, member_round)
    fields = core.score_fields(rules)
    scope = round_branch.branch.name if round_branch is not None else _("全部支部")
    header = export_header(session, tenant, member_round, scope)
    period = member_round.period_key
    below = rules.member.below_label
    disqualifiers = {d.key: d.label for d in rules.member.disqualifiers}
    cap = rules.member.bonus.cap if rules.member.bonus is not None else None

    stmt = results_statement(member_round).execution_options(yield_per=batch)
    if round_branch is not None:
        stmt = stmt.where(Evaluation.round_branch_id == round_branch.id)
    # Labels are translated once, not once per row.
    self_labels = {state: self_state_label(state) for state in SelfState}
    level_texts: dict[tuple[int | None, bool | None, bool], str] = {}
    headings = result_headers(rules)
    first_score = 5
    bonus_col = first_score + len(fields)
    empty: tuple[Any, ...] = (None,) * (len(fields) + 1)
    cap_hundredths = int(cap * 100) if cap is not None else None

    # The members stream in batches; each batch's final scores come in one query over that batch's
    # ids (not a join with a grouped subquery, which a planner short of statistics may re-run for
    # every row).
    def batches() -> Iterator[tuple[Sequence[Any], dict[int, tuple[Any, ...]]]]:
        result = session.execute(stmt)
        try:
            for rows in result.partitions():
                yield rows, _final_scores(session, fields, [row.id for row in rows])
        finally:
            result.close()  # the server-side cursor, on the thread that reads it, even when stopped early

    written = 0
    with ExitStack() as stack:
        workbook = stack.enter_context(streaming_workbook(out))
        formats = workbook_formats(workbook)
        write_about(workbook, header, _("党员星级评定结果"), formats)
        sheet = workbook.add_worksheet(_("评定结果"))
        sheet.set_column(0, 2, 16)
        sheet.set_column(3, len(headings) - 1, 11)
        for col, text in enumerate(headings):
            sheet.write_string(0, col, text, formats["head"])
        sheet.freeze_panes(1, 5)
        # The loop runs once per member (100,000 in a large district): methods and formats are bound
        # once, and blank cells are not written at all (XlsxWriter skips a blank without a format).
        write_string, write_number = sheet.write_string, sheet.write_number
        score_format = formats["score"]
        # On PostgreSQL the next batch and its scores are read on a second thread while this one
        # writes (SQLite reads in line): the session is that thread's until the block ends. Leaving
        # the block stops that thread first, then writes the workbook out (or deletes its row files).
        batched: Iterator[tuple[Sequence[Any], dict[int, tuple[Any, ...]]]] = (
            stack.enter_context(read_ahead(batches())) if worth_reading_ahead(session) else batches()
        )
        for rows, scores in batched:
            for row in rows:
                written += 1
                r = written
                mine = scores.get(row.id, empty)
                write_string(r, 0, period)
                write_string(r, 1, row.parent_name or "")
                write_string(r, 2, row.branch_name)
                write_string(r, 3, row.member_no)
                write_string(r, 4, row.name)
                for col, value in enumerate(mine[:-1], first_score):
                    if value is not None:
                        write_number(r, col, int(value) / 100, score_format)
                bonus = mine[-1]
                if bonus is not None:
                    if cap_hundredths is not None:
                        bonus = min(int(bonus), cap_hundredths)  # as the rule engine applies it
                    write_number(r, bonus_col, int(bonus) / 100, score_format)
                if row.total is not None:
                    write_number(r, bonus_col + 1, float(row.total), score_format)
                level_key = (row.level, row.rated, bool(row.disqualifier))
                level_text = level_texts.get(level_key)
                if level_text is None:
                    level_text = member_level_text(row.level, row.rated, row.disqualifier, below)
                    level_texts[level_key] = level_text
                write_string(r, bonus_col + 2, level_text)
                reason = ""
                if row.disqualifier:
                    reason = disqualifiers.get(row.disqualifier, row.disqualifier)
                    if row.disqualifier_note:
                        reason = f"{reason}：{row.disqualifier_note}"
                write_string(r, bonus_col + 3, reason)
                write_string(r, bonus_col + 4, self_labels[row.self_state])
            if progress is not None:
                progress(written)
    return written


# --- the tenant's five-star list ------------------------------------------------------------------------


def write_five_star(
    session: Session, out: IO[bytes] | str, tenant: Tenant, principal: Principal, member_round: MemberRound
) -> int:
    """The five-star members of every branch that reported, as one table."""
    header = export_header(session, tenant, member_round, _("已上报的支部"))
    rows = five_star_rows(session, principal, member_round)
    with streaming_workbook(out) as workbook:
        formats = workbook_formats(workbook)
        write_about(workbook, header, _("五星党员名单"), formats)
        sheet = workbook.add_worksheet(_("五星党员"))
        headings = [_("序号"), _("姓名"), _("党员编号"), _("支部"), _("上级组织"), _("总分")]
        sheet.set_column(0, 0, 6)
        sheet.set_column(1, 2, 12)
        sheet.set_column(3, 4, 24)
        for col, text in enumerate(headings):
            sheet.write_string(0, col, text, formats["head"])
        for index, row in enumerate(rows, start=1):
            sheet.write_number(index, 0, index)
            sheet.write_string(index, 1, row.name)
            sheet.write_string(index, 2, row.member_no)
            sheet.write_string(index, 3, row.branch_name)
            sheet.write_string(index, 4, row.parent_name)
            _write_number(sheet, index, 5, row.total, formats["score"])
    return len(rows)


# --- the public-notice list as PDF ---------------------------------------------------------------------


def notice_pdf(view: NoticeView, tenant_name: str, rules_version: int | None, link: str | None = None) -> bytes:
    """The branch's public notice on A4, with the same content as the public page: who publishes
    it, the period, the members and their levels, the notice period and how to object."""
    from fpdf.fonts import FontFace

    title = _("%(branch)s党员星级评定结果公示", branch=view.branch_name)
    provenance = " · ".join(
        part
        for part in (
            tenant_name,
            view.round.period_key,
            _("规则第 %(n)s 版", n=rules_version) if rules_version is not None else "",
        )
        if part
    )
    doc = pdf.new_document(size="A4", title=title, subject=view.period, author=tenant_name, footer=provenance)
    doc.add_page()
    y = 16.0
    y += pdf.centred(doc, tenant_name, y=y, size=11, colour=pdf.DARK_RED)
    y += 2
    y += pdf.centred(doc, title, y=y, size=17, colour=pdf.RED)
    y += 1
    y += pdf.centred(doc, view.period, y=y, size=11, colour=pdf.MUTED)
    doc.set_y(y + 4)
    doc.set_font(pdf.FONT_FAMILY, size=11)
    doc.set_text_color(*pdf.INK)
    when = _(
        "公示时间：%(start)s 至 %(end)s（%(length)s）",
        start=view.starts.strftime("%Y-%m-%d %H:%M"),
        end=view.ends.strftime("%Y-%m-%d %H:%M"),
        length=view.length,
    )
    doc.multi_cell(0, 6, when, new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    plain = FontFace(family=pdf.FONT_FAMILY, emphasis="", fill_color=(242, 242, 242))
    with doc.table(
        col_widths=(14, 36, 70, 36), text_align=("CENTER", "CENTER", "LEFT", "CENTER"), line_height=7.5,
        headings_style=plain,
    ) as table:
        heading = table.row()
        for text in (_("序号"), _("党员编号"), _("姓名"), _("星级")):
            heading.cell(text)
        for index, row in enumerate(view.rows, start=1):
            cells = table.row()
            cells.cell(str(index))
            cells.cell(row.member_no)
            cells.cell(row.name)
            cells.cell(row.level_text)
    doc.ln(5)
    doc.set_font(pdf.FONT_FAMILY, size=10)
    doc.multi_cell(
        0, 5.5,
        _("如对上述评定结果有异议，请在公示期内通过公示页面提出（可不署名）。"),
        new_x="LMARGIN", new_y="NEXT",
    )
    if link:
        doc.set_text_color(*pdf.MUTED)
        doc.set_font(pdf.FONT_FAMILY, size=8)
        doc.multi_cell(0, 4.5, link, new_x="LMARGIN", new_y="NEXT")
    return pdf.finish(doc)


def export_filename(*parts: str) -> str:
    """A download name from its parts, without characters file systems refuse."""
    text = "-".join(part for part in parts if part)
    return "".join("_" if ch in '\\/:*?"<>|' else ch for ch in text)


def generated_stamp(tenant: Tenant) -> str:
    return clock.now().astimezone(ZoneInfo(tenant.timezone)).strftime("%Y%m%d-%H%M")


__all__ = [
    "WORKBOOK_OPTIONS",
    "XLSX_MIMETYPE",
    "ExportHeader",
    "export_filename",
    "export_header",
    "notice_pdf",
    "result_headers",
    "workbook_formats",
    "write_about",
    "write_five_star",
    "write_results",
]
