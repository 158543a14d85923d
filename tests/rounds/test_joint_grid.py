"""党群联评: the meeting record (date, attendance, the public representatives' share) and the one grid
for the whole branch — prefilled from the self-assessment, saved all at once or not at all, and a
fixed number of SQL statements whatever the branch size."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import OrgKind, Role
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import branch, branch_pages, core
from fivestar.member_rounds.models import BranchStep, Evaluation, RoundBranch, ScoreStage, SelfState
from fivestar.member_rounds.opening import open_round
from fivestar.tenancy import tenant_context
from tests.rounds.branch_support import (
    after,
    context,
    evaluations,
    grid_post,
    round_branch,
    scores_for,
    stage_scores,
    text,
    url,
    walk_to,
)
from tests.support import count_queries


@pytest.fixture
def joint(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one at 党群联评, every self-assessment submitted with a total of 90."""
    walk_to(session, opened, BranchStep.JOINT)
    return opened


def _meeting(ctx: branch.BranchContext, **values: str) -> dict[str, str]:
    form = {"meeting_date": ctx.today.isoformat(), "members_present": "3", "public_present": "1", "meeting_note": ""}
    form.update(values)
    return form


# --- the meeting -----------------------------------------------------------------------------------


def test_meeting_is_recorded_and_audited(session: Session, joint: dict[str, Any]) -> None:
    ctx = context(session, joint)
    with tenant_context(joint["tenant"].id):
        warning = branch.save_meeting(session, ctx, _meeting(ctx), ctx.round_branch.version)
        session.flush()
    rb = ctx.round_branch
    assert warning is None  # 20 % of 3 members is 0.6: one public representative is enough
    assert (rb.meeting_date, rb.members_present, rb.public_present) == (ctx.today, 3, 1)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "round_branch.meeting"))
    assert event is not None and event.after["public_present"] == 1


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"meeting_date": "2026-04-08"}, "meeting_date", "不能晚于今天"),
        ({"meeting_date": "2026-03-30"}, "meeting_date", "不能早于本轮评定开启的日期"),
        ({"meeting_date": "4/7"}, "meeting_date", "格式不对"),
        ({"members_present": "4"}, "members_present", "不能多于本支部参评党员 3 人"),
        ({"members_present": "-1"}, "members_present", "不能为负数"),
        ({"public_present": ""}, "public_present", "请填写"),
        ({"public_present": "x"}, "public_present", "须为整数"),
    ],
)
def test_meeting_input_is_checked(
    session: Session, joint: dict[str, Any], values: dict[str, str], field: str, message: str
) -> None:
    ctx = context(session, joint)
    with tenant_context(joint["tenant"].id), pytest.raises(ServiceError) as refused:
        branch.save_meeting(session, ctx, _meeting(ctx, **values), ctx.round_branch.version)
    assert message in refused.value.errors[field]  # type: ignore[attr-defined]
    assert ctx.round_branch.meeting_date is None


def test_too_few_public_representatives_are_shown_and_must_be_explained(
    session: Session, opened: dict[str, Any], create_member: Any
) -> None:
    # 13 members: 20 % is 2.6, so at least 3 public representatives.
    for i in range(10):
        create_member(opened["tenant"], opened["two"], name=f"增{i}", member_no=f"C{i:03d}")
    with tenant_context(opened["tenant"].id):
        open_round(session, opened["tenant"], period_key="2025Q4")
        session.flush()
        rb_id = session.scalar(
            select(RoundBranch.id).join(Evaluation, Evaluation.round_branch_id == RoundBranch.id)
            .where(RoundBranch.branch_id == opened["two"].id).group_by(RoundBranch.id)
            .order_by(RoundBranch.id.desc()).limit(1)
        )
        rb = core.load_round_branch(session, rb_id)
        with seeding():
            rb.step = BranchStep.JOINT
        session.flush()
        ctx = branch.context_for(session, rb)
        assert ctx.facts.members == 13
        with pytest.raises(ServiceError) as refused:
            branch.save_meeting(session, ctx, _meeting(ctx, members_present="12"), rb.version)
        expected = "群众代表 1 人，少于党员人数 13 的 20%（至少 3 人）"
        assert expected in refused.value.errors["meeting_note"]  # type: ignore[attr-defined]
        warning = branch.save_meeting(
            session, ctx, _meeting(ctx, members_present="12", meeting_note="两名群众代表临时出差"), rb.version
        )
        session.flush()
    assert warning == expected
    assert rb.meeting_note == "两名群众代表临时出差"


