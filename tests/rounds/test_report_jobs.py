"""Report jobs of a member round: what each report holds (the services directly), asking for one,
producing it (claim, progress, done, failed, redelivery) and the sweep (dead workers, lost
messages, files past their keeping time). The real worker is tests/integration/test_report_worker.py."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ServiceError
from fivestar.kernel import task_names
from fivestar.reports.jobs import content, services
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportJob, ReportKind
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import finalise_directly, put_on_notice, score
from tests.rounds.report_support import about, add_job, factory, pdf_text, sheet_rows, workbook

GENERATED = "2026-04-07 09:00"  # the frozen clock of tests/rounds/conftest.py, Beijing time


@pytest.fixture
def reported(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one scored (五星, 四星, 不予评星), on notice and then reported upward; branch two has one
    member scored 五星 but has not reported (so that member is in no five-star list)."""
    one = put_on_notice(session, opened)
    finalise_directly(session, opened, one)
    score(session, opened, {opened["twos"][1]: 5})
    return {**opened, "rb_one": one}


@pytest.fixture
def job_settings(settings: Any, tmp_path: Path) -> Any:
    """The test settings with a data folder of this test's own (report files are per test)."""
    from fivestar.config import load_settings

    return load_settings(env="test", database_url=settings.database_url, broker_url=settings.broker_url,
                         data_dir=tmp_path / "data", secret_key=settings.secret_key)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Messages the service sends (after commit, or from the sweep), instead of a broker."""
    calls: list[tuple[Any, ...]] = []

    def record(_settings: Any, task: str, *args: Any, queue: str = "default") -> None:
        calls.append((task, *args, queue))

    monkeypatch.setattr("fivestar.broker.enqueue", record)
    monkeypatch.setattr("fivestar.reports.jobs.services.enqueue", record)
    return calls


def _produce(session: Session, world: dict[str, Any], kind: ReportKind, fmt: ReportFormat) -> tuple[bytes, int]:
    """The report's file as the worker writes it (content.plan → write), and its row count."""
    job = add_job(session, world, kind, fmt)
    out = io.BytesIO()
    seen: list[int] = []
    with tenant_context(world["tenant"].id):
        made = content.plan(session, world["tenant"], job)
        written = made.write(out, seen.append)
    assert written == made.total
    return out.getvalue(), written


def _job(session: Session, world: dict[str, Any], job_id: int) -> ReportJob:
    with tenant_context(world["tenant"].id):
        job = session.scalar(select(ReportJob).where(ReportJob.id == job_id).execution_options(populate_existing=True))
    assert job is not None
    return job


# --- what the reports hold ------------------------------------------------------------------------------


def test_the_results_workbook_names_tenant_round_version_and_time(session: Session, reported: dict[str, Any]) -> None:
    data, written = _produce(session, reported, ReportKind.MEMBER_RESULTS, ReportFormat.XLSX)
    book = workbook(data)
    assert book.sheetnames == ["说明", "评定结果"]
    head = about(book)
    assert head["单位"] == "轮次测试工委"
    assert head["评定期次"] == "2026年第一季度（2026Q1）"
    assert head["规则版本"] == "第 1 版"
    assert head["生成时间"] == GENERATED
    rows = sheet_rows(book, "评定结果")
    assert written == 6 and len(rows) == 7
    assert rows[0][:5] == ("期次", "上级组织", "支部", "党员编号", "姓名")
    by_name = {row[4]: row for row in rows[1:]}
    assert list(by_name) == ["赵书记", "钱支委", "孙党员", "李1", "李2", "李3"]
    assert by_name["赵书记"][-5:] == (None, 95, "五星", "", "已提交")
    assert by_name["孙党员"][-3] == "不予评星"


def test_the_results_pdf_has_a_heading_and_every_member_under_its_branch(
    session: Session, reported: dict[str, Any]
) -> None:
    data, written = _produce(session, reported, ReportKind.MEMBER_RESULTS, ReportFormat.PDF)
    assert data.startswith(b"%PDF") and written == 6
    text = pdf_text(data)
    for expected in (
        "轮次测试工委",
        "2026年第一季度（2026Q1） 党员星级评定结果",
        "规则版本：第 1 版",
        f"生成时间：{GENERATED}",
        "区财政局机关党委 · 第一党支部",
        "区财政局机关党委 · 第二党支部",
        "赵书记",
        "五星",
        "不按时足额交纳党费",
        "李3",
        f"生成于 {GENERATED}",  # the footer of every page
    ):
        assert expected in text, expected


