"""Exports to superior committees (fivestar.exports): targets checked before anything is written,
one delivery per (target, round) however often and however concurrently the sweep runs, the three
transports against real peers on loopback (an HTTP receiver that verifies the signature, an SMTP
server, an SFTP server), retries with backoff, failing for good with one alert to the
administrators, "send again", and the on-date trigger at its instant.

The sweep runs here in the test process with the platform clock frozen; the report workers are not
started: a test finishes the report job itself (a file and `done`), or runs the report service's
own `run_job` in process. Messages to the broker are recorded instead of sent (`enqueued`), so no
report message is left in a shared Redis.
"""

from __future__ import annotations

import datetime as dt
import email
import io
import secrets
import threading
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import asyncssh
import openpyxl
import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.enums import Role
from fivestar.errors import ServiceError
from fivestar.exports import services
from fivestar.exports.models import ExportDelivery, ExportState, ExportTarget, ExportTrigger
from fivestar.exports.sweep import run_exports
from fivestar.kernel import task_names
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.notify.encryption import decrypt
from fivestar.outbox.models import OutboxMessage
from fivestar.reports.jobs import services as report_services
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.timekeeping import clock
from tests.export_support import HMAC_KEY, SFTP_PASSWORD, SFTP_USER, LoopbackReceiver, LoopbackSftp
from tests.integration.test_outbox_delivery import Mailbox, free_port

UTC = dt.UTC
T0 = dt.datetime(2026, 4, 10, 2, 0, tzinfo=UTC)  # 2026Q1 has ended; targets are set up now
CLOSED = dt.datetime(2026, 5, 20, 8, 0, tzinfo=UTC)  # the round is finalised then
REPORT_QUEUE = "exports-test-reports"


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    """Sessions on the test's connection: what the sweep commits is rolled back with the test."""
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], str]]:
    """Broker messages (sent after commit) recorded instead of sent."""
    import fivestar.broker

    sent: list[tuple[str, tuple[Any, ...], str]] = []

    def record(_settings: Any, task_name: str, *args: Any, queue: str = "default") -> None:
        sent.append((task_name, args, queue))

    monkeypatch.setattr(fivestar.broker, "enqueue", record)
    return sent


@pytest.fixture
def xsettings(settings: Any) -> Any:
    """The test settings with 127.0.0.1 allowed for exports (the loopback receivers)."""
    return settings.model_copy(update={"export_hosts": "127.0.0.1"})


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
        controller.loop.close()


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver() as running:
        yield running


@pytest.fixture
def district(create_tenant: Any, create_org: Any, create_member: Any, create_account: Any) -> dict[str, Any]:
    """A district with a branch of three members, two active administrators (one with an e-mail
    address), one switched-off administrator and a secretary."""
    tenant = create_tenant(slug=f"up-{secrets.token_hex(3)}")
    branch = create_org(tenant, name="上报测试党支部")
    members = [create_member(tenant, branch) for _ in range(3)]
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin", email="admin@example.gov.cn")
    second = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin2")
    gone = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="old-admin", active=False,
                          email="old@example.gov.cn")
    secretary = create_account(tenant, roles=[(Role.BRANCH_SECRETARY, branch)], member=members[0],
                               username="secretary", email="secretary@example.gov.cn")
    return {"tenant": tenant, "branch": branch, "admin": admin, "second": second, "gone": gone,
            "secretary": secretary}


def closed_member_round(session: Session, tenant: Any, period: str = "2026Q1", at: dt.datetime = CLOSED) -> Any:
    """A member round of `period`, opened and then closed at `at` (the closing service's own checks
    are another test's business)."""
    from fivestar.member_rounds.opening import open_round

    with tenant_context(tenant.id), clock.frozen(at - dt.timedelta(days=1)):
        open_round(session, tenant, period_key=period)
        session.flush()
        member_round = session.scalar(select(MemberRound).where(MemberRound.period_key == period))
        assert member_round is not None
        with seeding():
            member_round.state = RoundState.CLOSED
        member_round.closed_at = at
        session.flush()
    return member_round


def finalised_branch_round(session: Session, tenant: Any, year: int = 2025, at: dt.datetime = CLOSED) -> Any:
    from fivestar.branch_rounds.opening import open_branch_round

    with tenant_context(tenant.id), clock.frozen(dt.datetime(year + 1, 1, 5, 2, 0, tzinfo=UTC)):
        opened = open_branch_round(session, tenant, year=year, self_report_due=dt.date(year + 1, 1, 31),
                                   committee_due=dt.date(year + 1, 3, 31))
        session.flush()
        branch_round = session.scalar(select(BranchRound).where(BranchRound.year == year))
        assert branch_round is not None and opened is not None
        with seeding():
            branch_round.state = BranchRoundState.FINALISED
        branch_round.finalised_at = at
        session.flush()
    return branch_round


