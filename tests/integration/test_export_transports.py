"""The export sweep's three transports against real peers on loopback: an HTTPS receiver that verifies
the signature (once, with the audit chain head in a header and in the file), an SMTP server (the
report the report service made, one stable Message-ID), an SFTP server (a temporary name, then a
rename; a private key; a host key that does not match fails at once).

The sweep runs in the test process with the platform clock frozen; a test finishes the report job
itself or runs the report service's own `run_job` in process (no report worker is started).
"""

from __future__ import annotations

import datetime as dt
import email
import io
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import asyncssh
import openpyxl
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.exports.models import ExportState
from fivestar.reports.jobs import services as report_services
from fivestar.reports.jobs.models import ReportJob
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.export_support import SFTP_PASSWORD, SFTP_USER, LoopbackReceiver, LoopbackSftp
from tests.integration.export_sweep_support import (
    CLOSED,
    closed_member_round,
    deliveries,
    finish_job,
    https_target,
    make_target,
    ready,
    sweep,
)
from tests.integration.test_outbox_delivery import Mailbox, free_port


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


# --- the three transports ------------------------------------------------------------------------------------


def test_https_posts_the_file_signed_once(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
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
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    receiver: LoopbackReceiver,
    enqueued: list[Any],
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
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    smtp: tuple[Mailbox, int],
    enqueued: list[Any],
) -> None:
    mailbox, port = smtp
    mail_settings = xsettings.model_copy(
        update={"mail_server": "127.0.0.1", "mail_port": port, "mail_timeout_seconds": 5.0}
    )
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
    session: Session,
    xsettings: Any,
    tmp_path: Path,
) -> None:
    from fivestar.exports import transports

    path = tmp_path / "r.pdf"
    path.write_bytes(b"%PDF-1.7 x")
    parcel = transports.Parcel(
        41,
        7,
        "east",
        "东城区直机关工委",
        "标题",
        "member_results.pdf",
        "member",
        "2026Q1",
        path,
        "结果.pdf",
        "application/pdf",
        "2026-05-20 16:00",
    )
    first = transports.build_email(xsettings, parcel, "a@example.gov.cn")
    again = transports.build_email(xsettings, parcel, "a@example.gov.cn")
    assert first["Message-ID"] == again["Message-ID"]
    parsed = email.message_from_bytes(first.as_bytes(), policy=policy.default)
    (attachment,) = list(parsed.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename() == "结果.pdf" and attachment.get_content() == b"%PDF-1.7 x"


def test_sftp_writes_a_temporary_name_then_renames(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    tmp_path: Path,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    root = tmp_path / "sftp-root"
    with LoopbackSftp(root) as server:
        make_target(
            session,
            xsettings,
            tenant,
            name="报市委（SFTP）",
            method="sftp",
            destination=server.address,
            remote_dir="/incoming/fivestar",
            username=SFTP_USER,
            secret=SFTP_PASSWORD,
            host_key=f"[127.0.0.1]:{server.port} {server.host_key_line}",
        )
        closed_member_round(session, tenant)
        at = CLOSED + dt.timedelta(minutes=1)
        delivery, path = ready(session, factory, xsettings, tenant, at, data=b"PK\x03\x04" + bytes(range(256)) * 999)
        head = f"12:{'ab' * 32}"
        with tenant_context(tenant.id):
            session.execute(
                update(ReportJob)
                .where(ReportJob.id == delivery.report_job_id)
                .values(audit_head=head)
                .execution_options(synchronize_session=False)
            )
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
        ("posix_rename", temporary, f"/incoming/fivestar/{name}")
    )
    (sent,) = deliveries(session, tenant)
    assert sent.state is ExportState.SENT and sent.sent_to.endswith(f"/incoming/fivestar/{name}")


def test_sftp_with_a_private_key_and_a_host_key_that_does_not_match(
    session: Session,
    factory: Callable[[], Session],
    xsettings: Any,
    district: dict[str, Any],
    tmp_path: Path,
    enqueued: list[Any],
) -> None:
    tenant = district["tenant"]
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    with LoopbackSftp(tmp_path / "root", authorized_key=client_key) as server:
        target = make_target(
            session,
            xsettings,
            tenant,
            method="sftp",
            destination=server.address,
            username=SFTP_USER,
            host_key=server.host_key_line,
            private_key=client_key.export_private_key().decode(),
        )
        assert target.secret_encrypted is None and target.private_key_encrypted is not None
        closed_member_round(session, tenant)
        at = CLOSED + dt.timedelta(minutes=1)
        ready(session, factory, xsettings, tenant, at)
        assert sweep(factory, xsettings, at + dt.timedelta(minutes=1)).sent == 1
        assert server.logins == ["publickey"]
        # the server's key changes (or someone pretends to be it): nothing is sent, the delivery fails now
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        second = make_target(
            session,
            xsettings,
            tenant,
            name="第二个",
            method="sftp",
            destination=server.address,
            username=SFTP_USER,
            host_key=other,
            secret=SFTP_PASSWORD,
        )
        sweep(factory, xsettings, at + dt.timedelta(minutes=2))
        (row,) = [d for d in deliveries(session, tenant) if d.target_id == second.id]
        finish_job(session, xsettings, tenant, row.report_job_id, b"x")
        report = sweep(factory, xsettings, at + dt.timedelta(minutes=3))
    assert report.failed == 1 and server.logins == ["publickey"]
    (row,) = [d for d in deliveries(session, tenant) if d.target_id == second.id]
    assert row.state is ExportState.FAILED and row.attempts == 1 and "公钥" in (row.last_error or "")