def test_the_five_star_list_holds_reported_branches_only(session: Session, reported: dict[str, Any]) -> None:
    data, written = _produce(session, reported, ReportKind.FIVE_STAR, ReportFormat.XLSX)
    book = workbook(data)
    assert about(book)["范围"] == "已上报的支部"
    assert sheet_rows(book, "五星党员")[1:] == [(1, "赵书记", "A001", "第一党支部", "区财政局机关党委", 95)]
    assert written == 1
    pdf, _ = _produce(session, reported, ReportKind.FIVE_STAR, ReportFormat.PDF)
    text = pdf_text(pdf)
    assert "五星党员名单" in text and "赵书记" in text and "李2" not in text


def test_the_notice_lists_hold_branches_whose_notice_started(session: Session, reported: dict[str, Any]) -> None:
    data, written = _produce(session, reported, ReportKind.NOTICE_LISTS, ReportFormat.XLSX)
    book = workbook(data)
    assert about(book)["范围"] == "已公示的支部"
    rows = sheet_rows(book, "公示名单")
    assert rows[0] == ("上级组织", "支部", "公示期", "党员编号", "姓名", "星级")
    assert [row[4] for row in rows[1:]] == ["赵书记", "钱支委", "孙党员"] and written == 3
    assert rows[1][2].startswith(f"公示期 {GENERATED} 至 2026-04-")
    assert [row[5] for row in rows[1:]] == ["五星", "四星", "不予评星"]
    pdf, _ = _produce(session, reported, ReportKind.NOTICE_LISTS, ReportFormat.PDF)
    assert "第二党支部" not in pdf_text(pdf) and "钱支委" in pdf_text(pdf)


# --- asking for one ------------------------------------------------------------------------------------------


def _principal(world: dict[str, Any]) -> Any:
    from fivestar.accounts.principal import Grant, Principal
    from fivestar.enums import Role

    return Principal(session_token="t", display_name="工委工作人员", tenant_id=world["tenant"].id,
                     account_id=world["admin"].id, grants=(Grant(Role.TENANT_ADMIN),))


def test_asking_writes_a_queued_job_and_an_audit_event_and_sends_only_after_commit(
    session: Session, reported: dict[str, Any], job_settings: Any, sent: list[tuple[Any, ...]]
) -> None:
    tenant = reported["tenant"]
    with tenant_context(tenant.id):
        asked = services.request_report(session, job_settings, tenant=tenant, principal=_principal(reported),
                                       kind="member_results", fmt="xlsx", subject=reported["round"])
        assert asked.created and asked.job.state is JobState.QUEUED and asked.job.progress == 0
        assert asked.job.parameters == {"round_id": reported["round"].id}
        assert asked.job.title == "2026年第一季度 · 党员星级评定结果"
        assert sent == []  # nothing before the commit
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "report.request")))
        assert [e.object_id for e in events] == [str(asked.job.id)]
        session.commit()
    assert sent == [(task_names.REPORTS_GENERATE, tenant.id, asked.job.id, "reports")]
    with tenant_context(tenant.id):
        again = services.request_report(session, job_settings, tenant=tenant, principal=_principal(reported),
                                       kind="member_results", fmt="xlsx", subject=reported["round"])
    assert not again.created and again.job.id == asked.job.id  # still queued: the same job