def target_input(**fields: Any) -> services.TargetInput:
    values: dict[str, Any] = {
        "name": "报区委组织部",
        "report_kind": "member_results",
        "report_format": "xlsx",
        "method": "email",
        "destination": "zuzhibu@example.gov.cn",
        "trigger": "on_finalise",
    }
    values.update(fields)
    return services.TargetInput(**values)


def make_target(session: Session, settings: Any, tenant: Any, at: dt.datetime = T0, **fields: Any) -> ExportTarget:
    with tenant_context(tenant.id), clock.frozen(at):
        target = services.create_target(session, settings, tenant.timezone, target_input(**fields))
        session.flush()
    return target


def https_target(session: Session, settings: Any, tenant: Any, receiver: LoopbackReceiver, **fields: Any) -> Any:
    values = {"name": "报市委（接口）", "method": "https", "destination": receiver.url, "secret": HMAC_KEY, **fields}
    return make_target(session, settings, tenant, **values)


def sweep(factory: Callable[[], Session], settings: Any, at: dt.datetime, **kwargs: Any) -> Any:
    with clock.frozen(at):
        return run_exports(factory, settings, report_queue=REPORT_QUEUE, **kwargs)


def deliveries(session: Session, tenant: Any) -> list[ExportDelivery]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(ExportDelivery).order_by(ExportDelivery.id)))


def finish_job(session: Session, settings: Any, tenant: Any, job_id: int, data: bytes,
               at: dt.datetime = CLOSED) -> Path:
    """What a report worker does at the end: the file under its key, and `done`."""
    key = secrets.token_hex(24)
    folder = report_services.tenant_folder(settings, tenant.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / key
    path.write_bytes(data)
    with tenant_context(tenant.id):
        session.execute(
            update(ReportJob).where(ReportJob.id == job_id)
            .values(state=JobState.DONE, progress=100, file_key=key, file_size=len(data), rows=3,
                    filename="2026年第一季度党员星级评定结果.xlsx", finished_at=at,
                    expires_at=at + dt.timedelta(days=7))
            .execution_options(synchronize_session=False)
        )
        session.flush()
    return path


def ready(session: Session, factory: Callable[[], Session], settings: Any, tenant: Any, at: dt.datetime,
          data: bytes = b"PK\x03\x04 report bytes") -> tuple[ExportDelivery, Path]:
    """Plan and ask for the report (one sweep), then finish the report job."""
    sweep(factory, settings, at)
    (delivery,) = deliveries(session, tenant)
    assert delivery.state is ExportState.WAITING and delivery.report_job_id is not None
    return delivery, finish_job(session, settings, tenant, delivery.report_job_id, data)


def outbox(session: Session, tenant: Any) -> list[OutboxMessage]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- targets: checked before anything is written --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": " "}, "name", "名称"),
        ({"destination": "not-an-address"}, "destination", "电子邮箱"),
        ({"method": "https", "destination": "ftp://127.0.0.1/x", "secret": HMAC_KEY}, "destination", "https://"),
        ({"method": "https", "destination": "https://evil.example.com/in", "secret": HMAC_KEY}, "destination",
         "只允许"),
        ({"method": "https", "destination": "https://user:pw@127.0.0.1/in", "secret": HMAC_KEY}, "destination",
         "用户名或密码"),
        ({"method": "https", "destination": "https://127.0.0.1:99999/in", "secret": HMAC_KEY}, "destination",
         "格式不正确"),
        ({"method": "https", "destination": "https://127.0.0.1/in", "secret": "short"}, "secret", "签名密钥"),
        ({"method": "https", "destination": "https://127.0.0.1/in"}, "secret", "签名密钥"),
        ({"method": "sftp", "destination": "bad host:22", "username": "u", "secret": "p"}, "destination", "主机名"),
        ({"method": "sftp", "destination": "127.0.0.1:70000", "username": "u", "secret": "p"}, "destination", "端口"),
        ({"method": "sftp", "destination": "sftp.evil.example.com", "username": "u", "secret": "p"}, "destination",
         "只允许"),
        ({"method": "sftp", "destination": "127.0.0.1:2222", "username": "u", "secret": "p", "host_key": "nope"},
         "host_key", "公钥"),
        ({"method": "sftp", "destination": "127.0.0.1", "username": "", "secret": "p"}, "username", "用户名"),
        ({"method": "sftp", "destination": "127.0.0.1", "username": "u", "remote_dir": "in/../../etc"}, "remote_dir",
         ".."),
        ({"trigger": "on_date", "on_date": "13-01"}, "on_date", "月份"),
        ({"trigger": "on_date", "on_date": "04-31"}, "on_date", "4月没有31日"),
        ({"trigger": "on_date", "on_date": "02-29"}, "on_date", "2月29日"),
        ({"trigger": "on_date", "on_date": "next spring"}, "on_date", "月-日"),
        ({"report_kind": "branch_levels", "report_format": "docx"}, "report_format", "格式"),
        ({"report_kind": "everything"}, "report_kind", "报表"),
        ({"trigger": "weekly"}, "trigger", "什么时候"),
    ],
)
def test_a_bad_target_is_refused_in_chinese_and_nothing_is_written(
    session: Session, xsettings: Any, district: dict[str, Any], fields: dict[str, Any], field: str, words: str
) -> None:
    tenant = district["tenant"]
    if fields.get("method") == "sftp" and "host_key" not in fields:
        fields = {**fields, "host_key": asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()}
    with pytest.raises(ServiceError) as refused:
        make_target(session, xsettings, tenant, **fields)
    assert refused.value.field == field, refused.value.message
    assert words in refused.value.message
    assert refused.value.status == 400
    with tenant_context(tenant.id):
        assert session.scalar(select(func.count()).select_from(ExportTarget)) == 0