def test_rules_without_a_minimum_share_warn_about_nothing(joint: dict[str, Any], session: Session) -> None:
    rules = context(session, joint).rules

    class NoMeeting:
        member = type("M", (), {"meeting": None})()

    assert branch.meeting_shortfall(rules, 13, 1) is not None
    assert branch.meeting_shortfall(NoMeeting(), 13, 0) is None  # type: ignore[arg-type]


def test_meeting_after_the_joint_deadline_is_refused(session: Session, joint: dict[str, Any], frozen_now: Any) -> None:
    frozen_now.move(after(joint["round"].joint_due_at))
    ctx = context(session, joint)
    with tenant_context(joint["tenant"].id), pytest.raises(ConflictError, match="党群联评已截止于"):
        branch.save_meeting(session, ctx, _meeting(ctx), ctx.round_branch.version)


# --- the grid --------------------------------------------------------------------------------------


def test_the_grid_is_prefilled_from_the_self_assessment(session: Session, joint: dict[str, Any]) -> None:
    ctx = context(session, joint)
    with tenant_context(joint["tenant"].id):
        grid = branch_pages.joint_grid(session, ctx)
    expected = scores_for(grid.fields, 90)
    assert [row.member.name for row in grid.rows] == ["赵书记", "钱支委", "孙党员"]
    for row in grid.rows:
        assert {name: row.values[name] for name in expected} == expected
        assert row.reference == expected
    assert grid.refusal is None


def test_saving_the_grid_writes_joint_scores_for_everyone(session: Session, joint: dict[str, Any]) -> None:
    ones = evaluations(session, joint)
    versions = [e.version for e in ones]
    ctx = context(session, joint)
    fields = core.score_fields(ctx.rules)
    post = grid_post([
        (ones[0], {**scores_for(fields, 95), "strengths": "带头学习", "weaknesses": ""}),
        (ones[1], {**scores_for(fields, 82), "strengths": "", "weaknesses": "服务群众不够主动"}),
        (ones[2], scores_for(fields, 60)),
    ])
    with tenant_context(joint["tenant"].id):
        assert branch.save_joint(session, ctx, post) == 3
        session.flush()
    totals = [sum(stage_scores(session, joint, e.id, ScoreStage.JOINT).values()) for e in ones]
    assert totals == [95, 82, 60]
    assert sum(stage_scores(session, joint, ones[0].id, ScoreStage.SELF).values()) == 90  # self untouched
    fresh = evaluations(session, joint)
    texts = [(e.strengths, e.weaknesses) for e in fresh]
    assert texts == [("带头学习", None), (None, "服务群众不够主动"), (None, None)]
    assert [e.version for e in fresh] == [v + 1 for v in versions]
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "evaluation.joint")))
    assert len(events) == 3 and {e.object_id for e in events} == {str(e.id) for e in ones}
    # the grid now shows the joint values, with the self scores beside
    with tenant_context(joint["tenant"].id):
        grid = branch_pages.joint_grid(session, context(session, joint))
    assert grid.rows[0].values == {**scores_for(fields, 95), "strengths": "带头学习", "weaknesses": ""}
    assert grid.rows[0].reference == scores_for(fields, 90)