@pytest.mark.parametrize(
    ("kind", "fmt", "field", "message"),
    [
        ("bogus", "xlsx", "kind", "请选择要生成的报表"),
        ("", "xlsx", "kind", "请选择要生成的报表"),
        ("member_results", "docx", "format", "请选择文件格式（Excel 或 PDF）"),
        ("branch_levels", "xlsx", "kind", "这种报表不适用于此评定轮次"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(
    session: Session, reported: dict[str, Any], job_settings: Any, sent: list[tuple[Any, ...]], kind: str, fmt: str,
    field: str, message: str,
) -> None:
    tenant = reported["tenant"]
    with tenant_context(tenant.id):
        with pytest.raises(ServiceError) as refused:
            services.request_report(session, job_settings, tenant=tenant, principal=_principal(reported), kind=kind,
                                   fmt=fmt, subject=reported["round"])
        assert (refused.value.field, refused.value.message) == (field, message)
        assert session.scalar(select(ReportJob.id)) is None
    assert sent == []


# --- producing it --------------------------------------------------------------------------------------------


def test_a_job_runs_once_and_a_redelivery_changes_nothing(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS)
    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), job_settings, job.id) == "done"
    done = _job(session, reported, job.id)
    assert (done.state, done.progress, done.rows, done.attempts) == (JobState.DONE, 100, 6, 1)
    assert done.filename == "党员星级评定结果-2026Q1-20260407-0900.xlsx"
    assert done.expires_at == done.finished_at + dt.timedelta(days=job_settings.report_keep_days)
    path = services.download_path(job_settings, done)
    assert path.parent == job_settings.resolved_data_dir / "reports" / str(reported["tenant"].id)
    assert path.stat().st_size == done.file_size and len(sheet_rows(workbook(path.read_bytes()), "评定结果")) == 7
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no partial file left
    before = {name: getattr(done, name) for name in ("state", "attempts", "file_key", "finished_at", "file_size")}

    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), job_settings, job.id) == "skipped"  # the redelivered message
    again = _job(session, reported, job.id)
    assert {name: getattr(again, name) for name in before} == before
    assert path.read_bytes()[:2] == b"PK"


def test_a_message_for_another_tenant_finds_nothing(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any, create_tenant: Any
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS)
    other = create_tenant()
    with tenant_context(other.id):
        assert services.run_job(factory(connection), job_settings, job.id) == "skipped"
    assert _job(session, reported, job.id).state is JobState.QUEUED


def test_progress_advances_in_transactions_of_its_own(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS, ReportFormat.PDF)
    writes: list[dict[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE REPORT_JOBS SET PROGRESS"):
            writes.append(parameters)

    event.listen(connection.engine, "before_cursor_execute", record)
    try:
        with tenant_context(reported["tenant"].id):
            assert services.run_job(factory(connection), job_settings, job.id, progress_every=1) == "done"
    finally:
        event.remove(connection.engine, "before_cursor_execute", record)
    percents = [_first_int(params) for params in writes]
    assert percents == [16, 33, 50, 66, 83, 99]  # every row of six, never 100 before done
    assert _job(session, reported, job.id).progress == 100


def _first_int(parameters: Any) -> int:
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return next(int(value) for value in values if isinstance(value, int))


def test_a_pdf_too_long_fails_with_a_reason_and_leaves_no_file(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(content, "PDF_MAX_ROWS", 2)
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS, ReportFormat.PDF)
    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), job_settings, job.id) == "failed"
    failed = _job(session, reported, job.id)
    assert failed.state is JobState.FAILED
    assert failed.failure_reason == "本报表共 6 行，PDF 最多 2 行，请改为生成 Excel。"
    assert failed.file_key is None and failed.expires_at is not None
    folder = services.tenant_folder(job_settings, reported["tenant"].id)
    assert not folder.exists() or list(folder.iterdir()) == []
    with pytest.raises(ServiceError):
        services.download_path(job_settings, failed)


def test_an_unexpected_error_fails_the_job_with_its_kind_and_a_deleted_round_too(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("fivestar.member_rounds.workbooks.write_results", broken)
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS)
    gone = add_job(session, reported, ReportKind.NOTICE_LISTS, round_id=reported["round"].id + 1000)
    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), job_settings, job.id) == "failed"
        assert services.run_job(factory(connection), job_settings, gone.id) == "failed"
    assert _job(session, reported, job.id).failure_reason == (
        "生成报表时出错（RuntimeError），请重新生成；如仍失败请联系管理员。"
    )
    assert _job(session, reported, gone.id).failure_reason == "报表所依据的评定轮次已不存在"


# --- the sweep -----------------------------------------------------------------------------------------------


def _claim_and_die(session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any,
                   job: ReportJob) -> Path:
    """A worker claims the job, starts its file and dies (nothing else happens to the row)."""
    with tenant_context(reported["tenant"].id):
        claim = services._claim(factory(connection), job.id)
    assert claim is not None
    _final, partial = services._paths(job_settings, reported["tenant"].id, claim.key)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half a workbook")
    return partial