def test_plain_http_only_to_a_listed_loopback(session: Session, settings: Any, xsettings: Any,
                                              district: dict[str, Any]) -> None:
    tenant = district["tenant"]
    with pytest.raises(ServiceError, match="FIVESTAR_EXPORT_HOSTS"):
        make_target(session, settings, tenant, method="https", destination="https://127.0.0.1:8080/in",
                    secret=HMAC_KEY)
    with pytest.raises(ServiceError, match="https://"):
        make_target(session, settings, tenant, method="https", destination="http://127.0.0.1:8080/in",
                    secret=HMAC_KEY)
    with pytest.raises(ServiceError, match="https://"):
        make_target(session, xsettings.model_copy(update={"export_hosts": "report.example.gov.cn"}), tenant,
                    method="https", destination="http://report.example.gov.cn/in", secret=HMAC_KEY)
    target = make_target(session, xsettings, tenant, method="https", destination="http://127.0.0.1:8080/in",
                         secret=HMAC_KEY)
    assert target.destination == "http://127.0.0.1:8080/in"
    assert target.secret_encrypted is not None and HMAC_KEY not in target.secret_encrypted
    assert decrypt(xsettings, target.secret_encrypted) == HMAC_KEY


def test_month_day_spellings_and_the_next_instant(session: Session, xsettings: Any, district: dict[str, Any]) -> None:
    assert services.parse_month_day("3月1日") == services.parse_month_day("03-01") == (3, 1)
    assert services.parse_month_day("12/31") == (12, 31)
    target = make_target(session, xsettings, district["tenant"], trigger="on_date", on_date="3-1")
    assert (target.on_month, target.on_day) == (3, 1)
    # 1 March 2027 09:00 in Shanghai (the date of T0's year, 2026, has passed)
    assert target.next_run_at == dt.datetime(2027, 3, 1, 1, 0, tzinfo=UTC)


def test_editing_keeps_the_secret_unless_the_method_changes(
    session: Session, xsettings: Any, district: dict[str, Any], receiver: LoopbackReceiver
) -> None:
    tenant = district["tenant"]
    target = https_target(session, xsettings, tenant, receiver)
    stored = target.secret_encrypted
    with tenant_context(tenant.id), clock.frozen(T0):
        services.update_target(session, xsettings, tenant.timezone, target,
                               target_input(name="改名", method="https", destination=receiver.url),
                               version=target.version)
        session.flush()
        assert target.secret_encrypted == stored and target.name == "改名"
        with pytest.raises(ServiceError) as refused:
            services.update_target(session, xsettings, tenant.timezone, target,
                                   target_input(name="改名", method="sftp", destination="127.0.0.1:2222",
                                                username="u",
                                                host_key=asyncssh.generate_private_key("ssh-ed25519")
                                                .export_public_key().decode()),
                                   version=target.version)
        assert refused.value.field == "secret"
        with pytest.raises(ServiceError, match="已被他人修改"):
            services.update_target(session, xsettings, tenant.timezone, target, target_input(name="再改"), version=1)


# --- planning: one delivery per target and round, never two ------------------------------------------------