def test_one_wrong_cell_saves_nothing_and_names_the_cell(session: Session, joint: dict[str, Any]) -> None:
    ones = evaluations(session, joint)
    ctx = context(session, joint)
    fields = core.score_fields(ctx.rules)
    wrong = {**scores_for(fields, 80), fields[2].name: str(fields[2].max + Decimal("0.5"))}
    post = grid_post([(ones[0], scores_for(fields, 80)), (ones[1], wrong), (ones[2], {**scores_for(fields, 80),
                                                                                   fields[0].name: ""})])
    with tenant_context(joint["tenant"].id), pytest.raises(branch.GridError) as refused:
        branch.save_joint(session, ctx, post)
    assert set(refused.value.errors) == {(ones[1].id, fields[2].name), (ones[2].id, fields[0].name)}
    assert "须在 0 到" in refused.value.errors[(ones[1].id, fields[2].name)]
    assert all(stage_scores(session, joint, e.id, ScoreStage.JOINT) == {} for e in ones)


def test_a_stale_row_refuses_the_whole_save(session: Session, joint: dict[str, Any]) -> None:
    ones = evaluations(session, joint)
    ctx = context(session, joint)
    fields = core.score_fields(ctx.rules)
    post = grid_post([(e, scores_for(fields, 80)) for e in ones])
    post[branch.cell_name(ones[1].id, "version")] = str(ones[1].version - 1)
    with tenant_context(joint["tenant"].id), pytest.raises(branch.StaleRowsError) as refused:
        branch.save_joint(session, ctx, post)
    assert refused.value.status == 409 and refused.value.names == ["钱支委"]
    assert all(stage_scores(session, joint, e.id, ScoreStage.JOINT) == {} for e in ones)


def test_the_grid_is_closed_after_the_deadline_and_outside_its_step(
    session: Session, joint: dict[str, Any], opened: dict[str, Any], frozen_now: Any
) -> None:
    ones = evaluations(session, joint)
    fields = core.score_fields(context(session, joint).rules)
    post = grid_post([(e, scores_for(fields, 80)) for e in ones])
    frozen_now.move(after(joint["round"].joint_due_at))
    with tenant_context(joint["tenant"].id):
        grid = branch_pages.joint_grid(session, context(session, joint))
        assert grid.refusal is not None and "党群联评已截止于" in grid.refusal
        with pytest.raises(ConflictError, match="党群联评已截止于"):
            branch.save_joint(session, context(session, joint), post)
        with pytest.raises(ConflictError, match="当前处于“个人自评”阶段"):
            branch.save_joint(session, context(session, opened, "two"), {})


def test_the_grid_page_saves_and_shows_errors_beside_cells(
    session: Session, client: FlaskClient, login: Any, joint: dict[str, Any]
) -> None:
    ones = evaluations(session, joint)
    rb = round_branch(session, joint)
    fields = core.score_fields(context(session, joint).rules)
    login(joint["tenant"], joint["secretary"])
    page = text(client.get(url(joint, f"/{rb.id}/joint")))
    first = branch.cell_name(ones[0].id, fields[0].name)
    assert f'name="{first}"' in page and 'inputmode="decimal"' in page
    assert f"自评 {scores_for(fields, 90)[fields[0].name]}" in page
    # inputs come row by row, in the rules' order (the tab order)
    names = re.findall(r'name="(r\d+\.[^"]+)"', page)
    last_of_first = names.index(branch.cell_name(ones[0].id, "weaknesses"))
    assert last_of_first < names.index(branch.cell_name(ones[1].id, fields[0].name))
    wrong = grid_post([(e, {**scores_for(fields, 80), "strengths": "认真"}) for e in ones])
    wrong[branch.cell_name(ones[2].id, fields[3].name)] = "99"
    response = client.post(url(joint, f"/{rb.id}/joint"), data=wrong)
    body = text(response)
    assert response.status_code == 400
    assert f'id="{branch.cell_name(ones[2].id, fields[3].name)}-error"' in body
    assert 'value="99"' in body and "认真" in body  # everything typed is kept
    assert all(stage_scores(session, joint, e.id, ScoreStage.JOINT) == {} for e in ones)
    right = grid_post([(e, scores_for(fields, 80)) for e in ones])
    assert client.post(url(joint, f"/{rb.id}/joint"), data=right).status_code == 302
    assert all(sum(stage_scores(session, joint, e.id, ScoreStage.JOINT).values()) == 80 for e in ones)


