"""The reports pages: asking from the round page, the list with its progress (and the JSON it polls),
downloads as attachments, and who may do what (403 for the wrong role, 404 for another district)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from fivestar.enums import Role
from fivestar.kernel import task_names
from fivestar.reports.jobs import services
from fivestar.reports.jobs.models import JobState, ReportFormat, ReportJob, ReportKind
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import finalise_directly, put_on_notice, text_of
from tests.rounds.report_support import add_job, factory, sheet_rows, workbook


@pytest.fixture
def reported(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    one = put_on_notice(session, opened)
    finalise_directly(session, opened, one)
    return opened


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def record(_settings: Any, task: str, *args: Any, queue: str = "default") -> None:
        calls.append((task, *args, queue))

    monkeypatch.setattr("fivestar.broker.enqueue", record)
    return calls


def _url(world: dict[str, Any], path: str = "/") -> str:
    return f"/t/{world['tenant'].slug}/reports{path}"


def _ask(client: FlaskClient, world: dict[str, Any], kind: str = "member_results", fmt: str = "xlsx") -> Any:
    return client.post(_url(world, f"/member-rounds/{world['round'].id}"), data={"kind": kind, "format": fmt})


def _jobs(session: Session, world: dict[str, Any]) -> list[ReportJob]:
    with tenant_context(world["tenant"].id):
        return list(session.scalars(select(ReportJob).order_by(ReportJob.id).execution_options(populate_existing=True)))


def test_the_round_page_asks_for_a_report_and_the_list_shows_its_progress(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, sent: list[tuple[Any, ...]]
) -> None:
    login(reported["tenant"], reported["admin"])
    page = text_of(client.get(f"/t/{reported['tenant'].slug}/rounds/{reported['round'].id}"))
    assert "生成报表" in page and _url(reported, f"/member-rounds/{reported['round'].id}") in page
    assert 'value="notice_lists"' in page and 'value="pdf"' in page

    response = _ask(client, reported)
    [job] = _jobs(session, reported)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(_url(reported, f"/#job-{job.id}"))
    assert sent == [(task_names.REPORTS_GENERATE, reported["tenant"].id, job.id, "reports")]  # after the commit

    listing = client.get(_url(reported))
    body = text_of(listing)
    assert listing.status_code == 200
    assert "2026年第一季度 · 党员星级评定结果" in body and "排队中" in body
    assert f'id="job-{job.id}"' in body and '<progress max="100" value="0"' in body
    assert "js/reports.js" in body and "<script>" not in body  # the poll is a static, same-origin file
    status = client.get(_url(reported, "/status"))
    assert status.headers["Cache-Control"] == "no-store"
    assert status.get_json() == {"jobs": [{"id": job.id, "state": "queued", "label": "排队中", "progress": 0,
                                           "download": None, "size": "", "failure": None}]}


def test_a_done_report_downloads_as_an_attachment_and_shows_in_the_poll(
    app: Flask, client: FlaskClient, connection: Connection, login: Any, reported: dict[str, Any], session: Session,
    sent: list[tuple[Any, ...]],
) -> None:
    login(reported["tenant"], reported["admin"])
    _ask(client, reported)
    [job] = _jobs(session, reported)
    with tenant_context(reported["tenant"].id):
        assert services.run_job(factory(connection), app.config["FIVESTAR_SETTINGS"], job.id) == "done"
    [status] = client.get(_url(reported, "/status")).get_json()["jobs"]
    download = _url(reported, f"/{job.id}/download")
    assert (status["state"], status["progress"], status["download"]) == ("done", 100, download)
    assert "已完成" in text_of(client.get(_url(reported)))

    response = client.get(_url(reported, f"/{job.id}/download"))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("党员星级评定结果-2026Q1-20260407-0900.xlsx") in disposition
    assert response.headers["Cache-Control"] == "private, no-store"
    data = response.get_data()
    response.close()  # the file is streamed from disk
    rows = sheet_rows(workbook(data), "评定结果")
    assert [row[4] for row in rows[1:]] == ["赵书记", "钱支委", "孙党员", "李1", "李2", "李3"]


def test_bad_input_answers_400_with_a_message_and_writes_nothing(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, sent: list[tuple[Any, ...]]
) -> None:
    login(reported["tenant"], reported["admin"])
    response = _ask(client, reported, kind="everything")
    assert response.status_code == 400 and "请选择要生成的报表" in text_of(response)
    response = _ask(client, reported, kind="branch_levels")
    assert response.status_code == 400 and "这种报表不适用于此评定轮次" in text_of(response)
    assert _jobs(session, reported) == [] and sent == []
    assert client.post(_url(reported, "/member-rounds/999999"), data={"kind": "five_star", "format": "xlsx"}
                       ).status_code == 404


@pytest.mark.parametrize("who", ["member", "secretary", "branch_committee"])
def test_people_who_do_not_read_the_whole_district_get_403(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, sent: list[tuple[Any, ...]], who: str
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS)
    login(reported["tenant"], reported[who])
    assert client.get(_url(reported)).status_code == 403
    assert client.get(_url(reported, "/status")).status_code == 403
    assert client.get(_url(reported, f"/{job.id}/download")).status_code == 403
    assert _ask(client, reported).status_code == 403
    assert len(_jobs(session, reported)) == 1 and sent == []
    home = text_of(client.get(f"/t/{reported['tenant'].slug}/"))
    assert _url(reported) not in home  # no menu entry either


def test_the_committee_and_inspectors_may_ask_and_read(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, sent: list[tuple[Any, ...]]
) -> None:
    login(reported["tenant"], reported["inspector"])
    assert client.get(_url(reported)).status_code == 200
    assert _ask(client, reported, "five_star", "pdf").status_code == 302
    [job] = _jobs(session, reported)
    assert (job.kind, job.format, job.requested_by_id) == (ReportKind.FIVE_STAR, ReportFormat.PDF,
                                                            reported["inspector"].id)
    assert _url(reported) in text_of(client.get(f"/t/{reported['tenant'].slug}/"))  # the menu entry


def test_another_districts_reports_and_rounds_are_not_found(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, create_tenant: Any,
    create_account: Any, sent: list[tuple[Any, ...]],
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS, state=JobState.DONE)
    other = create_tenant(slug="other-district")
    admin = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="other-admin")
    login(other, admin)
    base = f"/t/{other.slug}/reports"
    assert client.get(f"{base}/{job.id}/download").status_code == 404
    assert client.post(f"{base}/member-rounds/{reported['round'].id}",
                       data={"kind": "member_results", "format": "xlsx"}).status_code == 404
    assert client.get(f"{base}/status").get_json() == {"jobs": []}
    assert sent == []


def test_an_expired_report_is_gone(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session
) -> None:
    job = add_job(session, reported, ReportKind.MEMBER_RESULTS, state=JobState.EXPIRED)
    login(reported["tenant"], reported["admin"])
    response = client.get(_url(reported, f"/{job.id}/download"))
    assert response.status_code == 410
    assert "此报表已超过保留期限并已删除，请重新生成。" in text_of(response)
    assert "已超过保留期限，文件已删除" in text_of(client.get(_url(reported)))
