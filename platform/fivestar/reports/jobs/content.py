"""What each report kind contains, and how it is written.

`plan(session, tenant, job)` checks that what the job is about still exists in the tenant, counts
the rows to come (for the progress percentage), refuses a PDF too long to build in memory, and
returns a `Plan` whose `write(out, progress)` produces the file. The rows come from set-based queries
that stream (`yield_per`): a query per batch of rows at most, never one per member.

The member round's results in Excel are exactly the committee page's export
(`member_rounds.workbooks.write_results`, every score column); the other reports are one `Table`
each (tables.py), in Excel or PDF. Every one of them names the tenant, the round, the rule-set
version and the time it was made (workbooks.WorkbookHeader).

Reports are tenant-wide: the service only accepts them from people who may read the whole tenant
(`Action.ROUND_VIEW` without an object), and a worker writes them with the rights of a read-only
tenant-wide reader (`READER`), never more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.principal import Grant, Principal
from fivestar.audit.chain import report_head
from fivestar.branch_rounds.core import load_round as load_branch_round
from fivestar.branch_rounds.models import BranchRating, BranchRound
from fivestar.branch_rounds.workflow import step_label as rating_step_label
from fivestar.enums import Role
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.member_rounds import core as member_core
from fivestar.member_rounds import workbooks
from fivestar.member_rounds.committee import five_star_rows, self_state_label
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationStatus,
    MemberRound,
    RoundBranch,
    SelfState,
)
from fivestar.member_rounds.notice import PUBLIC_STEPS, member_level_text, period_label
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.reports.jobs import tables
from fivestar.reports.jobs.kinds import KINDS, kind_label
from fivestar.reports.jobs.models import ReportFormat, ReportJob, ReportKind
from fivestar.rules import level_label
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.timekeeping import clock

#: A PDF is built in memory by fpdf2; beyond this many rows the report must be an Excel file.
PDF_MAX_ROWS = 20_000
#: Rows fetched per round trip by the streaming queries.
BATCH = 500

XLSX_MIMETYPE = workbooks.XLSX_MIMETYPE
PDF_MIMETYPE = "application/pdf"


def mimetype(fmt: ReportFormat) -> str:
    return XLSX_MIMETYPE if fmt is ReportFormat.XLSX else PDF_MIMETYPE


@dataclass(frozen=True)
class Plan:
    total: int  # rows expected
    filename: str  # the download's name, with its extension
    write: Callable[[IO[bytes], tables.Progress], int]  # writes the file; returns the rows written


def reader(tenant_id: int, name: str = "", account_id: int | None = None) -> Principal:
    """The rights a worker writes a report with: a read-only tenant-wide reader (督查组). The
    person who asked had at least these (the service checked); the report never shows more."""
    return Principal(
        session_token="",
        display_name=name,
        tenant_id=tenant_id,
        account_id=account_id,
        grants=(Grant(Role.INSPECTOR),),
    )


# --- what a job is about -----------------------------------------------------------------------------


def round_id_of(job: ReportJob) -> int:
    value = (job.parameters or {}).get("round_id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotFoundError(_("报表参数无效：缺少评定轮次"))
    return value


def subject_of(session: Session, job: ReportJob) -> MemberRound | BranchRound:
    """The round the job is about, within the current tenant; NotFoundError when it is gone."""
    round_id = round_id_of(job)
    try:
        if KINDS[job.kind].round_type == "branch":
            return load_branch_round(session, round_id)
        return member_core.load_round(session, round_id)
    except NotFoundError:
        raise NotFoundError(_("报表所依据的评定轮次已不存在")) from None


def round_label(subject: MemberRound | BranchRound) -> str:
    if isinstance(subject, BranchRound):
        return _("%(year)d年度党支部星级评定", year=subject.year)
    return f"{period_label(subject.period_key)}（{subject.period_key}）"


def title_for(kind: ReportKind, subject: MemberRound | BranchRound) -> str:
    """What the list of reports shows: the round, then the kind."""
    if isinstance(subject, BranchRound):
        return f"{_('%(year)d年度', year=subject.year)} · {kind_label(kind)}"
    return f"{period_label(subject.period_key)} · {kind_label(kind)}"


def _generated(tenant: Tenant) -> str:
    return clock.now().astimezone(ZoneInfo(tenant.timezone)).strftime("%Y-%m-%d %H:%M")


def _branch_header(session: Session, tenant: Tenant, branch_round: BranchRound) -> workbooks.WorkbookHeader:
    version = session.scalar(select(RuleSetVersion.version).where(RuleSetVersion.id == branch_round.rules_version_id))
    return workbooks.WorkbookHeader(
        tenant=tenant.name,
        period=_("%(year)d年度", year=branch_round.year),
        rules_version=version,
        scope=_("全部党支部"),
        generated=_generated(tenant),
        audit_head=report_head(session, tenant.id),
    )


def _filename(tenant: Tenant, job: ReportJob, subject: MemberRound | BranchRound) -> str:
    period = str(subject.year) if isinstance(subject, BranchRound) else subject.period_key
    stem = workbooks.download_filename(kind_label(job.kind), period, workbooks.generated_stamp(tenant))
    return f"{stem}.{job.format.value}"


def _streamed(session: Session, stmt: Any) -> Iterator[Any]:
    """Rows of `stmt` fetched `BATCH` at a time (a server-side cursor on PostgreSQL)."""
    yield from session.execute(stmt.execution_options(yield_per=BATCH))


def _table_writer(table: tables.Table, fmt: ReportFormat) -> Callable[[IO[bytes], tables.Progress], int]:
    if fmt is ReportFormat.PDF:
        return lambda out, progress: tables.write_pdf(out, table, progress)
    return lambda out, progress: tables.write_xlsx(out, table, progress)


def _member_level(row: Any, below: str) -> str:
    return member_level_text(row.level, row.rated, row.disqualifier, below)


# --- the plans -------------------------------------------------------------------------------------------


def plan(session: Session, tenant: Tenant, job: ReportJob) -> Plan:
    """How to write `job`'s file; ServiceError (with the reason people read) when it cannot be."""
    subject = subject_of(session, job)
    if isinstance(subject, BranchRound):
        made = _branch_levels(session, tenant, job, subject)
    elif job.kind is ReportKind.MEMBER_RESULTS:
        made = _member_results(session, tenant, job, subject)
    elif job.kind is ReportKind.FIVE_STAR:
        made = _five_star(session, tenant, job, subject)
    else:
        made = _notice_lists(session, tenant, job, subject)
    if job.format is ReportFormat.PDF and made.total > PDF_MAX_ROWS:
        raise ServiceError(
            _(
                "本报表共 %(n)d 行，PDF 最多 %(max)d 行，请改为生成 Excel。",
                n=made.total,
                max=PDF_MAX_ROWS,
            )
        )
    return made


