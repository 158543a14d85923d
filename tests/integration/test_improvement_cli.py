"""`fivestar improvement-plans SLUG YEAR` against a committed database: a year finalised before plans
existed gets them once; an unknown district, a missing year or an open round exit 1 with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from fivestar.branch_rounds.models import BranchRoundState
from fivestar.db import make_sessionmaker
from fivestar.enums import OrgKind
from fivestar.improvement.models import ImprovementPlan
from fivestar.orgs.models import Organisation
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from tests.branch.publication_support import ONE_TOTALS, Decided, build_round

RULES = Path(__file__).resolve().parents[2] / "tenants" / "notice-illustrative.toml"


@pytest.fixture
def district(cli_engine: Engine) -> tuple[str, int]:
    slug = f"plans-{uuid.uuid4().hex[:8]}"
    with make_sessionmaker(cli_engine)() as session:
        tenant = create_tenant(session, slug=slug, name="计划命令行工委", rules_toml=RULES.read_text(encoding="utf-8"))
        session.flush()
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            branch = Organisation(parent_id=root.id, kind=OrgKind.BRANCH, name="第一党支部", code="B01")
            session.add(branch)
            session.flush()
            branch.path = f"{root.path}{branch.id}/"
            build_round(session, tenant, year=2024, decisions=[Decided(branch, 3, ONE_TOTALS)])
            build_round(
                session, tenant, year=2025, decisions=[Decided(branch, None, ONE_TOTALS)], state=BranchRoundState.OPEN
            )
        session.commit()
        return slug, tenant.id


def _plans(engine: Engine, tenant_id: int) -> int:
    with make_sessionmaker(engine)() as session, tenant_context(tenant_id):
        return int(session.scalar(select(func.count()).select_from(ImprovementPlan)) or 0)


def test_a_finished_year_gets_its_plans_once(
    run: Callable[..., Any], cli_engine: Engine, district: tuple[str, int]
) -> None:
    slug, tenant_id = district
    first = run("improvement-plans", slug, "2024")
    assert first.exit_code == 0 and "新生成整改提升计划 1 份" in first.output
    again = run("improvement-plans", slug, "2024")
    assert again.exit_code == 0 and "新生成整改提升计划 0 份" in again.output
    assert _plans(cli_engine, tenant_id) == 1


def test_refusals_exit_1_with_the_reason(
    run: Callable[..., Any], cli_engine: Engine, district: tuple[str, int]
) -> None:
    slug, tenant_id = district
    unknown = run("improvement-plans", "no-such-district", "2024")
    assert unknown.exit_code == 1 and "未找到单位" in unknown.output
    missing = run("improvement-plans", slug, "2019")
    assert missing.exit_code == 1 and "没有 2019 年度的党支部星级评定" in missing.output
    still_open = run("improvement-plans", slug, "2025")
    assert still_open.exit_code == 1 and "尚未定星公布" in still_open.output
    assert _plans(cli_engine, tenant_id) == 0