def test_a_finalised_round_makes_one_delivery_per_target_and_never_two(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    before = closed_member_round(session, tenant, "2025Q4", at=T0 - dt.timedelta(days=1))  # before the targets
    mail = make_target(session, xsettings, tenant)
    https = https_target(session, xsettings, tenant, receiver, report_format="pdf")
    branch = make_target(session, xsettings, tenant, name="支部星级报工委", report_kind="branch_levels")
    off = make_target(session, xsettings, tenant, name="已停用", active=False)
    member_round = closed_member_round(session, tenant, "2026Q1")
    branch_round = finalised_branch_round(session, tenant, 2025)
    first = sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1))
    second = sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=2))
    rows = deliveries(session, tenant)
    assert sorted((row.target_id, row.round_type, row.round_id) for row in rows) == sorted([
        (mail.id, "member", member_round.id),
        (https.id, "member", member_round.id),
        (branch.id, "branch", branch_round.id),
    ])
    assert ("member", before.id) not in {(row.round_type, row.round_id) for row in rows}  # finalised before
    assert off.id not in {row.target_id for row in rows}
    assert (first.planned, first.requested, second.planned, second.requested) == (3, 3, 0, 0)
    assert {row.round_key for row in rows} == {"2026Q1", "2025"}
    assert all(row.state is ExportState.WAITING and row.report_job_id is not None for row in rows)
    with tenant_context(tenant.id):
        jobs = {job.id: job for job in session.scalars(select(ReportJob))}
    assert {(jobs[row.report_job_id].kind.value, jobs[row.report_job_id].format.value) for row in rows} == {
        ("member_results", "xlsx"), ("member_results", "pdf"), ("branch_levels", "xlsx")}
    assert all(jobs[row.report_job_id].requested_by == "系统（上报上级）" for row in rows)
    # the report messages went to the reports queue only after the sweep's commits, once per job
    assert sorted(args[1] for name, args, queue in enqueued if name == task_names.REPORTS_GENERATE) == sorted(jobs)
    assert {queue for _name, _args, queue in enqueued} == {REPORT_QUEUE}


def test_two_targets_wanting_the_same_report_share_one_job(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any], enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    make_target(session, xsettings, district["tenant"])
    make_target(session, xsettings, district["tenant"], name="抄送", destination="chaosong@example.gov.cn")
    closed_member_round(session, tenant)
    sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1))
    rows = deliveries(session, tenant)
    assert len(rows) == 2 and rows[0].report_job_id == rows[1].report_job_id is not None


def test_switching_a_target_on_again_does_not_send_the_past(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any], enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    target = make_target(session, xsettings, tenant, active=False)
    closed_member_round(session, tenant)
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1)).planned == 0
    with tenant_context(tenant.id), clock.frozen(CLOSED + dt.timedelta(days=1)):
        services.set_active(session, tenant.timezone, target, True, version=target.version)
        session.flush()
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(days=1, minutes=1)).planned == 0
    assert deliveries(session, tenant) == []


def test_a_suspended_district_plans_nothing(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any], enqueued: list[Any],
) -> None:
    from fivestar.enums import TenantStatus

    tenant = district["tenant"]
    make_target(session, xsettings, tenant)
    closed_member_round(session, tenant)
    tenant.status = TenantStatus.SUSPENDED
    session.flush()
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1)).planned == 0


# --- the three transports ------------------------------------------------------------------------------------


