"""`fivestar import-template` and `fivestar import` against a committed database."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from fivestar.audit.models import AuditEvent
from fivestar.db import make_sessionmaker
from fivestar.imports.columns import MEMBER_COLUMNS, MEMBER_SHEET, ORG_COLUMNS, ORG_SHEET
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant

RULES = Path(__file__).resolve().parents[2] / "tenants" / "notice-illustrative.toml"


@pytest.fixture
def tenant_slug(cli_engine: Engine) -> str:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    with make_sessionmaker(cli_engine)() as session:
        create_tenant(session, slug=slug, name="命令行测试工委", rules_toml=RULES.read_text(encoding="utf-8"))
        session.commit()
    return slug


def write_workbook(path: Path, orgs: list[list[Any]], members: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    book.active.title = ORG_SHEET
    book[ORG_SHEET].append([column.header for column in ORG_COLUMNS])
    for row in orgs:
        book[ORG_SHEET].append(row)
    sheet = book.create_sheet(MEMBER_SHEET)
    sheet.append([column.header for column in MEMBER_COLUMNS])
    for row in members:
        sheet.append(row)
    book.save(path)
    return path


def member(no: str, branch: str = "B1", gender: str = "女") -> list[Any]:
    return [no, f"党员{no}", gender, "13900000000", dt.datetime(2001, 7, 1), "正式", branch, "党员", "在册", None]


def stored(engine: Engine, slug: str) -> tuple[int, int]:
    from fivestar.tenants.models import Tenant

    with make_sessionmaker(engine)() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        with tenant_context(tenant.id):
            members = session.scalar(select(func.count()).select_from(Member)) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.tenant_id == tenant.id))
        return members, events or 0


def test_import_template_writes_the_workbook(run: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "模板.xlsx"
    result = run("import-template", str(out))
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["说明", ORG_SHEET, MEMBER_SHEET]
    assert [cell.value for cell in book[MEMBER_SHEET][1]] == [column.header for column in MEMBER_COLUMNS]


def test_import_succeeds_with_exit_code_0(
    run: Callable[..., Any], tenant_slug: str, cli_engine: Engine, tmp_path: Path
) -> None:
    path = write_workbook(
        tmp_path / "名单.xlsx", [["B1", "第一党支部", "党支部", "ROOT", 1]], [member("D1"), member("D2")]
    )
    result = run("import", tenant_slug, str(path))
    assert result.exit_code == 0, result.output
    assert "导入完成" in result.stdout
    assert "党员：新建 2，更新 0（其中调动 0），未变 0" in result.stdout
    members, _events = stored(cli_engine, tenant_slug)
    assert members == 2
    with make_sessionmaker(cli_engine)() as session:
        event = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "import.run").order_by(AuditEvent.id.desc())
        )
        assert event is not None and event.actor_kind == "cli" and event.actor_name.startswith("cli:")
    again = run("import", tenant_slug, str(path))
    assert again.exit_code == 0 and "未变 2" in again.stdout
    assert stored(cli_engine, tenant_slug)[0] == 2


def test_bad_file_exits_1_with_the_error_table(
    run: Callable[..., Any], tenant_slug: str, cli_engine: Engine, tmp_path: Path
) -> None:
    before = stored(cli_engine, tenant_slug)
    path = write_workbook(
        tmp_path / "bad.xlsx",
        [["B1", "第一党支部", "党支部", "ROOT", 1]],
        [member("D1"), member("D1"), member("D3", "B9"), member("D4", gender="?")],
    )
    result = run("import", tenant_slug, str(path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "工作表\t行\t列\t原因"
    assert lines[1:4] == [
        "党员\t3\t党员编号\t党员编号“D1”与第 2 行重复",
        "党员\t4\t所在支部编码\t所在支部编码“B9”不存在：既不在组织表中，也不是已有组织",
        "党员\t5\t性别\t性别须为“男”或“女”",
    ]
    assert "发现 3 个问题，未导入任何内容" in lines[-1]
    assert stored(cli_engine, tenant_slug) == before


def test_not_an_xlsx_exits_1(run: Callable[..., Any], tenant_slug: str, tmp_path: Path) -> None:
    path = tmp_path / "名单.xlsx"
    path.write_text("党员编号,姓名\n", encoding="utf-8")
    result = run("import", tenant_slug, str(path))
    assert result.exit_code == 1 and "不是 Excel 工作簿" in result.stderr


def test_dry_run_stores_nothing(
    run: Callable[..., Any], tenant_slug: str, cli_engine: Engine, tmp_path: Path
) -> None:
    before = stored(cli_engine, tenant_slug)
    path = write_workbook(tmp_path / "a.xlsx", [["B1", "第一党支部", "党支部", "ROOT", 1]], [member("D1")])
    result = run("import", tenant_slug, str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "试运行" in result.stdout and "党员：新建 1" in result.stdout
    assert stored(cli_engine, tenant_slug) == before


def test_unknown_tenant_exits_1(run: Callable[..., Any], tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "a.xlsx", [], [member("D1")])
    result = run("import", "no-such-district", str(path))
    assert result.exit_code == 1 and "未找到单位" in result.stderr


def test_row_cap_option(run: Callable[..., Any], tenant_slug: str, tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "a.xlsx", [["B1", "第一党支部", "党支部", "ROOT", 1]], [member("D1"), member("D2")]
    )
    result = run("import", tenant_slug, str(path), "--max-rows", "1")
    assert result.exit_code == 1 and "超过 1 行数据的上限" in result.stderr
    assert io.StringIO(result.stderr).readline().startswith("工作表")