def _member_results(session: Session, tenant: Tenant, job: ReportJob, member_round: MemberRound) -> Plan:
    total = int(
        session.scalar(
            select(func.count())
            .select_from(Evaluation)
            .where(Evaluation.round_id == member_round.id, Evaluation.status == EvaluationStatus.ACTIVE)
        )
        or 0
    )
    filename = _filename(tenant, job, member_round)
    if job.format is ReportFormat.XLSX:
        # The committee page's own export, with every score column; it reports progress per batch.
        return Plan(
            total,
            filename,
            lambda out, progress: workbooks.write_results(session, out, tenant, member_round, progress=progress),
        )
    rules = member_core.round_rules(session, member_round)
    below = rules.member.below_label
    disqualifiers = {d.key: d.label for d in rules.member.disqualifiers}
    stmt = workbooks.results_statement(member_round)
    self_labels = {state: self_state_label(state) for state in SelfState}

    def rows() -> Iterator[Sequence[tables.Cell]]:
        for row in _streamed(session, stmt):
            reason = disqualifiers.get(row.disqualifier, row.disqualifier) if row.disqualifier else ""
            yield (row.parent_name or "", row.branch_name, row.member_no, row.name, row.total,
                   _member_level(row, below), reason, self_labels[row.self_state])

    table = tables.Table(
        title=kind_label(job.kind),
        sheet_name=_("评定结果"),
        header=workbooks.workbook_header(session, tenant, member_round, _("全部支部")),
        columns=[
            tables.Column(_("上级组织"), 18),
            tables.Column(_("支部"), 18),
            tables.Column(_("党员编号"), 12),
            tables.Column(_("姓名"), 12),
            tables.Column(_("总分"), 9, number=True),
            tables.Column(_("星级"), 9),
            tables.Column(_("不予评星原因"), 26),
            tables.Column(_("自评状态"), 9),
        ],
        rows=rows(),
        total=total,
        group_columns=(0, 1),
    )
    return Plan(total, filename, _table_writer(table, job.format))


def _five_star(session: Session, tenant: Tenant, job: ReportJob, member_round: MemberRound) -> Plan:
    principal = reader(tenant.id, job.requested_by, job.requested_by_id)
    filename = _filename(tenant, job, member_round)
    if job.format is ReportFormat.XLSX:
        # The committee page's own export (a short list: the branches that reported, five stars only).
        total = len(five_star_rows(session, principal, member_round))

        def write(out: IO[bytes], progress: tables.Progress) -> int:
            written = workbooks.write_five_star(session, out, tenant, principal, member_round)
            progress(written)
            return written

        return Plan(total, filename, write)
    listed = five_star_rows(session, principal, member_round)
    table = tables.Table(
        title=kind_label(job.kind),
        sheet_name=_("五星党员"),
        header=workbooks.workbook_header(session, tenant, member_round, _("已上报的支部")),
        columns=[
            tables.Column(_("上级组织"), 24),
            tables.Column(_("序号"), 6),
            tables.Column(_("姓名"), 14),
            tables.Column(_("党员编号"), 14),
            tables.Column(_("支部"), 30),
            tables.Column(_("总分"), 10, number=True),
        ],
        rows=(
            (row.parent_name, str(index), row.name, row.member_no, row.branch_name, row.total)
            for index, row in enumerate(listed, start=1)
        ),
        total=len(listed),
        group_columns=(0,),
    )
    return Plan(len(listed), filename, _table_writer(table, job.format))


