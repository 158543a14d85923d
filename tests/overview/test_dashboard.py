"""The committee dashboard: its counts from the seeded district, the charts' Excel, and that no page of
the overview runs more statements for a bigger district (counted at two sizes)."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fivestar.overview.dashboard import CHART_KEYS, build_dashboard
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.overview.conftest import add_accounts, add_follow_ups, build_tree
from tests.support import count_queries


def _board(session: Session, world: dict[str, Any]) -> Any:
    tenant = world["tenant"]
    with tenant_context(tenant.id):
        return build_dashboard(session, tenant, clock.today_in(tenant.timezone), clock.now())


def _rows(board: Any, key: str) -> dict[str, tuple[int, ...]]:
    return {row.label: row.values for row in board.chart(key).rows}


def test_counts(session: Session, world: dict[str, Any]) -> None:
    board = _board(session, world)
    # levels 5, 4, 3, 2, 1, 0 and "no level"
    assert _rows(board, "org-levels") == {
        "甲机关党委": (1, 3, 1, 0, 0, 0, 1),
        "乙机关党委": (1, 6, 1, 1, 0, 0, 0),
        "工委直属党支部": (1, 0, 0, 0, 0, 0, 0),
    }
    assert _rows(board, "branch-years") == {"2024年度": (1, 0, 0, 0, 2, 0), "2025年度": (3, 9, 2, 1, 0, 0)}
    # 2026Q1: 甲3 still self-assessing is not counted; four members 不予评星
    assert _rows(board, "member-periods") == {
        "2025年第四季度": (1, 1, 1, 0, 0, 0, 1),
        "2026年第一季度": (1, 0, 0, 1, 1, 0, 4),
    }
    medals = board.chart("medals")
    assert medals.rows and all(row.values[0] == 2 for row in medals.rows)  # 甲1 and 直属: gold everywhere
    assert [s.label for s in medals.series][:3] == ["金星", "银星", "铜星"]
    steps = {s.key: i for i, s in enumerate(board.chart("member-rounds").series)}
    (progress,) = board.chart("member-rounds").rows
    assert progress.values[steps["notice"]] == 2 and progress.values[steps["self"]] == 1 and progress.total == 3
    (rating,) = board.chart("branch-rounds").rows
    assert rating.label == "2026年度" and rating.values[0] == 2  # both at 荐星
    overdue = {item.key: item.count for item in board.overdue}
    assert overdue == {"member-round": 1, "branch-round": 0, "rectification": 3}


def test_page_and_every_chart_download(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    login(world["tenant"], world["committee"])
    page = client.get("/t/overview/overview/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count("<svg") >= 5 and "甲机关党委" in html and "<script" not in html.split("</header>")[-1]
    for key in CHART_KEYS:
        response = client.get(f"/t/overview/overview/chart.xlsx?chart={key}")
        assert response.status_code == 200, key
        book = openpyxl.load_workbook(io.BytesIO(response.data))
        assert book.sheetnames == ["说明", "数据"]
    data = openpyxl.load_workbook(io.BytesIO(client.get("/t/overview/overview/chart.xlsx?chart=org-levels").data))[
        "数据"
    ]
    rows = list(data.iter_rows(values_only=True))
    assert rows[0][0] == "单位" and rows[0][-1] == "合计"
    assert rows[1] == ("甲机关党委", 1, 3, 1, 0, 0, 0, 1, 6)
    assert client.get("/t/overview/overview/chart.xlsx?chart=nope").status_code == 404


def test_statements_do_not_grow(
    client: FlaskClient,
    login: Any,
    session: Session,
    engine: Engine,
    create_tenant: Any,
    create_org: Any,
    create_member: Any,
    create_account: Any,
    frozen_today: Any,
) -> None:
    counts: list[dict[str, int]] = []
    for slug, extra in (("small", 0), ("large", 12)):
        world = build_tree(session, create_tenant, create_org, slug, extra=extra)
        world = add_accounts(add_follow_ups(session, world, create_member, extra=extra), create_account, create_member)
        login(world["tenant"], world["committee"])
        seen: dict[str, int] = {}
        pages = {
            "dashboard": "",
            "advanced": "advanced",
            "advanced.xlsx": "advanced.xlsx",
            "followups": "followups",
            "branch": f"followups/branches/{world['j'][1].id}",
            "chart": "chart.xlsx?chart=medals",
        }
        for name, path in pages.items():
            with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK TO")) as statements:
                assert client.get(f"/t/{slug}/overview/{path}").status_code == 200, path
            seen[name] = len(statements)
        counts.append(seen)
        client.post(f"/t/{slug}/logout")
    assert counts[0] == counts[1]


def test_plans_panel(session: Session, world: dict[str, Any]) -> None:
    """The newest work year's plans by programme: items done, overdue (deadline before today, not done),
    still running; and the plans by state. The overdue items are listed with the overdue things."""
    import datetime as dt

    from sqlalchemy import select

    from fivestar.branch_rounds.models import BranchRating, BranchRound
    from fivestar.improvement.models import ImprovementPlan, ItemStatus, PlanItem, PlanState
    from fivestar.kernel.rounds import seeding

    tenant = world["tenant"]
    with tenant_context(tenant.id):
        ratings = {
            r.branch_id: r
            for r in session.scalars(
                select(BranchRating)
                .join(BranchRound, BranchRound.id == BranchRating.round_id)
                .where(BranchRound.year == 2025)
            )
        }
        for branch, programme, label, state, items in (
            (
                world["j"][0],
                "model",
                "示范",
                PlanState.PUBLISHED,
                [
                    (ItemStatus.DONE, dt.date(2026, 3, 1)),
                    (ItemStatus.IN_PROGRESS, dt.date(2026, 3, 1)),
                    (ItemStatus.NOT_STARTED, dt.date(2026, 12, 31)),
                ],
            ),
            (world["y"][5], "improve", "提升", PlanState.DRAFT, [(ItemStatus.NOT_STARTED, dt.date(2026, 4, 1))]),
        ):
            rating = ratings[branch.id]
            plan = ImprovementPlan(
                tenant_id=tenant.id,
                round_id=rating.round_id,
                rating_id=rating.id,
                branch_id=branch.id,
                year=2026,
                level=rating.decided_level or 0,
                programme_key=programme,
                programme_label=label,
            )
            with seeding():
                plan.state = state
            session.add(plan)
            session.flush()
            for position, (status, deadline) in enumerate(items):
                session.add(
                    PlanItem(
                        tenant_id=tenant.id,
                        plan_id=plan.id,
                        position=position,
                        problem="问题",
                        status=status,
                        deadline=deadline,
                    )
                )
        session.flush()
    board = _board(session, world)
    assert _rows(board, "plan-items") == {"示范": (1, 1, 1), "提升": (0, 1, 0)}
    assert _rows(board, "plan-states") == {"示范": (0, 1, 0), "提升": (1, 0, 0)}
    assert {item.key: item.count for item in board.overdue}["plan-items"] == 2