def test_the_sweep_gives_a_dead_workers_job_back_and_fails_it_after_three_attempts(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any, sent: list[tuple[Any, ...]],
    frozen_now: Any,
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS)
    later = frozen_now.at + services.STUCK_AFTER + dt.timedelta(seconds=1)
    for attempt in (1, 2):
        partial = _claim_and_die(session, connection, reported, job_settings, job)
        quiet = services.sweep(factory(connection), job_settings, now=frozen_now.at, queue="reports-test")
        assert quiet.requeued == 0  # its heartbeat is fresh: a live, busy worker
        swept = services.sweep(factory(connection), job_settings, now=later, queue="reports-test")
        assert (swept.requeued, swept.failed) == (1, 0)
        assert not partial.exists()
        row = _job(session, reported, job.id)
        assert (row.state, row.attempts, row.file_key) == (JobState.QUEUED, attempt, None)
        assert sent[-1] == (task_names.REPORTS_GENERATE, reported["tenant"].id, job.id, "reports-test")
    _claim_and_die(session, connection, reported, job_settings, job)
    swept = services.sweep(factory(connection), job_settings, now=later, queue="reports-test")
    assert (swept.requeued, swept.failed) == (0, 1)
    row = _job(session, reported, job.id)
    assert row.state is JobState.FAILED and row.attempts == 3
    assert row.failure_reason is not None and "中断了 3 次" in row.failure_reason
    assert len(sent) == 2


def test_the_sweep_resends_a_lost_message_once(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any, sent: list[tuple[Any, ...]],
    frozen_now: Any,
) -> None:
    job = add_job(session, reported, ReportKind.FIVE_STAR)
    assert services.sweep(factory(connection), job_settings, now=frozen_now.at).resent == 0
    later = frozen_now.at + services.REQUEUE_AFTER + dt.timedelta(minutes=1)
    assert services.sweep(factory(connection), job_settings, now=later).resent == 1
    assert services.sweep(factory(connection), job_settings, now=later).resent == 0  # sent just now
    assert sent == [(task_names.REPORTS_GENERATE, reported["tenant"].id, job.id, "reports")]


def test_the_retention_sweep_deletes_expired_files(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any, frozen_now: Any
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS)
    failed = add_job(session, reported, ReportKind.NOTICE_LISTS, round_id=reported["round"].id + 1000)
    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), job_settings, job.id) == "done"
        assert services.run_job(factory(connection), job_settings, failed.id) == "failed"
    done = _job(session, reported, job.id)
    path = services.download_path(job_settings, done)
    assert done.expires_at is not None
    early = services.sweep(factory(connection), job_settings, now=done.expires_at - dt.timedelta(minutes=1))
    assert early.expired == 0 and path.exists()
    swept = services.sweep(factory(connection), job_settings, now=done.expires_at + dt.timedelta(seconds=1))
    assert swept.expired == 2
    assert not path.exists()
    row = _job(session, reported, job.id)
    assert (row.state, row.file_key) == (JobState.EXPIRED, None)
    assert _job(session, reported, failed.id).state is JobState.EXPIRED
    with pytest.raises(services.ReportGoneError) as gone:
        services.download_path(job_settings, row)
    assert gone.value.status == 410


@pytest.mark.parametrize("fmt", [ReportFormat.PDF, ReportFormat.XLSX])
def test_a_report_prints_the_audit_chain_head_of_when_it_was_made(
    session: Session, connection: Connection, reported: dict[str, Any], job_settings: Any, fmt: ReportFormat
) -> None:
    from fivestar.audit.chain import current_head

    job = add_job(session, reported, ReportKind.MEMBER_RESULTS, fmt)
    head = current_head(session, reported["tenant"].id)
    assert head.seq > 0
    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), job_settings, job.id) == "done"
    done = _job(session, reported, job.id)
    assert done.audit_head == f"{head.seq}:{head.hash}"
    data = services.download_path(job_settings, done).read_bytes()
    short = f"审计链 第 {head.seq} 条 · {head.hash[:16]}…"
    if fmt is ReportFormat.PDF:
        text = pdf_text(data)
        assert short in text and f"{head.seq}:{head.hash}" in text
    else:
        facts = about(workbook(data))
        assert facts["审计链"] == short and facts["审计链链头"] == f"{head.seq}:{head.hash}"
