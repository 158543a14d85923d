"""The import page: template download, upload (success, errors, bad files, size), permissions."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import Role
from fivestar.imports.columns import MEMBER_COLUMNS, MEMBER_SHEET, ORG_SHEET
from fivestar.imports.template import build_template
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def member(no: str, branch: str = "B001", **overrides: Any) -> list[Any]:
    values = {
        "member_no": no,
        "name": f"党员{no}",
        "gender": "男",
        "phone": None,
        "joined_on": dt.datetime(2015, 7, 1),
        "standing": "正式",
        "branch_code": branch,
        "position": "党员",
        "status": None,
        "note": None,
    }
    values.update(overrides)
    return [values[column.key] for column in MEMBER_COLUMNS]


def filled(orgs: list[list[Any]] | None = None, members: list[list[Any]] | None = None) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(build_template()))
    for row in orgs or []:
        book[ORG_SHEET].append(row)
    for row in members or []:
        book[MEMBER_SHEET].append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(client: FlaskClient, slug: str, data: bytes, name: str = "名单.xlsx") -> Any:
    return client.post(
        f"/t/{slug}/import/",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def stored(session: Session, tenant: Any) -> tuple[int, int]:
    with tenant_context(tenant.id):
        members = session.scalar(select(func.count()).select_from(Member)) or 0
    events = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.tenant_id == tenant.id))
    return members, events or 0


@pytest.fixture
def admin_a(two_tenants: dict[str, Any], login: Any) -> dict[str, Any]:
    a = two_tenants["a"]
    login(a["tenant"], a["admin"])
    return a


def test_index_explains_and_offers_the_template(client: FlaskClient, admin_a: dict[str, Any]) -> None:
    response = client.get("/t/district-a/import/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "不会被删除，也不会被停用" in page
    assert 'enctype="multipart/form-data"' in page and 'name="csrf_token"' in page
    assert "/t/district-a/import/template.xlsx" in page
    assert "还没有导入记录" in page
    assert 'href="/t/district-a/import/"' in client.get("/t/district-a/").get_data(as_text=True)  # in the menu

    template = client.get("/t/district-a/import/template.xlsx")
    assert template.status_code == 200 and template.mimetype == XLSX
    assert "attachment" in template.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(template.data))
    assert book.sheetnames == ["说明", ORG_SHEET, MEMBER_SHEET, "现有组织"]
    listed = {row[0] for row in book["现有组织"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert {"P001", "B001", "B002"} <= listed and "ROOT" not in listed


def test_successful_upload_commits_and_shows_counts(
    client: FlaskClient, session: Session, admin_a: dict[str, Any], two_tenants: dict[str, Any]
) -> None:
    b_before = stored(session, two_tenants["b"]["tenant"])
    data = filled([["B003", "第三党支部", "党支部", "P001", None]], [member("NO001", "B003"), member("N9")])
    response = upload(client, "district-a", data)
    assert response.status_code == 302
    result = client.get(response.headers["Location"])
    page = result.get_data(as_text=True)
    assert result.status_code == 200
    assert "已全部导入" in page and "名单.xlsx" in page and "没有被删除" in page
    assert 'data-label="新建">1<' in page  # one org created, one member created
    assert 'data-label="其中调动">1<' in page  # NO001 moved to B003
    with tenant_context(admin_a["tenant"].id):
        numbers = set(session.scalars(select(Member.member_no)))
    assert numbers == {"NO001", "NO002", "NO003", "N9"}
    assert stored(session, two_tenants["b"]["tenant"]) == b_before
    history = client.get("/t/district-a/import/").get_data(as_text=True)
    assert "名单.xlsx" in history and "调动 1" in history


def test_bad_rows_show_the_whole_table_and_store_nothing(
    client: FlaskClient, session: Session, admin_a: dict[str, Any]
) -> None:
    before = stored(session, admin_a["tenant"])
    data = filled(None, [member("N1"), member("N1"), member("N2", "NOPE"), member("N3", gender="X")])
    response = upload(client, "district-a", data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "未导入任何内容" in page and "共发现 3 个问题" in page
    assert page.count('<td data-label="工作表">党员</td>') == 3
    assert "党员编号“N1”与第 2 行重复" in page
    assert "所在支部编码“NOPE”不存在" in page
    assert '<td data-label="行">5</td>' in page and '<td data-label="列">性别</td>' in page
    assert stored(session, admin_a["tenant"]) == before


def test_not_an_xlsx_is_a_400_with_a_message(client: FlaskClient, session: Session, admin_a: dict[str, Any]) -> None:
    before = stored(session, admin_a["tenant"])
    response = upload(client, "district-a", "党员编号,姓名\nN1,张三\n".encode(), name="名单.xlsx")
    assert response.status_code == 400
    assert "不是 Excel 工作簿" in response.get_data(as_text=True)
    corrupt = upload(client, "district-a", b"PK\x03\x04" + b"\0" * 200)
    assert corrupt.status_code == 400 and "损坏" in corrupt.get_data(as_text=True)
    assert stored(session, admin_a["tenant"]) == before


def test_missing_file_is_a_400(client: FlaskClient, admin_a: dict[str, Any]) -> None:
    response = client.post("/t/district-a/import/", data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "请选择要导入的 Excel 文件" in response.get_data(as_text=True)


def test_oversized_file_is_a_413_page(client: FlaskClient, app: Flask, admin_a: dict[str, Any]) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    # A hand-built multipart body: the test client would spool a large `data={"file": …}` into a
    # temporary file that it never closes when the request is refused before reading it.
    body = (
        b'--xx\r\nContent-Disposition: form-data; name="file"; filename="big.xlsx"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        + b"PK\x03\x04"
        + b"\0" * (1024 * 1024 + 10)
        + b"\r\n--xx--\r\n"
    )
    try:
        response = client.post("/t/district-a/import/", data=body, content_type="multipart/form-data; boundary=xx")
    finally:
        app.config["MAX_CONTENT_LENGTH"] = limit
    assert response.status_code == 413
    assert "文件超过 1 MB 的上限" in response.get_data(as_text=True)


def test_oversized_file_with_csrf_on_is_still_a_413(
    client: FlaskClient, app: Flask, admin_a: dict[str, Any], csrf_enabled: None
) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1024
    body = (
        b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.xlsx"\r\n\r\n'
        + b"\0" * 4096
        + b"\r\n--xx--\r\n"
    )
    try:
        response = client.post("/t/district-a/import/", data=body, content_type="multipart/form-data; boundary=xx")
    finally:
        app.config["MAX_CONTENT_LENGTH"] = limit
    assert response.status_code == 413
    assert "MB 的上限" in response.get_data(as_text=True)


def test_row_cap_is_configurable(client: FlaskClient, app: Flask, admin_a: dict[str, Any]) -> None:
    app.config["FIVESTAR_IMPORT_MAX_ROWS"] = 2
    try:
        response = upload(client, "district-a", filled(None, [member("N1"), member("N2"), member("N3")]))
    finally:
        app.config.pop("FIVESTAR_IMPORT_MAX_ROWS")
    assert response.status_code == 422
    assert "超过 2 行数据的上限" in response.get_data(as_text=True)


def test_csrf_is_required(client: FlaskClient, admin_a: dict[str, Any], csrf_enabled: None) -> None:
    response = upload(client, "district-a", filled(None, [member("N1")]))
    assert response.status_code == 400
    page = client.get("/t/district-a/import/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert token is not None
    response = client.post(
        "/t/district-a/import/",
        data={"csrf_token": token.group(1), "file": (io.BytesIO(filled(None, [member("N1")])), "a.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302


@pytest.mark.parametrize("who", ["secretary", "member", "committee"])
def test_only_tenant_admins_may_import(
    client: FlaskClient, session: Session, two_tenants: dict[str, Any], create_account: Any, login: Any, who: str
) -> None:
    a = two_tenants["a"]
    if who == "secretary":
        account = a["secretary"]
    elif who == "member":
        account = create_account(a["tenant"], roles=[(Role.MEMBER, None)], member=a["members"][1])
    else:
        account = create_account(a["tenant"], roles=[(Role.COMMITTEE_MEMBER, None)])
    login(a["tenant"], account)
    before = stored(session, a["tenant"])
    assert client.get("/t/district-a/import/").status_code == 403
    assert client.get("/t/district-a/import/template.xlsx").status_code == 403
    assert upload(client, "district-a", filled(None, [member("N1")])).status_code == 403
    assert stored(session, a["tenant"])[0] == before[0]
    assert "/import/" not in client.get("/t/district-a/").get_data(as_text=True)


def test_anonymous_and_other_tenants_cannot_import(
    client: FlaskClient, session: Session, two_tenants: dict[str, Any], login: Any
) -> None:
    anonymous = client.get("/t/district-a/import/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    login(two_tenants["b"]["tenant"], two_tenants["b"]["admin"])
    before = stored(session, two_tenants["a"]["tenant"])
    response = upload(client, "district-a", filled(None, [member("N1")]))
    assert response.status_code in (302, 404)  # B's login is worth nothing under A
    assert stored(session, two_tenants["a"]["tenant"]) == before


def test_result_of_another_tenant_is_404(client: FlaskClient, two_tenants: dict[str, Any], login: Any) -> None:
    login(two_tenants["b"]["tenant"], two_tenants["b"]["admin"])
    response = upload(client, "district-b", filled(None, [member("N1")]))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert client.get(location).status_code == 200
    client.post("/t/district-b/logout")
    login(two_tenants["a"]["tenant"], two_tenants["a"]["admin"])
    assert client.get(location.replace("district-b", "district-a")).status_code == 404
