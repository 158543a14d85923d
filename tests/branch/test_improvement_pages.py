"""The rectification plan's pages: who may see and change what (another branch's secretary and another
district: 404; a member or the committee editing: 403), the branch's edits and the publishing
confirmation, the public page, the committee's acceptance review with its confirmation step, next
year's dossier showing it, and stale saves answering 409."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating
from fivestar.enums import OrgKind
from fivestar.improvement.models import AcceptanceReview, ImprovementPlan, Outcome, PlanItem, PlanState
from fivestar.tenancy import tenant_context
from tests.branch.improvement_support import fill_items, with_plans
from tests.branch.publication_support import ONE_TOTALS, Decided, build_round
from tests.conftest import TEST_PASSWORD

QUESTIONS = ("carried_out", "problems_solved", "study", "service", "innovation", "satisfaction")


def _url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}/improvement{path}"


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _as(client: FlaskClient, login: Any, world: dict[str, Any], account: str) -> None:
    client.post(f"/t/{world['tenant'].slug}/logout")
    login(world["tenant"], world[account])


def _version(page: str, action: str | None = None) -> str:
    scope = page
    if action is not None:
        start = page.index(f'action="{action}"')
        scope = page[start:]
    found = re.search(r'name="version" type="hidden" value="(\d+)"', scope) or re.search(
        r'name="version" value="(\d+)"', scope
    )
    assert found is not None, scope[:2000]
    return found.group(1)


def _fresh(session: Session, world: dict[str, Any], model: Any, ident: int) -> Any:
    with tenant_context(world["tenant"].id):
        return session.scalar(select(model).where(model.id == ident).execution_options(populate_existing=True))


def _scalar(session: Session, world: dict[str, Any], statement: Any) -> Any:
    with tenant_context(world["tenant"].id):
        return session.scalar(statement)


def _scalars(session: Session, world: dict[str, Any], statement: Any) -> list[Any]:
    with tenant_context(world["tenant"].id):
        return list(session.scalars(statement))


def test_who_may_see_and_change_a_plan(
    client: FlaskClient,
    login: Any,
    session: Session,
    published: dict[str, Any],
    create_tenant: Any,
    create_org: Any,
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    other = create_tenant(slug="other-district", name="另一个工委")
    other_branch = create_org(other, OrgKind.BRANCH, name="他区党支部", code="X01")
    other_round, _ratings = build_round(session, other, year=2024, decisions=[Decided(other_branch, 4, ONE_TOTALS)])
    from fivestar.improvement import services

    with tenant_context(other.id):
        [foreign] = services.create_plans_for_round(session, other_round)
    session.commit()
    page = _url(world, f"/plans/{plan.id}")
    _as(client, login, world, "secretary")
    assert client.get(page).status_code == 200
    assert client.get(_url(world, f"/plans/{world['plan_direct'].id}")).status_code == 404  # another branch
    assert client.get(_url(world, f"/plans/{foreign.id}")).status_code == 404  # another district
    index = _text(client.get(_url(world, "/")))
    assert "预算科党支部" in index and "区档案馆党支部" not in index
    _as(client, login, world, "direct_secretary")
    assert client.get(page).status_code == 404
    assert client.post(_url(world, f"/plans/{plan.id}/publish"), data={"version": plan.version}).status_code == 404
    _as(client, login, world, "member")  # a member of the branch: sees the branch, may not edit
    assert client.post(_url(world, f"/plans/{plan.id}/publish"), data={"version": plan.version}).status_code == 403
    _as(client, login, world, "committee")
    assert client.get(page).status_code == 200
    item = _fresh(
        session, world, PlanItem, _scalar(session, world, select(PlanItem.id).where(PlanItem.plan_id == plan.id))
    )
    edit = client.post(
        _url(world, f"/plans/{plan.id}/items/{item.id}/edit"), data={"problem": "x", "version": item.version}
    )
    assert edit.status_code == 403
    # the committee may review, not write: a draft cannot be reviewed yet (409)
    review = client.post(
        _url(world, f"/plans/{plan.id}/review"),
        data={
            **{f"verdict_{key}": "met" for key in QUESTIONS},
            "outcome": "keep",
            "version": plan.version,
            "confirmed": "1",
        },
    )
    assert review.status_code == 409 and "当前为“草稿”" in _text(review)


def test_a_secretary_writes_publishes_and_the_public_reads_it(
    app: Flask, client: FlaskClient, login: Any, session: Session, published: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    session.commit()
    _as(client, login, world, "secretary")
    page = _text(client.get(_url(world, f"/plans/{plan.id}")))
    assert "党建工作创新" in page and "公布计划" in page
    added = client.post(
        _url(world, f"/plans/{plan.id}/items"),
        data={
            "problem": "学习制度执行不严",
            "measure": "每月集中学习一次",
            "owner": "钱支委",
            "deadline": "2025-04-30",
        },
    )
    assert added.status_code == 303
    bad = client.post(_url(world, f"/plans/{plan.id}/items"), data={"problem": ""})
    assert bad.status_code == 400 and "请填写存在的问题" in _text(bad)
    confirm = _text(client.get(_url(world, f"/plans/{plan.id}/publish")))
    assert "还有 3 项整改事项未填写" in confirm and "确认公布" not in confirm
    public = app.test_client()
    assert public.get(_url(world, f"/public/plans/{plan.id}")).status_code == 404  # a draft is not public
    assert "各党支部整改提升计划公示" not in _text(public.get(f"/t/{world['tenant'].slug}/stars/"))
    for item_id in _scalars(
        session, world, select(PlanItem.id).where(PlanItem.plan_id == plan.id, PlanItem.owner.is_(None))
    ):
        item = _fresh(session, world, PlanItem, item_id)
        saved = client.post(
            _url(world, f"/plans/{plan.id}/items/{item_id}/edit"),
            data={
                "problem": item.problem,
                "measure": "对照标准补齐",
                "owner": "赵书记",
                "deadline": "2025-06-30",
                "status": "not_started",
                "version": item.version,
            },
        )
        assert saved.status_code == 303, _text(saved)[:2000]
    confirm = _text(client.get(_url(world, f"/plans/{plan.id}/publish")))
    assert "确认公布" in confirm
    done = client.post(_url(world, f"/plans/{plan.id}/publish"), data={"version": _version(confirm)})
    assert done.status_code == 303
    assert _fresh(session, world, ImprovementPlan, plan.id).state is PlanState.PUBLISHED
    shown = public.get(_url(world, f"/public/plans/{plan.id}"))
    assert shown.status_code == 200 and "学习制度执行不严" in _text(shown) and "每月集中学习一次" in _text(shown)
    assert "预算科党支部" in _text(public.get(_url(world, "/public/")))
    stars = _text(public.get(f"/t/{world['tenant'].slug}/stars/"))  # the public stars page links the plans
    assert "各党支部整改提升计划公示" in stars and _url(world, "/public/") in stars


def test_an_item_edit_opened_before_someone_elses_save_is_a_409_that_keeps_what_was_typed(
    app: Flask, client: FlaskClient, login: Any, session: Session, published: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    session.commit()
    item_id = _scalar(
        session, world, select(PlanItem.id).where(PlanItem.plan_id == plan.id).order_by(PlanItem.position)
    )
    _as(client, login, world, "secretary")
    other = app.test_client()
    other.post(f"/t/{world['tenant'].slug}/login", data={"username": "zhiwei", "password": TEST_PASSWORD})
    address = _url(world, f"/plans/{plan.id}/items/{item_id}/edit")
    version = _version(_text(client.get(address)))
    assert _version(_text(other.get(address))) == version
    first = client.post(address, data={"problem": "甲先保存的", "version": version, "status": "not_started"})
    assert first.status_code == 303
    stale = other.post(address, data={"problem": "乙后保存的", "version": version, "status": "not_started"})
    assert stale.status_code == 409 and "已被他人修改" in _text(stale) and "乙后保存的" in _text(stale)
    assert _fresh(session, world, PlanItem, item_id).problem == "甲先保存的"
    blind = other.post(address, data={"problem": "没有版本号", "status": "not_started"})
    assert blind.status_code == 409
    again = other.post(
        address, data={"problem": "乙后保存的", "version": _version(_text(stale)), "status": "not_started"}
    )
    assert again.status_code == 303 and _fresh(session, world, PlanItem, item_id).problem == "乙后保存的"


def _publish(session: Session, world: dict[str, Any], plan: ImprovementPlan) -> None:
    from fivestar.improvement import services

    fill_items(session, world, plan)
    with tenant_context(world["tenant"].id):
        services.publish(session, plan, version=plan.version)
    session.commit()


def test_the_committee_records_the_acceptance_after_a_confirmation_and_next_years_dossier_shows_it(
    client: FlaskClient, login: Any, session: Session, published: dict[str, Any], opened: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    _publish(session, world, plan)
    _as(client, login, world, "committee")
    address = _url(world, f"/plans/{plan.id}/review")
    version = _version(_text(client.get(address)))
    answers = {f"verdict_{key}": "met" for key in QUESTIONS}
    answers["verdict_study"] = "partly"
    missing = client.post(address, data={**answers, "text_study": "", "outcome": "keep", "version": version})
    assert missing.status_code == 400 and "未完全达到，请写明情况" in _text(missing)
    answers["text_study"] = "学习频次不够"
    no_deadline = client.post(address, data={**answers, "outcome": "rectify", "version": version})
    assert no_deadline.status_code == 400 and "限期再整改须填写整改期限" in _text(no_deadline)
    confirming = client.post(
        address,
        data={**answers, "outcome": "rectify", "rectify_by": "2026-06-30", "summary": "总体较好", "version": version},
    )
    assert confirming.status_code == 200 and "请确认验收结果" in _text(confirming)
    assert _scalar(session, world, select(AcceptanceReview.id).where(AcceptanceReview.plan_id == plan.id)) is None
    recorded = client.post(
        address,
        data={
            **answers,
            "outcome": "rectify",
            "rectify_by": "2026-06-30",
            "summary": "总体较好",
            "version": version,
            "confirmed": "1",
        },
    )
    assert recorded.status_code == 303, _text(recorded)[:3000]
    assert _fresh(session, world, ImprovementPlan, plan.id).state is PlanState.REVIEWED
    with tenant_context(world["tenant"].id):
        review = session.scalar(select(AcceptanceReview).where(AcceptanceReview.plan_id == plan.id))
    assert review is not None and review.outcome is Outcome.RECTIFY and review.rectify_by == dt.date(2026, 6, 30)
    again = client.post(address, data={**answers, "outcome": "keep", "version": version, "confirmed": "1"})
    assert again.status_code == 409
    # The 2025 round (opened in `opened`) is next year's: its dossier of branch `one` shows the review.
    rating_id = _scalar(
        session,
        world,
        select(BranchRating.id).where(
            BranchRating.round_id == opened["round"].id, BranchRating.branch_id == world["one"].id
        ),
    )
    _as(client, login, world, "admin")
    dossier = _text(client.get(f"/t/{world['tenant'].slug}/branch-rating/dossier/{rating_id}"))
    assert "上年度整改提升与考核验收（2025年）" in dossier
    assert "限期再整改（期限 2026-06-30）" in dossier and "学习频次不够" in dossier


def test_the_committee_creates_the_plans_of_a_year_finalised_before_plans_existed(
    client: FlaskClient, login: Any, session: Session, published: dict[str, Any]
) -> None:
    session.commit()
    _as(client, login, published, "secretary")
    address = _url(published, f"/rounds/{published['published_round'].id}/plans")
    assert client.post(address).status_code == 403
    _as(client, login, published, "committee")
    assert "为 2024 年度定星结果生成整改提升计划" in _text(client.get(_url(published, "/")))
    assert client.post(address).status_code == 303
    with tenant_context(published["tenant"].id):
        assert len(session.scalars(select(ImprovementPlan)).all()) == 2
    assert client.post(_url(published, "/rounds/999999/plans")).status_code == 404


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 16, 46)).save(out, "PNG")
    return out.getvalue()


def test_evidence_files_of_an_item_and_of_the_review(
    app: Flask, client: FlaskClient, login: Any, session: Session, published: dict[str, Any], tmp_path: Any
) -> None:
    import io

    from fivestar.improvement.models import ImprovementFile

    app.config["IMPROVEMENT_FILES_DIR"] = str(tmp_path)
    try:
        world = with_plans(session, published)
        plan = world["plan_one"]
        _publish(session, world, plan)
        item_id = _scalar(session, world, select(PlanItem.id).where(PlanItem.plan_id == plan.id).limit(1))
        _as(client, login, world, "secretary")
        address = _url(world, f"/plans/{plan.id}/items/{item_id}/files")
        bad = client.post(
            address, data={"files": (io.BytesIO(b"MZ not a picture"), "x.exe")}, content_type="multipart/form-data"
        )
        assert bad.status_code == 400 and "不是 PDF 或图片" in _text(bad)
        sent = client.post(
            address, data={"files": (io.BytesIO(_png()), "台账.png")}, content_type="multipart/form-data"
        )
        assert sent.status_code == 303
        row = _scalar(session, world, select(ImprovementFile).where(ImprovementFile.item_id == item_id))
        assert row is not None and row.content_type == "image/png" and row.plan_id == plan.id
        got = client.get(_url(world, f"/files/{row.id}"))
        assert got.status_code == 200 and got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Disposition"].startswith("attachment")
        assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert got.headers["Cross-Origin-Resource-Policy"] == "same-origin"
        _as(client, login, world, "direct_secretary")  # another branch: the file is not there for them
        assert client.get(_url(world, f"/files/{row.id}")).status_code == 404
        assert client.post(_url(world, f"/files/{row.id}/delete")).status_code == 404
        _as(client, login, world, "committee")
        review_files = _url(world, f"/plans/{plan.id}/review/files")
        assert (
            client.post(
                review_files, data={"files": (io.BytesIO(_png()), "验收.png")}, content_type="multipart/form-data"
            ).status_code
            == 303
        )
        assert "验收.png" in _text(client.get(_url(world, f"/plans/{plan.id}/review")))
        _as(client, login, world, "secretary")
        assert (
            client.post(
                review_files, data={"files": (io.BytesIO(_png()), "x.png")}, content_type="multipart/form-data"
            ).status_code
            == 403
        )
        assert client.post(_url(world, f"/files/{row.id}/delete")).status_code == 303
        assert _scalar(session, world, select(ImprovementFile.id).where(ImprovementFile.item_id == item_id)) is None
    finally:
        app.config.pop("IMPROVEMENT_FILES_DIR", None)


def test_the_home_pages_list_the_plan_work_one_tap_away(
    client: FlaskClient, login: Any, session: Session, published: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    _publish(session, world, plan)  # items due 30 June 2025: overdue by now
    home = f"/t/{world['tenant'].slug}/"
    _as(client, login, world, "secretary")
    page = _text(client.get(home))
    assert "整改事项已逾期" in page and _url(world, f"/plans/{plan.id}") in page
    assert client.get(_url(world, f"/plans/{plan.id}")).status_code == 200
    _as(client, login, world, "direct_secretary")
    page = _text(client.get(home))
    assert "完成并公布整改提升计划" in page and _url(world, f"/plans/{world['plan_direct'].id}") in page
    _as(client, login, world, "committee")
    page = _text(client.get(home))
    assert "整改提升计划考核验收" in page and _url(world, "/?year=2025") in page
    assert client.get(_url(world, "/?year=2025")).status_code == 200


def test_progress_after_publishing_moves_by_status_only(
    client: FlaskClient, login: Any, session: Session, published: dict[str, Any]
) -> None:
    world = with_plans(session, published)
    plan = world["plan_one"]
    _publish(session, world, plan)
    item = _fresh(
        session,
        world,
        PlanItem,
        _scalar(
            session, world, select(PlanItem.id).where(PlanItem.plan_id == plan.id).order_by(PlanItem.position).limit(1)
        ),
    )
    _as(client, login, world, "branch_committee")  # 支委 of the branch may record progress too
    page = _text(client.get(_url(world, f"/plans/{plan.id}")))
    assert "更新进度" in page and "已逾期" in page  # the deadline 30 June 2025 has passed
    address = _url(world, f"/plans/{plan.id}/items/{item.id}/status")
    opened = item.version
    done = client.post(address, data={"status": "done", "version": opened})
    assert done.status_code == 303
    stored = _fresh(session, world, PlanItem, item.id)
    assert stored.status.value == "done" and stored.completed_on is not None
    stale = client.post(address, data={"status": "in_progress", "version": opened})
    assert stale.status_code == 409 and _fresh(session, world, PlanItem, item.id).status.value == "done"
    content = client.post(_url(world, f"/plans/{plan.id}/items"), data={"problem": "新问题"})
    assert content.status_code == 409 and "计划已公布" in _text(content)
    _as(client, login, world, "member")
    assert client.post(address, data={"status": "not_started", "version": stored.version}).status_code == 403