def test_the_meeting_form_through_the_page(
    session: Session, client: FlaskClient, login: Any, joint: dict[str, Any]
) -> None:
    rb = round_branch(session, joint)
    login(joint["tenant"], joint["branch_committee"])
    version = str(rb.version)
    future = client.post(url(joint, f"/{rb.id}/joint/meeting"),
                         data={"meeting_date": "2026-05-01", "members_present": "3", "public_present": "1",
                               "version": version})
    assert future.status_code == 400 and "不能晚于今天" in text(future) and 'value="2026-05-01"' in text(future)
    saved = client.post(url(joint, f"/{rb.id}/joint/meeting"),
                        data={"meeting_date": "2026-04-07", "members_present": "3", "public_present": "1",
                              "version": version})
    assert saved.status_code == 302
    stale = client.post(url(joint, f"/{rb.id}/joint/meeting"),
                        data={"meeting_date": "2026-04-07", "members_present": "2", "public_present": "1",
                              "version": version})
    assert stale.status_code == 409
    with tenant_context(joint["tenant"].id):
        session.refresh(rb)
    assert rb.members_present == 3


# --- a fixed number of statements ------------------------------------------------------------------


@pytest.fixture
def two_sizes(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any, frozen_now: Any
) -> dict[str, Any]:
    """A district with a branch of 5 and one of 60, both at 党群联评 with self scores."""
    tenant = create_tenant(slug="grid-sizes")
    party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="机关党委")
    small = create_org(tenant, OrgKind.BRANCH, parent=party, name="小支部")
    large = create_org(tenant, OrgKind.BRANCH, parent=party, name="大支部")
    for _ in range(5):
        create_member(tenant, small)
    for _ in range(60):
        create_member(tenant, large)
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin")
    with tenant_context(tenant.id):
        member_round = open_round(session, tenant).round
        rules = core.round_rules(session, member_round)
        fields = core.score_fields(rules)
        values = {f.key: f.max for f in fields}
        ids = list(session.scalars(select(Evaluation.id).where(Evaluation.round_id == member_round.id)))
        core.write_scores(session, ids, ScoreStage.SELF, {i: values for i in ids})
        session.execute(update(Evaluation).where(Evaluation.round_id == member_round.id)
                        .values(self_state=SelfState.SUBMITTED))
        session.execute(update(RoundBranch).where(RoundBranch.round_id == member_round.id)
                        .values(step=BranchStep.JOINT))
        session.flush()
        branches = {
            org.name: session.scalar(select(RoundBranch.id).where(RoundBranch.branch_id == org.id))
            for org in (small, large)
        }
    return {"tenant": tenant, "admin": admin, "round": member_round, "branches": branches}


def _grid_form(page: str) -> dict[str, str]:
    """What a browser would post from the grid page: every named input and textarea as rendered."""
    form = dict(re.findall(r'<input[^>]*name="(r\d+\.[^"]+)"[^>]*value="([^"]*)"', page, flags=re.S))
    for name in re.findall(r'<textarea[^>]*name="(r\d+\.[^"]+)"', page):
        form.setdefault(name, "")
    return form


def test_the_grid_runs_the_same_number_of_statements_for_5_and_for_60_members(
    app: Flask, client: FlaskClient, login: Any, two_sizes: dict[str, Any]
) -> None:
    engine = app.extensions["fivestar.engine"]
    login(two_sizes["tenant"], two_sizes["admin"])
    counts: dict[str, tuple[int, int]] = {}
    for name, rb_id in two_sizes["branches"].items():
        path = f"/t/grid-sizes/rounds/branch/{rb_id}/joint"
        client.get(path)  # warm: the rules of the round are parsed once per version
        with count_queries(engine) as rendered:
            page = client.get(path)
        assert page.status_code == 200
        form = _grid_form(text(page))
        assert len([k for k in form if k.endswith(".version")]) == (5 if name == "小支部" else 60)
        with count_queries(engine) as saved:
            response = client.post(path, data=form)
        assert response.status_code == 302, text(response)[:2000]
        counts[name] = (len(rendered), len(saved))
    assert counts["小支部"] == counts["大支部"], counts