def test_https_posts_the_file_signed_once(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    at = CLOSED + dt.timedelta(minutes=1)
    delivery, path = ready(session, factory, xsettings, tenant, at, data=b"PK\x03\x04" + b"x" * 100_000)
    report = sweep(factory, xsettings, at + dt.timedelta(minutes=1))
    assert (report.ready, report.claimed, report.sent) == (1, 1, 1), report
    (request,) = receiver.requests
    assert request.signature_ok, request.headers
    assert request.body == path.read_bytes()
    assert request.headers["idempotency-key"] == f"fivestar-export-{delivery.id}"
    assert request.headers["x-fivestar-delivery"] == str(delivery.id)
    assert request.headers["x-fivestar-tenant"] == tenant.slug
    assert request.headers["x-fivestar-report"] == "member_results.xlsx"
    assert request.headers["x-fivestar-round"] == "member:2026Q1"
    assert "filename*=UTF-8''2026" in request.headers["content-disposition"]
    (sent,) = deliveries(session, tenant)
    assert sent.state is ExportState.SENT and sent.attempts == 1 and sent.sent_to == receiver.url
    assert sent.sent_at == at + dt.timedelta(minutes=1) and sent.last_error is None
    sweep(factory, xsettings, at + dt.timedelta(hours=1))
    assert len(receiver.requests) == 1


def test_https_carries_the_audit_chain_head_in_a_header_and_in_the_file(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    from fivestar.audit.chain import current_head

    tenant = district["tenant"]
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    at = CLOSED + dt.timedelta(minutes=1)
    sweep(factory, xsettings, at)
    (delivery,) = deliveries(session, tenant)
    head = current_head(session, tenant.id)
    with tenant_context(tenant.id), clock.frozen(at):
        assert report_services.run_job(factory, xsettings, delivery.report_job_id) == "done"
    sweep(factory, xsettings, at + dt.timedelta(minutes=1))
    (request,) = receiver.requests
    assert request.signature_ok
    assert request.headers["x-fivestar-audit-head"] == f"{head.seq}:{head.hash}"
    about = openpyxl.load_workbook(io.BytesIO(request.body), read_only=True)["说明"]
    facts = {row[0]: row[1] for row in about.iter_rows(values_only=True) if row and row[0]}
    assert facts["审计链链头"] == f"{head.seq}:{head.hash}"
    assert facts["审计链"] == f"审计链 第 {head.seq} 条 · {head.hash[:16]}…"


def test_email_carries_the_report_made_by_the_report_service(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    smtp: tuple[Mailbox, int], enqueued: list[Any],
) -> None:
    mailbox, port = smtp
    mail_settings = xsettings.model_copy(update={"mail_server": "127.0.0.1", "mail_port": port,
                                                 "mail_timeout_seconds": 5.0})
    tenant = district["tenant"]
    make_target(session, mail_settings, tenant)
    closed_member_round(session, tenant)
    at = CLOSED + dt.timedelta(minutes=1)
    sweep(factory, mail_settings, at)
    (delivery,) = deliveries(session, tenant)
    # The report workers' own service writes the file (in process, as the job's tenant).
    with tenant_context(tenant.id), clock.frozen(at):
        assert report_services.run_job(factory, mail_settings, delivery.report_job_id) == "done"
    with tenant_context(tenant.id):
        job = session.scalar(select(ReportJob).where(ReportJob.id == delivery.report_job_id))
        assert job is not None
        session.refresh(job)
        path = report_services.download_path(mail_settings, job)
    sweep(factory, mail_settings, at + dt.timedelta(minutes=1))
    (message,) = mailbox.received
    assert str(message["To"]) == "zuzhibu@example.gov.cn"
    assert tenant.name in str(message["Subject"]) and "上报" in str(message["Subject"])
    assert str(message["Message-ID"]).startswith(f"<fivestar-export-{delivery.id}.{tenant.id}@")
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == job.filename
    assert attachment.get_content() == path.read_bytes()
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and str(delivery.id) in body.get_content()
    assert f"审计链链头：{job.audit_head}" in body.get_content() and job.audit_head
    assert deliveries(session, tenant)[0].state is ExportState.SENT


def test_the_e_mail_message_id_is_the_same_on_a_repeat(
    session: Session, xsettings: Any, tmp_path: Path,
) -> None:
    from fivestar.exports import transports

    path = tmp_path / "r.pdf"
    path.write_bytes(b"%PDF-1.7 x")
    parcel = transports.Parcel(41, 7, "east", "东城区直机关工委", "标题", "member_results.pdf", "member", "2026Q1",
                               path, "结果.pdf", "application/pdf", "2026-05-20 16:00")
    first = transports.build_email(xsettings, parcel, "a@example.gov.cn")
    again = transports.build_email(xsettings, parcel, "a@example.gov.cn")
    assert first["Message-ID"] == again["Message-ID"]
    parsed = email.message_from_bytes(first.as_bytes(), policy=policy.default)
    (attachment,) = list(parsed.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename() == "结果.pdf" and attachment.get_content() == b"%PDF-1.7 x"


def test_sftp_writes_a_temporary_name_then_renames(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    tmp_path: Path, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    root = tmp_path / "sftp-root"
    with LoopbackSftp(root) as server:
        make_target(session, xsettings, tenant, name="报市委（SFTP）", method="sftp", destination=server.address,
                    remote_dir="/incoming/fivestar", username=SFTP_USER, secret=SFTP_PASSWORD,
                    host_key=f"[127.0.0.1]:{server.port} {server.host_key_line}")
        closed_member_round(session, tenant)
        at = CLOSED + dt.timedelta(minutes=1)
        delivery, path = ready(session, factory, xsettings, tenant, at, data=b"PK\x03\x04" + bytes(range(256)) * 999)
        head = f"12:{'ab' * 32}"
        with tenant_context(tenant.id):
            session.execute(update(ReportJob).where(ReportJob.id == delivery.report_job_id).values(audit_head=head)
                            .execution_options(synchronize_session=False))
            session.flush()
        report = sweep(factory, xsettings, at + dt.timedelta(minutes=1))
        assert report.sent == 1, report
    folder = root / "incoming" / "fivestar"
    files = sorted(item.name for item in folder.iterdir())
    name = f"{tenant.slug}-member_results-2026Q1-d{delivery.id}.xlsx"
    assert files == [name, f"{name}.audit-head"]  # no temporary file left; the chain head beside the report
    assert (folder / f"{name}.audit-head").read_text(encoding="utf-8") == head + "\n"
    assert (folder / name).read_bytes() == path.read_bytes()
    temporary = f"/incoming/fivestar/.{name}.part"
    assert ("open", temporary) in server.ops
    assert ("posix_rename", temporary, f"/incoming/fivestar/{name}") in server.ops
    assert server.ops.index(("open", temporary)) < server.ops.index(
        ("posix_rename", temporary, f"/incoming/fivestar/{name}"))
    (sent,) = deliveries(session, tenant)
    assert sent.state is ExportState.SENT and sent.sent_to.endswith(f"/incoming/fivestar/{name}")


def test_sftp_with_a_private_key_and_a_host_key_that_does_not_match(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    tmp_path: Path, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    with LoopbackSftp(tmp_path / "root", authorized_key=client_key) as server:
        target = make_target(session, xsettings, tenant, method="sftp", destination=server.address,
                             username=SFTP_USER, host_key=server.host_key_line,
                             private_key=client_key.export_private_key().decode())
        assert target.secret_encrypted is None and target.private_key_encrypted is not None
        closed_member_round(session, tenant)
        at = CLOSED + dt.timedelta(minutes=1)
        ready(session, factory, xsettings, tenant, at)
        assert sweep(factory, xsettings, at + dt.timedelta(minutes=1)).sent == 1
        assert server.logins == ["publickey"]
        # the server's key changes (or someone pretends to be it): nothing is sent, the delivery fails now
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        second = make_target(session, xsettings, tenant, name="第二个", method="sftp", destination=server.address,
                             username=SFTP_USER, host_key=other, secret=SFTP_PASSWORD)
        sweep(factory, xsettings, at + dt.timedelta(minutes=2))
        (row,) = [d for d in deliveries(session, tenant) if d.target_id == second.id]
        finish_job(session, xsettings, tenant, row.report_job_id, b"x")
        report = sweep(factory, xsettings, at + dt.timedelta(minutes=3))
    assert report.failed == 1 and server.logins == ["publickey"]
    (row,) = [d for d in deliveries(session, tenant) if d.target_id == second.id]
    assert row.state is ExportState.FAILED and row.attempts == 1 and "公钥" in (row.last_error or "")


# --- failures: backoff, giving up, one alert, send again ----------------------------------------------------


def test_failures_back_off_then_fail_and_alert_the_administrators_once(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    admin, second = ((a.id, a.display_name) for a in (district["admin"], district["second"]))
    receiver.status = 503
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    delivery, _path = ready(session, factory, xsettings, tenant, now)
    waits = []
    for attempt in range(1, 9):
        report = sweep(factory, xsettings, now)
        assert report.claimed == 1, (attempt, report)
        (row,) = deliveries(session, tenant)
        assert row.attempts == attempt and "HTTP 503" in (row.last_error or "")
        if attempt < 8:
            assert row.state is ExportState.PENDING and report.retried == 1
            assert sweep(factory, xsettings, row.next_attempt_at - dt.timedelta(seconds=1)).claimed == 0
            waits.append(row.next_attempt_at - now)
            now = row.next_attempt_at
    assert waits == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert row.state is ExportState.FAILED and report.failed == 1 and len(receiver.requests) == 8
    messages = outbox(session, tenant)
    assert sorted((m.channel.value, m.account_id or 0, m.recipient) for m in messages) == sorted([
        ("inapp", *admin), ("inapp", *second), ("email", 0, "admin@example.gov.cn"),
    ])
    assert all(m.dedupe_key.startswith(f"export-failed:{delivery.id}:0:") for m in messages)
    notice = next(m for m in messages if m.account_id == admin[0])
    assert "上报失败" in notice.subject and "HTTP 503" in notice.body_text and "重新发送" in notice.body_text
    assert notice.link == f"/t/{tenant.slug}/exports/"
    # later sweeps: nothing is sent and nobody is alerted again
    sweep(factory, xsettings, now + dt.timedelta(days=1))
    assert len(receiver.requests) == 8 and len(outbox(session, tenant)) == 3
    # the administrator fixes the receiver and sends again: it goes (the report file is still kept)
    receiver.status = 200
    with tenant_context(tenant.id), clock.frozen(now + dt.timedelta(days=1)):
        services.resend(session, row)
        session.flush()
        with pytest.raises(ServiceError, match="只有发送失败"):
            services.resend(session, row)
    report = sweep(factory, xsettings, now + dt.timedelta(days=1, minutes=1))
    assert (report.ready, report.sent) == (1, 1), report
    (row,) = deliveries(session, tenant)
    assert row.state is ExportState.SENT and row.attempts == 1 and row.resends == 1
    assert list(receiver.stored) == [f"fivestar-export-{delivery.id}"]


def test_a_failed_report_is_an_attempt_and_is_asked_for_again(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any], enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    make_target(session, xsettings, tenant)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    sweep(factory, xsettings, now)
    (delivery,) = deliveries(session, tenant)
    failed_job = delivery.report_job_id
    with tenant_context(tenant.id):
        session.execute(update(ReportJob).where(ReportJob.id == failed_job)
                        .values(state=JobState.FAILED, failure_reason="PDF 太长")
                        .execution_options(synchronize_session=False))
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=1))
    (row,) = deliveries(session, tenant)
    assert report.retried == 1 and row.attempts == 1 and row.report_job_id is None
    assert "PDF 太长" in (row.last_error or "") and row.state is ExportState.WAITING
    assert sweep(factory, xsettings, row.next_attempt_at - dt.timedelta(seconds=1)).requested == 0
    assert sweep(factory, xsettings, row.next_attempt_at).requested == 1
    (row,) = deliveries(session, tenant)
    assert row.report_job_id not in (None, failed_job)


def test_an_expired_report_is_made_again_before_sending(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    delivery, path = ready(session, factory, xsettings, tenant, now)
    old_job = delivery.report_job_id
    # ready to send, but the file is gone by the time the delivery is claimed
    with tenant_context(tenant.id):
        session.execute(update(ExportDelivery).where(ExportDelivery.id == delivery.id)
                        .values(state=ExportState.PENDING, next_attempt_at=now)
                        .execution_options(synchronize_session=False))
    path.unlink()
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=1))
    (row,) = deliveries(session, tenant)
    assert receiver.requests == [] and report.claimed == 1 and report.failed == report.retried == 0
    assert row.state is ExportState.WAITING and row.attempts == 0 and row.report_job_id is None
    assert sweep(factory, xsettings, now + dt.timedelta(minutes=2)).requested == 1
    (row,) = deliveries(session, tenant)
    assert row.report_job_id not in (None, old_job)


def test_a_dead_sweeps_delivery_is_given_back_and_counted(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    delivery, _path = ready(session, factory, xsettings, tenant, now)
    with tenant_context(tenant.id):  # a sweep claimed it and died
        session.execute(update(ExportDelivery).where(ExportDelivery.id == delivery.id)
                        .values(state=ExportState.SENDING, attempts=1, claimed_at=now)
                        .execution_options(synchronize_session=False))
    assert sweep(factory, xsettings, now + dt.timedelta(minutes=5), stuck_after=dt.timedelta(minutes=10)).claimed == 0
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=11), stuck_after=dt.timedelta(minutes=10))
    assert report.reclaimed == 1 and report.sent == 1
    (row,) = deliveries(session, tenant)
    assert row.state is ExportState.SENT and row.attempts == 2 and len(receiver.requests) == 1


# --- on a date --------------------------------------------------------------------------------------------


def test_on_date_sends_the_latest_finalised_round_at_its_instant(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    closed_member_round(session, tenant, "2026Q3", at=dt.datetime(2026, 10, 30, 2, 0, tzinfo=UTC))
    q4 = closed_member_round(session, tenant, "2026Q4", at=dt.datetime(2027, 1, 25, 2, 0, tzinfo=UTC))
    target = https_target(session, xsettings, tenant, receiver, at=dt.datetime(2027, 1, 10, 2, 0, tzinfo=UTC),
                          trigger="on_date", on_date="03-01")
    instant = dt.datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert target.next_run_at == instant
    assert sweep(factory, xsettings, instant - dt.timedelta(seconds=1)).planned == 0
    report = sweep(factory, xsettings, instant)
    assert report.planned == 1 and report.requested == 1
    (row,) = deliveries(session, tenant)
    assert (row.round_id, row.round_key, row.trigger) == (q4.id, "2026Q4", ExportTrigger.ON_DATE)
    session.expire_all()
    with tenant_context(tenant.id):
        assert session.get(ExportTarget, target.id).next_run_at == dt.datetime(2028, 3, 1, 1, 0, tzinfo=UTC)
    # a round finalised after the instant waits for next year's date (or an on-finalise target)
    closed_member_round(session, tenant, "2027Q1", at=dt.datetime(2027, 4, 20, 2, 0, tzinfo=UTC))
    assert sweep(factory, xsettings, dt.datetime(2027, 6, 1, tzinfo=UTC)).planned == 0
    assert len(deliveries(session, tenant)) == 1


def test_on_date_in_a_zone_with_daylight_saving(xsettings: Any) -> None:
    after = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert services.next_on_date(7, 1, "Europe/Berlin", after) == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert services.next_on_date(1, 15, "Europe/Berlin", after) == dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    # the instant itself is not "after" it: the next one is a year later
    instant = dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    assert services.next_on_date(1, 15, "Europe/Berlin", instant) == dt.datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


# --- concurrency on a committed database ------------------------------------------------------------------


@pytest.fixture
def committed(backend: str, fresh_database: Callable[[str], str]) -> Iterator[tuple[Callable[[], Session], Any]]:
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.enums import Gender, OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenants.services import create_tenant
    from tests.conftest import SAMPLE_RULES

    engine = make_engine(fresh_database(backend))
    maker = make_sessionmaker(engine)
    with maker() as session:
        tenant = create_tenant(session, slug="up-race", name="并发上报测试工委",
                               rules_toml=SAMPLE_RULES.read_text("utf-8"))
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="并发测试党支部")
            for n in range(3):
                session.add(Member(tenant_id=tenant.id, branch_id=branch.id, member_no=f"R{n}", name=f"党员{n}",
                                   gender=Gender.MALE, joined_on=dt.date(2010, 1, 1)))
        session.commit()
    yield maker, tenant
    engine.dispose()


def _race(count: int, work: Callable[[], Any]) -> list[Any]:
    start = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=10)
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_sweeps_racing_plan_ask_and_send_each_delivery_once(
    committed: tuple[Callable[[], Session], Any], xsettings: Any, receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    maker, tenant = committed
    receiver.delay = 0.05
    with maker() as session:
        for n in range(3):
            with tenant_context(tenant.id), clock.frozen(T0):
                services.create_target(session, xsettings, tenant.timezone, target_input(
                    name=f"接口{n}", method="https", destination=receiver.url, secret=HMAC_KEY,
                    report_format="xlsx" if n < 2 else "pdf"))
        closed_member_round(session, tenant)
        session.commit()
    at = CLOSED + dt.timedelta(minutes=1)
    planned = _race(3, lambda: sweep(maker, xsettings, at))
    assert sum(report.planned for report in planned) == 3
    assert sum(report.requested for report in planned) == 3
    with maker() as session, tenant_context(tenant.id):
        rows = list(session.scalars(select(ExportDelivery)))
        jobs = list(session.scalars(select(ReportJob)))
        assert len(rows) == 3 and all(row.report_job_id is not None for row in rows)
        assert sorted(job.format.value for job in jobs) == ["pdf", "xlsx"]  # one job per report, shared
        for job in jobs:
            finish_job(session, xsettings, tenant, job.id, f"report {job.id}".encode())
        session.commit()
    sent = _race(3, lambda: sweep(maker, xsettings, at + dt.timedelta(minutes=1)))
    assert sum(report.sent for report in sent) == 3
    assert sum(report.claimed for report in sent) == 3
    assert len(receiver.requests) == 3 and all(request.signature_ok for request in receiver.requests)
    assert sorted(request.headers["x-fivestar-delivery"] for request in receiver.requests) == sorted(
        str(row.id) for row in rows)
    with maker() as session, tenant_context(tenant.id):
        assert {row.state for row in session.scalars(select(ExportDelivery))} == {ExportState.SENT}


def test_deliveries_of_another_tenant_stay_out_of_sight(
    session: Session, factory: Callable[[], Session], xsettings: Any, two_tenants: dict[str, Any],
    enqueued: list[Any],
) -> None:
    a, b = two_tenants["a"]["tenant"], two_tenants["b"]["tenant"]
    make_target(session, xsettings, a)
    closed_member_round(session, b)
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=1)).planned == 0  # B's round is not A's
    closed_member_round(session, a)
    assert sweep(factory, xsettings, CLOSED + dt.timedelta(minutes=2)).planned == 1
    assert deliveries(session, b) == [] and len(deliveries(session, a)) == 1
    with cross_tenant("test"):
        assert session.scalar(select(func.count()).select_from(ExportDelivery)
                              .where(ExportDelivery.tenant_id == b.id)) == 0


