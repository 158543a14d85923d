"""Follow-ups after the results: mentors for low-rated members (five-star members of the same branch
and round, up to the rules' number, never themselves), talk records, and rectification deadlines for
members not rated — each audited, none before the results are on public notice."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import followups
from fivestar.member_rounds.models import BranchStep, Mentorship, Rectification, TalkRecord
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.rounds.branch_support import context, evaluations, round_branch, text, url, walk_to

NOT_RATED = {"disqualifier": "under_investigation", "disqualifier_note": "正在接受组织审查"}


@pytest.fixture
def results(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one on public notice: 赵书记 五星 (95), 钱支委 二星 (60), 孙党员 不予评星; branch two's
    李1 五星 too (another branch)."""
    ones, twos = opened["ones"], opened["twos"]
    walk_to(session, opened, BranchStep.NOTICE, totals={ones[0].id: 95, ones[1].id: 60},
            extra={ones[2].id: NOT_RATED})
    walk_to(session, opened, BranchStep.NOTICE, key="two", totals={twos[0].id: 95})
    return opened


def _count(session: Session, world: dict[str, Any], model: Any) -> int:
    with tenant_context(world["tenant"].id):
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _events(session: Session, action: str) -> int:
    return int(session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def test_follow_ups_wait_for_the_public_notice(session: Session, opened: dict[str, Any]) -> None:
    walk_to(session, opened, BranchStep.REVIEW)
    ctx = context(session, opened)
    evaluation = evaluations(session, opened)[1]
    with tenant_context(opened["tenant"].id):
        assert followups.follow_up_page(session, ctx).refusal is not None
        with pytest.raises(ConflictError, match="提交公示后"):
            followups.record_talk(session, ctx, evaluation, {"talk_date": "2026-04-07", "talked_by": "赵书记",
                                                             "summary": "谈心"})


def test_who_needs_what(session: Session, results: dict[str, Any]) -> None:
    ctx = context(session, results)
    with tenant_context(results["tenant"].id):
        page = followups.follow_up_page(session, ctx)
    assert page.refusal is None
    rows = {row.member.name: row for row in page.rows}
    assert set(rows) == {"钱支委", "孙党员"}  # the five-star member needs nothing
    assert (rows["钱支委"].needs_mentors, rows["钱支委"].needs_talk, rows["钱支委"].needs_rectification) == (
        True, True, False,
    )
    assert (rows["孙党员"].needs_mentors, rows["孙党员"].needs_talk, rows["孙党员"].needs_rectification) == (
        False, False, True,
    )
    assert [m.name for m in rows["钱支委"].candidates] == ["赵书记"]  # not 李1 of the other branch
    assert rows["钱支委"].result == "二星" and rows["孙党员"].result == "不予评星"
    assert page.default_due == dt.date(2026, 4, 7) + dt.timedelta(days=90)


def test_mentors_are_five_star_members_of_the_same_branch(session: Session, results: dict[str, Any]) -> None:
    ctx = context(session, results)
    zhao, qian, sun = evaluations(session, results)
    li = evaluations(session, results, "two")[0]
    with tenant_context(results["tenant"].id):
        for chosen, message in (
            ([], "请选择帮扶指导员"),
            ([qian.member_id], "不能做自己的帮扶指导员"),
            ([sun.member_id], "本支部本轮评为五星"),
            ([li.member_id], "本支部本轮评为五星"),
            ([zhao.member_id, li.member_id], "最多安排 1 名"),
        ):
            with pytest.raises(ServiceError, match=message):
                followups.assign_mentors(session, ctx, qian, chosen)
        with pytest.raises(ServiceError, match="不需要安排帮扶指导员"):
            followups.assign_mentors(session, ctx, zhao, [zhao.member_id])
        assert _count(session, results, Mentorship) == 0
        mentors = followups.assign_mentors(session, ctx, qian, [zhao.member_id])
        session.flush()
        assert [m.name for m in mentors] == ["赵书记"]
        followups.assign_mentors(session, ctx, qian, [zhao.member_id])  # the same again: nothing new
        session.flush()
        rows = list(session.scalars(select(Mentorship)))
    assert [(m.evaluation_id, m.mentor_member_id) for m in rows] == [(qian.id, zhao.member_id)]
    assert _events(session, "evaluation.mentors") == 1


def test_talks_are_recorded_where_the_rules_ask_for_them(session: Session, results: dict[str, Any]) -> None:
    ctx = context(session, results)
    zhao, qian, _sun = evaluations(session, results)
    talk = {"talk_date": "2026-04-07", "talked_by": "赵书记", "summary": "指出不足，明确改进方向"}
    with tenant_context(results["tenant"].id):
        with pytest.raises(ServiceError, match="不需要谈话"):
            followups.record_talk(session, ctx, zhao, talk)
        with pytest.raises(ServiceError) as refused:
            followups.record_talk(session, ctx, qian, {**talk, "talk_date": "2026-04-08", "summary": ""})
        assert set(refused.value.errors) == {"talk_date", "summary"}  # type: ignore[attr-defined]
        record = followups.record_talk(session, ctx, qian, talk)
        session.flush()
    assert (record.talk_date, record.talked_by, record.recorded_by) == (dt.date(2026, 4, 7), "赵书记", "system")
    assert _count(session, results, TalkRecord) == 1 and _events(session, "evaluation.talk") == 1


def test_rectification_deadline_for_a_member_not_rated(session: Session, results: dict[str, Any]) -> None:
    ctx = context(session, results)
    _zhao, qian, sun = evaluations(session, results)
    with tenant_context(results["tenant"].id):
        with pytest.raises(ServiceError, match="只有不予评星"):
            followups.set_rectification(session, ctx, qian, {"due_on": "2026-07-06", "requirement": "x"})
        with pytest.raises(ServiceError) as refused:
            followups.set_rectification(session, ctx, sun, {"due_on": "2026-04-06", "requirement": ""})
        assert set(refused.value.errors) == {"due_on", "requirement"}  # type: ignore[attr-defined]
        followups.set_rectification(session, ctx, sun, {"due_on": "2026-07-06", "requirement": "按时参加组织生活"})
        session.flush()
        changed = followups.set_rectification(session, ctx, sun, {"due_on": "2026-08-01", "requirement": "写出检查"})
        session.flush()
    assert (changed.due_on, changed.requirement) == (dt.date(2026, 8, 1), "写出检查")
    assert _count(session, results, Rectification) == 1 and _events(session, "evaluation.rectification") == 2


def test_the_default_deadline_counts_from_the_finalised_day(session: Session, results: dict[str, Any]) -> None:
    rb = round_branch(session, results)
    with tenant_context(results["tenant"].id):
        with seeding():
            rb.step = BranchStep.FINALISED
        rb.finalised_at = dt.datetime(2026, 4, 20, 2, 0, tzinfo=dt.UTC)
        session.flush()
        assert followups.default_due(context(session, results)) == dt.date(2026, 7, 19)
    assert clock.now() < rb.finalised_at  # the deadline does not count from today


def test_the_follow_up_page(session: Session, client: FlaskClient, login: Any, results: dict[str, Any]) -> None:
    rb = round_branch(session, results)
    zhao, qian, sun = evaluations(session, results)
    login(results["tenant"], results["secretary"])
    dashboard = text(client.get(url(results, f"/{rb.id}")))
    assert f'href="/t/{results["tenant"].slug}/rounds/branch/{rb.id}/followups"' in dashboard
    page = text(client.get(url(results, f"/{rb.id}/followups")))
    assert f'id="e{qian.id}"' in page and f'id="e{sun.id}"' in page and f'id="e{zhao.id}"' not in page
    assert 'value="2026-07-06"' in page  # the rules' default deadline, editable
    refused = client.post(url(results, f"/evaluations/{qian.id}/mentors"), data={"mentor": [str(qian.member_id)]})
    assert refused.status_code == 400 and "不能做自己的帮扶指导员" in text(refused)
    done = client.post(url(results, f"/evaluations/{qian.id}/mentors"), data={"mentor": [str(zhao.member_id)]})
    assert done.status_code == 302
    talk = client.post(url(results, f"/evaluations/{qian.id}/talk"),
                       data={"talk_date": "2026-04-07", "talked_by": "赵书记", "summary": "谈心谈话"})
    assert talk.status_code == 302
    bad = client.post(url(results, f"/evaluations/{sun.id}/rectification"), data={"due_on": "", "requirement": "r"})
    assert bad.status_code == 400 and "请填写整改期限" in text(bad)
    good = client.post(url(results, f"/evaluations/{sun.id}/rectification"),
                       data={"due_on": "2026-07-06", "requirement": "按时交纳党费"})
    assert good.status_code == 302
    shown = text(client.get(url(results, f"/{rb.id}/followups")))
    assert "谈心谈话" in shown and "整改期限：2026-07-06" in shown and "按时交纳党费" in shown
    # another branch's secretary reaches none of it
    client.delete_cookie("fivestar_session")
    login(results["tenant"], results["other_secretary"])
    assert client.get(url(results, f"/{rb.id}/followups")).status_code == 404
    assert client.post(url(results, f"/evaluations/{qian.id}/talk"), data={}).status_code == 404


def test_recording_a_rectifications_result(session: Session, results: dict[str, Any]) -> None:
    ctx = context(session, results)
    _zhao, _qian, sun = evaluations(session, results)
    today = clock.today_in("Asia/Shanghai")
    with tenant_context(results["tenant"].id):
        with pytest.raises(ServiceError, match="请先设定整改期限"):
            followups.record_rectification_result(session, ctx, sun, {"completed_on": today.isoformat(),
                                                                       "outcome": "已整改"})
        followups.set_rectification(session, ctx, sun, {"due_on": "2026-07-06", "requirement": "按时参加组织生活"})
        session.flush()
        tomorrow = (today + dt.timedelta(days=1)).isoformat()
        with pytest.raises(ServiceError) as refused:
            followups.record_rectification_result(session, ctx, sun, {"completed_on": tomorrow, "outcome": ""})
        assert set(refused.value.errors) == {"completed_on", "outcome"}  # type: ignore[attr-defined]
        done = followups.record_rectification_result(
            session, ctx, sun, {"completed_on": today.isoformat(), "outcome": "已按要求参加组织生活，整改到位"})
        session.flush()
    assert (done.completed_on, done.outcome) == (today, "已按要求参加组织生活，整改到位")
    assert _events(session, "evaluation.rectification_result") == 1


def test_the_rectification_result_on_the_follow_up_page(
    session: Session, client: FlaskClient, login: Any, results: dict[str, Any]
) -> None:
    rb = round_branch(session, results)
    _zhao, _qian, sun = evaluations(session, results)
    login(results["tenant"], results["secretary"])
    client.post(url(results, f"/evaluations/{sun.id}/rectification"),
                data={"due_on": "2026-07-06", "requirement": "按时交纳党费"})
    page = text(client.get(url(results, f"/{rb.id}/followups")))
    assert "尚未记录。到期前会提醒党支部书记。" in page
    bad = client.post(url(results, f"/evaluations/{sun.id}/rectification/result"),
                      data={"completed_on": "", "outcome": "x"})
    assert bad.status_code == 400 and "请填写评估日期" in text(bad)
    today = clock.today_in("Asia/Shanghai").isoformat()
    good = client.post(url(results, f"/evaluations/{sun.id}/rectification/result"),
                       data={"completed_on": today, "outcome": "已补交党费"})
    assert good.status_code == 302
    shown = text(client.get(url(results, f"/{rb.id}/followups")))
    assert f"评估日期：{today}" in shown and "已补交党费" in shown
    client.delete_cookie("fivestar_session")
    login(results["tenant"], results["other_secretary"])
    assert client.post(url(results, f"/evaluations/{sun.id}/rectification/result"),
                       data={"completed_on": today, "outcome": "改"}).status_code == 404