def _notice_lists(session: Session, tenant: Tenant, job: ReportJob, member_round: MemberRound) -> Plan:
    """Every branch whose public notice has started (running or over), with its members and levels
    as the notice showed them — what the committee files as the record of the 公示."""
    rules = member_core.round_rules(session, member_round)
    below = rules.member.below_label
    zone = ZoneInfo(tenant.timezone)
    now = clock.now()
    shown = (
        (Evaluation.round_id == member_round.id)
        & (Evaluation.status == EvaluationStatus.ACTIVE)
        & RoundBranch.step.in_(PUBLIC_STEPS)
        & RoundBranch.notice_started_at.is_not(None)
        & (RoundBranch.notice_started_at <= now)
    )
    total = int(
        session.scalar(
            select(func.count())
            .select_from(Evaluation)
            .join(RoundBranch, Evaluation.round_branch_id == RoundBranch.id)
            .where(shown)
        )
        or 0
    )
    parent = aliased(Organisation)
    stmt = (
        select(
            parent.name.label("parent_name"),
            Organisation.name.label("branch_name"),
            RoundBranch.notice_started_at,
            RoundBranch.notice_ends_at,
            Member.member_no,
            Member.name,
            Evaluation.level,
            Evaluation.rated,
            Evaluation.disqualifier,
        )
        .join(RoundBranch, Evaluation.round_branch_id == RoundBranch.id)
        .join(Member, Evaluation.member_id == Member.id)
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .where(shown)
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code, Member.member_no,
                  Evaluation.id)
    )

    def local(moment: Any) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment is not None else ""

    def rows() -> Iterator[Sequence[tables.Cell]]:
        for row in _streamed(session, stmt):
            period = _("公示期 %(start)s 至 %(end)s", start=local(row.notice_started_at),
                       end=local(row.notice_ends_at))
            yield (row.parent_name or "", row.branch_name, period, row.member_no, row.name, _member_level(row, below))

    table = tables.Table(
        title=kind_label(job.kind),
        sheet_name=_("公示名单"),
        header=workbooks.workbook_header(session, tenant, member_round, _("已公示的支部")),
        columns=[
            tables.Column(_("上级组织"), 20),
            tables.Column(_("支部"), 20),
            tables.Column(_("公示期"), 40),
            tables.Column(_("党员编号"), 14),
            tables.Column(_("姓名"), 14),
            tables.Column(_("星级"), 10),
        ],
        rows=rows(),
        total=total,
        group_columns=(0, 1, 2),
    )
    return Plan(total, _filename(tenant, job, member_round), _table_writer(table, job.format))


def _branch_levels(session: Session, tenant: Tenant, job: ReportJob, branch_round: BranchRound) -> Plan:
    """Every branch of the year's rating under its organisation: where it is, the level it proposed
    (荐星), its meeting's opinion (议星) and the committee's decision (定星) with the reason."""
    total = int(
        session.scalar(select(func.count()).select_from(BranchRating).where(BranchRating.round_id == branch_round.id))
        or 0
    )
    parent = aliased(Organisation)
    stmt = (
        select(
            parent.name.label("parent_name"),
            Organisation.name.label("branch_name"),
            BranchRating.step,
            BranchRating.previous_level,
            BranchRating.proposed_total,
            BranchRating.proposed_level,
            BranchRating.opinion_level,
            BranchRating.decided_level,
            BranchRating.decision_reason,
        )
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .where(BranchRating.round_id == branch_round.id)
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code, Organisation.name,
                  BranchRating.id)
    )

    def level(value: int | None) -> str:
        return level_label(value) if value is not None else ""

    def rows() -> Iterator[Sequence[tables.Cell]]:
        for row in _streamed(session, stmt):
            yield (row.parent_name or "", row.branch_name, rating_step_label(row.step), level(row.previous_level),
                   row.proposed_total, level(row.proposed_level), level(row.opinion_level),
                   level(row.decided_level), row.decision_reason or "")

    table = tables.Table(
        title=kind_label(job.kind),
        sheet_name=_("党支部星级"),
        header=_branch_header(session, tenant, branch_round),
        columns=[
            tables.Column(_("上级组织"), 22),
            tables.Column(_("党支部"), 24),
            tables.Column(_("环节"), 14),
            tables.Column(_("上年星级"), 9),
            tables.Column(_("荐星得分"), 9, number=True),
            tables.Column(_("荐星星级"), 9),
            tables.Column(_("支部意见"), 9),
            tables.Column(_("定星星级"), 9),
            tables.Column(_("定星理由"), 30),
        ],
        rows=rows(),
        total=total,
        group_columns=(0,),
    )
    return Plan(total, _filename(tenant, job, branch_round), _table_writer(table, job.format))


__all__ = [
    "PDF_MAX_ROWS",
    "PDF_MIMETYPE",
    "XLSX_MIMETYPE",
    "Plan",
    "mimetype",
    "plan",
    "reader",
    "round_label",
    "subject_of",
    "title_for",
]