def test_a_switched_off_targets_deliveries_wait_until_it_is_on_again(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any],
    receiver: LoopbackReceiver, enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    target = https_target(session, xsettings, tenant, receiver)
    closed_member_round(session, tenant)
    now = CLOSED + dt.timedelta(minutes=1)
    ready(session, factory, xsettings, tenant, now)
    with tenant_context(tenant.id), clock.frozen(now):
        services.set_active(session, tenant.timezone, target, False, version=target.version)
        session.flush()
    report = sweep(factory, xsettings, now + dt.timedelta(minutes=1))
    assert (report.ready, report.claimed) == (0, 0) and receiver.requests == []
    with tenant_context(tenant.id), clock.frozen(now + dt.timedelta(hours=1)):
        services.set_active(session, tenant.timezone, target, True, version=target.version)
        session.flush()
    report = sweep(factory, xsettings, now + dt.timedelta(hours=1, minutes=1))
    assert (report.ready, report.sent) == (1, 1) and len(receiver.requests) == 1


def test_renaming_an_on_date_target_after_its_instant_does_not_skip_the_year(
    session: Session, factory: Callable[[], Session], xsettings: Any, district: dict[str, Any], enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    closed_member_round(session, tenant)
    target = make_target(session, xsettings, tenant, at=CLOSED, trigger="on_date", on_date="06-01")
    instant = dt.datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    with tenant_context(tenant.id), clock.frozen(instant + dt.timedelta(seconds=30)):
        services.update_target(session, xsettings, tenant.timezone, target,
                               target_input(name="改名了", trigger="on_date", on_date="06-01"), version=target.version)
        session.flush()
        assert target.next_run_at == instant  # still due: the sweep has not come yet
    assert sweep(factory, xsettings, instant + dt.timedelta(minutes=1)).planned == 1
    with tenant_context(tenant.id), clock.frozen(instant + dt.timedelta(hours=1)):
        services.update_target(session, xsettings, tenant.timezone, target,
                               target_input(name="改名了", trigger="on_date", on_date="07-01"), version=target.version)
        session.flush()
        assert target.next_run_at == dt.datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
