"""The committee's pages through the test client: opening a round, the table with quota guidance, the
dossier and deciding, the middle level, finalising, the quarterly review — who may do what, refusals
with a 4xx and the input kept, two committee members deciding at once, and fixed query counts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, QuarterlyReview, RatingStep
from fivestar.enums import OrgKind, Role
from fivestar.kernel.rounds import seeding
from fivestar.tenancy import tenant_context
from tests.branch.committee_support import BEIJING, fresh, local, put_at, rules_with
from tests.conftest import TEST_PASSWORD
from tests.support import count_queries


def _url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}/branch-rating{path}"


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _relogin(client: FlaskClient, login: Any, world: dict[str, Any], account: str) -> None:
    client.post(f"/t/{world['tenant'].slug}/logout")
    login(world["tenant"], world[account])


def _second_client(app: Flask, world: dict[str, Any], account: Any) -> FlaskClient:
    other = app.test_client()
    response = other.post(f"/t/{world['tenant'].slug}/login",
                          data={"username": account.username, "password": TEST_PASSWORD})
    assert response.status_code == 302
    return other


def _version(page: str) -> str:
    found = re.search(r'name="version" type="hidden" value="(\d+)"', page) or re.search(
        r'name="version" value="(\d+)"', page
    )
    assert found is not None, page[:2000]
    return found.group(1)


# --- the rounds list and opening a round ------------------------------------------------------------------


def test_an_admin_opens_last_years_round_with_the_rules_deadlines(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any, session: Session
) -> None:
    login(district["tenant"], district["admin"])
    page = _text(client.get(_url(district, "/")))
    assert "支部评定" in page and "开启年度评定" in page
    assert 'value="2025"' in page and 'value="2026-01-31"' in page and 'value="2026-03-31"' in page
    response = client.post(_url(district, "/"), data={"year": "2025", "self_report_due": "2026-01-31",
                                                      "committee_due": "2026-03-31"})
    assert response.status_code == 302
    with tenant_context(district["tenant"].id):
        branch_round = session.scalar(select(BranchRound))
    assert branch_round is not None and branch_round.year == 2025
    assert response.headers["Location"].endswith(f"/branch-rating/{branch_round.id}")
    again = client.post(_url(district, "/"), data={"year": "2025"})
    assert again.status_code == 409 and "2025 年度党支部星级评定已经开启" in _text(again)
    listing = _text(client.get(_url(district, "/")))
    assert "2025 年度" in listing and "荐星 2" in listing


def test_a_late_opening_must_pick_later_deadlines(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any
) -> None:
    frozen_now.move(local(2026, 11, 28))
    login(district["tenant"], district["admin"])
    page = _text(client.get(_url(district, "/")))
    assert "规则规定的自评上报截止日 2026-01-31 已过" in page
    refused = client.post(_url(district, "/"), data={"year": "2025", "self_report_due": "2026-01-31",
                                                     "committee_due": "2026-03-31"})
    assert refused.status_code == 400 and "已过，请另定一个今天以后的日期" in _text(refused)
    bad = client.post(_url(district, "/"), data={"year": "2025", "self_report_due": "明天"})
    assert bad.status_code == 400 and "请填写日期" in _text(bad)
    opened = client.post(_url(district, "/"), data={"year": "2025", "self_report_due": "2026-12-20",
                                                    "committee_due": "2026-12-31"})
    assert opened.status_code == 302


def test_only_admins_open_rounds_and_the_menu_shows_the_entry(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any
) -> None:
    login(district["tenant"], district["committee"])
    page = _text(client.get(_url(district, "/")))
    assert 'name="year"' not in page and f'href="/t/{district["tenant"].slug}/branch-rating/"' in page
    assert client.post(_url(district, "/"), data={"year": "2025"}).status_code == 403
    _relogin(client, login, district, "member")
    assert client.get(_url(district, "/")).status_code == 403


def test_shortcuts_by_role(client: FlaskClient, login: Any, opened: dict[str, Any]) -> None:
    login(opened["tenant"], opened["secretary"])
    page = _text(client.get(_url(opened, "/")))
    assert f"/branch-rating/ratings/{opened['rating_one'].id}" in page and "预算科党支部 · 2025 年度星级评定" in page
    assert "/branch-rating/quarterly/" in page
    assert f"/branch-rating/{opened['round'].id}\"" not in page  # the committee's table is not theirs
    assert client.get(_url(opened, f"/{opened['round'].id}")).status_code == 403
    _relogin(client, login, opened, "org_staff")
    page = _text(client.get(_url(opened, "/")))
    assert "/branch-rating/org-review/" in page and "待审核的党支部评定" in page


# --- the committee's table -------------------------------------------------------------------------------


def test_the_table_shows_every_branch_with_its_levels(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, proposed=3, opinion=4, previous=3)
    with tenant_context(opened["tenant"].id):
        opened["rating_one"].org_comment = "同意该支部评为四星，该支部全年工作扎实，群众评价较好，建议工委予以认定。"
        session.flush()
    login(opened["tenant"], opened["committee"])
    page = _text(client.get(_url(opened, f"/{opened['round'].id}")))
    for text in ("预算科党支部", "区档案馆党支部", "区财政局机关党委", "工委定星", "四星", "三星",
                 "同意该支部评为四星，该支部全年工作扎实，群众评价较好，建议…", "未定星"):
        assert text in page, text
    assert f"/branch-rating/dossier/{opened['rating_one'].id}" in page
    assert 'name="new_day"' not in page  # committee members do not extend deadlines
    assert 'name="meeting_date"' in page  # but they finalise (the committee meeting's decision)


def test_the_table_runs_a_fixed_number_of_queries(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any, create_org: Any,
    session: Session, engine: Engine
) -> None:
    from fivestar.branch_rounds.opening import open_branch_round

    for number in range(6):
        create_org(district["tenant"], OrgKind.BRANCH, parent=district["party"], name=f"新增第{number}党支部")
    small_tenant = district["tenant"]
    with tenant_context(small_tenant.id):
        big = open_branch_round(session, small_tenant, year=2025)
        ratings = list(session.scalars(select(BranchRating).where(BranchRating.round_id == big.round.id)))
        for index, rating in enumerate(ratings):
            with seeding():
                rating.step = RatingStep.COMMITTEE if index % 2 else RatingStep.DECIDED
            rating.opinion_level = 3
            rating.decided_level = 3 if index % 2 == 0 else None
            rating.org_comment = "同意"
        session.flush()
        small = open_branch_round(session, small_tenant, year=2024, self_report_due=dt.date(2026, 2, 1),
                                  committee_due=dt.date(2026, 3, 1))
        session.flush()
        # the 2024 round rates only two of the branches: drop the others from it
        extra = list(session.scalars(select(BranchRating).where(BranchRating.round_id == small.round.id)))[2:]
        for rating in extra:
            session.delete(rating)
        session.flush()
    login(small_tenant, district["committee"])

    def queries(round_id: int, branches: int) -> int:
        page = _text(client.get(_url(district, f"/{round_id}")))  # warm the rules cache
        assert page.count("/branch-rating/dossier/") == branches
        with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as statements:
            assert client.get(_url(district, f"/{round_id}")).status_code == 200
        return len(statements)

    assert queries(small.round.id, 2) == queries(big.round.id, 8)


# --- extending a deadline ----------------------------------------------------------------------------------


def test_an_admin_extends_a_deadline_with_a_reason(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    url = _url(opened, f"/{opened['round'].id}/extend")
    login(opened["tenant"], opened["admin"])
    version = str(opened["round"].version)
    no_reason = client.post(url, data={"which": "self_report", "new_day": "2026-02-10", "reason": "",
                                       "version": version})
    assert no_reason.status_code == 400 and "延长期限须填写原因" in _text(no_reason)
    earlier = client.post(url, data={"which": "self_report", "new_day": "2026-01-20", "reason": "会议推迟",
                                     "version": version})
    assert earlier.status_code == 400 and "须晚于当前的自评上报截止日期" in _text(earlier)
    assert "会议推迟" in _text(earlier)  # the input is kept
    stale = client.post(url, data={"which": "self_report", "new_day": "2026-02-10", "reason": "会议推迟",
                                   "version": "0"})
    assert stale.status_code == 409
    done = client.post(url, data={"which": "self_report", "new_day": "2026-02-10", "reason": "会议推迟",
                                  "version": version})
    assert done.status_code == 302
    stored = fresh(session, opened, BranchRound, opened["round"].id)
    assert stored.self_report_due_at.astimezone(BEIJING).date() == dt.date(2026, 2, 10)
    _relogin(client, login, opened, "committee")
    assert client.post(url, data={"which": "committee", "new_day": "2026-04-10", "reason": "x",
                                  "version": str(stored.version)}).status_code == 403


# --- the middle level --------------------------------------------------------------------------------------


def test_org_staff_forward_with_comments(client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
                                         ) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW, opinion=4)
    login(opened["tenant"], opened["org_staff"])
    queue = _text(client.get(_url(opened, "/org-review/")))
    assert "预算科党支部" in queue and f"/org-review/{rating.id}" in queue
    page = _text(client.get(_url(opened, f"/org-review/{rating.id}")))
    assert "报送工委" in page and "自我荐星说明" in page and "本支部全年认真落实各项工作" in page
    assert "议星测评结果" in page
    version = _version(page)
    empty = client.post(_url(opened, f"/org-review/{rating.id}/return"), data={"reason": " ", "version": version})
    assert empty.status_code == 400 and "退回须填写原因" in _text(empty)
    sent = client.post(_url(opened, f"/org-review/{rating.id}/forward"),
                       data={"comment": "同意评为四星", "version": version})
    assert sent.status_code == 302
    stored = fresh(session, opened, BranchRating, rating.id)
    assert stored.step is RatingStep.COMMITTEE and stored.org_comment == "同意评为四星"
    assert stored.forwarded_by == opened["org_staff"].display_name


def test_org_staff_return_with_a_reason(client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
                                        ) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    login(opened["tenant"], opened["org_staff"])
    response = client.post(_url(opened, f"/org-review/{rating.id}/return"),
                           data={"reason": "证明材料不全", "version": str(rating.version)})
    assert response.status_code == 302
    stored = fresh(session, opened, BranchRating, rating.id)
    assert stored.step is RatingStep.RECOMMEND and stored.return_reason == "证明材料不全"


def test_the_middle_level_is_only_for_its_own_staff(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session, create_org: Any, create_account: Any
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.ORG_REVIEW)
    other = create_org(opened["tenant"], OrgKind.PARTY_COMMITTEE, name="区教育局机关党委", code="P09")
    stranger = create_account(opened["tenant"], roles=[(Role.ORG_STAFF, other)], username="jiaoyu")
    login(opened["tenant"], stranger)
    for method, path in (("GET", f"/org-review/{rating.id}"), ("POST", f"/org-review/{rating.id}/forward"),
                         ("POST", f"/org-review/{rating.id}/return")):
        response = client.open(_url(opened, path), method=method,
                               data={"comment": "越权", "reason": "越权", "version": str(rating.version)})
        assert response.status_code == 404, (method, path)
    assert "预算科党支部" not in _text(client.get(_url(opened, "/org-review/")))
    _relogin(client, login, opened, "committee")
    assert client.post(_url(opened, f"/org-review/{rating.id}/forward"),
                       data={"comment": "x", "version": str(rating.version)}).status_code == 403
    assert fresh(session, opened, BranchRating, rating.id).step is RatingStep.ORG_REVIEW


# --- the dossier and deciding --------------------------------------------------------------------------------


def test_deciding_differently_needs_a_reason_and_keeps_the_input(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    login(opened["tenant"], opened["committee"])
    page = _text(client.get(_url(opened, f"/dossier/{rating.id}")))
    assert "定星" in page and "支部“评星定级”意见" in page and "一季一小评" in page
    version = _version(page)
    refused = client.post(_url(opened, f"/dossier/{rating.id}/decide"), data={"level": "3", "reason": "",
                                                                             "version": version})
    assert refused.status_code == 400 and "定为三星与支部意见（四星）不同，须填写理由" in _text(refused)
    assert '<option selected value="3">' in _text(refused)
    done = client.post(_url(opened, f"/dossier/{rating.id}/decide"),
                       data={"level": "3", "reason": "测评满意率偏低", "version": version})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/branch-rating/{opened['round'].id}")
    stored = fresh(session, opened, BranchRating, rating.id)
    assert stored.decided_level == 3 and stored.decision_reason == "测评满意率偏低"
    assert stored.decided_by == opened["committee"].display_name


def test_deciding_above_the_promotion_limit_is_refused_with_the_reason(
    client: FlaskClient, login: Any, opened_with_rules: Any, session: Session
) -> None:
    world = opened_with_rules(rules_with(quota=None))
    rating = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=5, previous=2)
    login(world["tenant"], world["committee"])
    page = _text(client.get(_url(world, f"/dossier/{rating.id}")))
    assert "按规则最高可定" in page and "逐级晋升" in page
    refused = client.post(_url(world, f"/dossier/{rating.id}/decide"),
                          data={"level": "5", "reason": "", "version": _version(page)})
    body = _text(refused)
    assert refused.status_code == 400 and "不能定为五星：按评定规则该支部最高为三星" in body
    assert "逐级晋升：上年二星" in body
    assert fresh(session, world, BranchRating, rating.id).decided_level is None


def test_an_enforced_quota_refuses_and_an_advisory_one_warns(
    client: FlaskClient, login: Any, opened_with_rules: Any, session: Session
) -> None:
    world = opened_with_rules(rules_with(quota="enforced", five_share="0.5", promotion=False))
    one = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=5)
    direct = put_at(session, world, world["rating_direct"], RatingStep.COMMITTEE, opinion=5)
    login(world["tenant"], world["admin"])
    table = _text(client.get(_url(world, f"/{world['round'].id}")))
    assert "星级比例限额（超过限额的定星将被拒绝）" in table and "五星 2 个（已定星 0 个），超过限额 1 个" in table
    assert client.post(_url(world, f"/dossier/{one.id}/decide"),
                       data={"level": "5", "version": str(one.version)}).status_code == 302
    refused = client.post(_url(world, f"/dossier/{direct.id}/decide"),
                          data={"level": "5", "version": str(direct.version)})
    assert refused.status_code == 400
    assert "不能定为五星：规则限定五星最多 1 个（2 个支部的 50%），定星后将有 2 个" in _text(refused)
    assert fresh(session, world, BranchRating, direct.id).decided_level is None


def test_an_advisory_quota_warns_after_deciding(
    client: FlaskClient, login: Any, opened_with_rules: Any, session: Session
) -> None:
    world = opened_with_rules(rules_with(quota="advisory", five_share="0.5", promotion=False))
    one = put_at(session, world, world["rating_one"], RatingStep.COMMITTEE, opinion=5)
    put_at(session, world, world["rating_direct"], RatingStep.COMMITTEE, opinion=5)
    login(world["tenant"], world["admin"])
    response = client.post(_url(world, f"/dossier/{one.id}/decide"), data={"level": "5", "version": str(one.version)},
                           follow_redirects=True)
    body = _text(response)
    assert response.status_code == 200 and "已定星：预算科党支部 五星" in body
    assert "flash-warning" in body and "超出指导比例" in body and "星级指导比例（超过时提醒）" in body


def test_two_committee_members_deciding_at_once_one_gets_a_conflict(
    app: Flask, client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    login(opened["tenant"], opened["admin"])
    other = _second_client(app, opened, opened["committee"])
    mine = _version(_text(client.get(_url(opened, f"/dossier/{rating.id}"))))
    theirs = _version(_text(other.get(_url(opened, f"/dossier/{rating.id}"))))
    assert mine == theirs
    first = client.post(_url(opened, f"/dossier/{rating.id}/decide"), data={"level": "4", "version": mine})
    second = other.post(_url(opened, f"/dossier/{rating.id}/decide"),
                        data={"level": "3", "reason": "我的不同意见", "version": theirs})
    assert first.status_code == 302 and second.status_code == 409
    assert "已被他人修改" in _text(second) and "我的不同意见" in _text(second)
    stored = fresh(session, opened, BranchRating, rating.id)
    assert stored.decided_level == 4


def test_wrong_roles_cannot_decide(client: FlaskClient, login: Any, opened: dict[str, Any], session: Session) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    for account, status in (("inspector", 403), ("secretary", 403), ("org_staff", 403), ("direct_secretary", 404)):
        login(opened["tenant"], opened[account])
        response = client.post(_url(opened, f"/dossier/{rating.id}/decide"),
                               data={"level": "4", "version": str(rating.version)})
        assert response.status_code == status, account
        assert client.post(_url(opened, f"/{opened['round'].id}/finalise"),
                           data={"meeting_date": "2026-01-06", "participants": "x"}).status_code == 403, account
        client.post(f"/t/{opened['tenant'].slug}/logout")
    assert fresh(session, opened, BranchRating, rating.id).decided_level is None


# --- finalising --------------------------------------------------------------------------------------------


def test_finalising_needs_every_decision_and_the_meeting_then_freezes_everything(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    one = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    direct = put_at(session, opened, opened["rating_direct"], RatingStep.COMMITTEE, opinion=3)
    login(opened["tenant"], opened["committee"])
    url = _url(opened, f"/{opened['round'].id}/finalise")
    version = str(opened["round"].version)
    assert client.post(_url(opened, f"/dossier/{one.id}/decide"),
                       data={"level": "4", "version": str(one.version)}).status_code == 302
    undecided = client.post(url, data={"meeting_date": "2026-01-06", "participants": "张主任", "version": version})
    assert undecided.status_code == 400 and "还有 1 个党支部尚未定星" in _text(undecided)
    assert client.post(_url(opened, f"/dossier/{direct.id}/decide"),
                       data={"level": "3", "version": str(direct.version)}).status_code == 302
    no_date = client.post(url, data={"meeting_date": "", "participants": "张主任", "version": version})
    assert no_date.status_code == 400 and "请填写定星的工委会议日期" in _text(no_date)
    future = client.post(url, data={"meeting_date": "2026-01-08", "participants": "张主任", "version": version})
    assert future.status_code == 400 and "还没有到" in _text(future)
    nobody = client.post(url, data={"meeting_date": "2026-01-06", "participants": "", "version": version})
    assert nobody.status_code == 400 and "请填写参加会议的人员" in _text(nobody)
    done = client.post(url, data={"meeting_date": "2026-01-06", "participants": "张主任、李委员", "version": version})
    assert done.status_code == 302
    stored = fresh(session, opened, BranchRound, opened["round"].id)
    assert stored.state is BranchRoundState.FINALISED and stored.decision_participants == "张主任、李委员"
    page = _text(client.get(_url(opened, f"/{opened['round'].id}")))
    assert "已定星公布" in page and 'name="meeting_date"' not in page
    # anything after finalising is refused
    again = client.post(_url(opened, f"/dossier/{one.id}/decide"),
                        data={"level": "5", "reason": "再议", "version": str(fresh(session, opened, BranchRating,
                                                                                    one.id).version)})
    assert again.status_code == 409 and "已定星公布，不能再更改" in _text(again)
    assert client.post(url, data={"meeting_date": "2026-01-06", "participants": "x",
                                  "version": str(stored.version)}).status_code == 409
    _relogin(client, login, opened, "admin")
    extend = client.post(_url(opened, f"/{opened['round'].id}/extend"),
                         data={"which": "committee", "new_day": "2026-04-10", "reason": "延期",
                               "version": str(stored.version)})
    assert extend.status_code == 409 and "已定星公布" in _text(extend)
    assert fresh(session, opened, BranchRating, one.id).decided_level == 4


# --- another district ----------------------------------------------------------------------------------------


def test_another_districts_ids_are_not_found(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session, create_tenant: Any,
    create_account: Any
) -> None:
    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE)
    with tenant_context(opened["tenant"].id):
        review = QuarterlyReview(tenant_id=opened["tenant"].id, branch_id=opened["one"].id, year=2025, quarter=4,
                                 checks={"leadership": "自查"})
        session.add(review)
        session.flush()
    other = create_tenant(slug="other-district")
    intruder = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="other-admin")
    login(other, intruder)
    base = f"/t/{other.slug}/branch-rating"
    for method, path in (
        ("GET", f"/{opened['round'].id}"),
        ("POST", f"/{opened['round'].id}/extend"),
        ("POST", f"/{opened['round'].id}/finalise"),
        ("GET", f"/dossier/{rating.id}"),
        ("POST", f"/dossier/{rating.id}/decide"),
        ("GET", f"/org-review/{rating.id}"),
        ("POST", f"/org-review/{rating.id}/forward"),
        ("GET", f"/quarterly/branch/{opened['one'].id}"),
        ("POST", f"/quarterly/{review.id}"),
    ):
        response = client.open(base + path, method=method, data={"level": "4", "version": "1", "reason": "越权"})
        assert response.status_code == 404, (method, path)
        assert "预算科党支部" not in _text(response)


# --- 一季一小评 -------------------------------------------------------------------------------------------------


def _checks(session: Session, world: dict[str, Any]) -> dict[str, str]:
    from fivestar.branch_rounds import quarterly

    rules = quarterly.tenant_rules(session, world["tenant"])
    assert rules is not None
    return {quarterly.check_field(i.key): f"{i.label}自查情况" for i in rules.branch.indicators}


def test_the_quarterly_review_from_the_branch_to_the_committee_and_locked(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any, session: Session
) -> None:
    login(district["tenant"], district["secretary"])
    edit = _url(district, f"/quarterly/branch/{district['one'].id}")
    assert edit in _text(client.get(_url(district, "/quarterly/")))  # 本支部的季度小评
    page = _text(client.get(edit))
    assert "2026年第一季度" in page and 'name="check.leadership"' in page and "2026年第二季度" not in page
    missing = client.post(edit, data={"year": "2026", "quarter": "1", "summary": "小结"})
    assert missing.status_code == 400 and "请填写“班子建设”的自查情况" in _text(missing)
    early = client.post(edit, data={"year": "2026", "quarter": "2", **_checks(session, district)})
    assert early.status_code == 400 and "2026年第二季度还没有开始" in _text(early)
    sent = client.post(edit, data={"year": "2026", "quarter": "1", "summary": "本季度小结",
                                   **_checks(session, district)})
    assert sent.status_code == 302
    with tenant_context(district["tenant"].id):
        review = session.scalar(select(QuarterlyReview))
    assert review is not None and review.summary == "本季度小结"
    forbidden = client.post(_url(district, f"/quarterly/{review.id}"),
                            data={"comment": "好", "version": str(review.version)})
    assert forbidden.status_code == 403

    _relogin(client, login, district, "committee")
    overview = _text(client.get(_url(district, "/quarterly/?year=2026&quarter=1")))
    assert "预算科党支部" in overview and "待点评" in overview and "区档案馆党支部" in overview and "未提交" in overview
    assert client.get(edit).status_code == 403  # the committee comments, it does not write the branch's check
    review_page = _text(client.get(_url(district, f"/quarterly/{review.id}")))
    assert "班子建设自查情况" in review_page and "本季度小结" in review_page and 'name="comment"' in review_page
    commented = client.post(_url(district, f"/quarterly/{review.id}"),
                            data={"comment": "班子建设扎实", "version": str(review.version)})
    assert commented.status_code == 302

    _relogin(client, login, district, "secretary")
    page = _text(client.get(edit + "?year=2026&quarter=1"))
    assert "工委已点评，本季度小评不能再修改" in page and "班子建设扎实" in page
    assert 'name="check.leadership"' not in page
    locked = client.post(edit, data={"year": "2026", "quarter": "1", "version": str(review.version + 1),
                                     **_checks(session, district)})
    assert locked.status_code == 400 and "不能再修改" in _text(locked)


def test_the_quarterly_pages_say_when_the_rules_do_not_use_it(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any, session: Session
) -> None:
    from fivestar.tenants.services import add_rules_version

    add_rules_version(session, district["tenant"], rules_with(quota=None, promotion=False, quarterly=False))
    session.flush()
    login(district["tenant"], district["secretary"])
    assert "未采用“一季一小评”" in _text(client.get(_url(district, "/quarterly/")))
    edit = _url(district, f"/quarterly/branch/{district['one'].id}")
    assert "未采用“一季一小评”" in _text(client.get(edit))
    refused = client.post(edit, data={"year": "2026", "quarter": "1", **_checks(session, district)})
    assert refused.status_code == 400


@pytest.mark.parametrize("account", ["member", "direct_secretary"])
def test_other_branches_cannot_write_a_branchs_quarterly_review(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any, account: str
) -> None:
    login(district["tenant"], district[account])
    response = client.post(_url(district, f"/quarterly/branch/{district['one'].id}"),
                           data={"year": "2026", "quarter": "1"})
    assert response.status_code in (403, 404)


def test_the_dossier_shows_the_ballot_results_per_group_and_weighted(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    from fivestar.branch_rounds.models import BallotMeeting, MeetingState, PaperTally, VoterGroup

    rating = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    tenant_id = opened["tenant"].id
    with tenant_context(tenant_id):
        meeting = BallotMeeting(tenant_id=tenant_id, rating_id=rating.id, meeting_date=dt.date(2026, 1, 5),
                                place="三楼会议室", members_count=6, public_count=2, state=MeetingState.CLOSED)
        session.add(meeting)
        session.flush()
        for group, value, count in ((VoterGroup.MEMBERS, 4, 5), (VoterGroup.MEMBERS, 5, 1),
                                    (VoterGroup.PUBLIC, 5, 2)):
            session.add(PaperTally(tenant_id=tenant_id, meeting_id=meeting.id, group=group, indicator_key="",
                                   value=value, count=count))
        session.flush()
    login(opened["tenant"], opened["committee"])
    page = _text(client.get(_url(opened, f"/dossier/{rating.id}")))
    ballot = page.split("<h2>议星测评结果</h2>")[1].split("</section>")[0]
    assert "党员" in ballot and "群众代表" in ballot and "4.17" in ballot  # (5×4 + 1×5) / 6
    assert "票数不足 5 张，不显示" in ballot  # the public representatives' two ballots stay hidden
    assert "<dd>8</dd>" in ballot


def test_the_table_shows_each_branchs_ballot_result(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session, engine: Engine
) -> None:
    """The 测评结果 column: the weighted result and its ballots once voting closed, 票数不足 when no group
    reached the minimum, — before; a fixed number of queries however many meetings closed."""
    from fivestar.branch_rounds.models import Ballot, BallotMeeting, MeetingState, PaperTally, VoterGroup

    tenant_id = opened["tenant"].id
    one = put_at(session, opened, opened["rating_one"], RatingStep.COMMITTEE, opinion=4)
    direct = put_at(session, opened, opened["rating_direct"], RatingStep.COMMITTEE, opinion=3)
    login(opened["tenant"], opened["committee"])

    def table() -> tuple[dict[str, str], int]:
        client.get(_url(opened, f"/{opened['round'].id}"))  # warm the rules cache
        with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as statements:
            page = _text(client.get(_url(opened, f"/{opened['round'].id}")))
        cells = dict(re.findall(r'<a href="[^"]*/dossier/(\d+)"[\s\S]*?data-label="测评结果">([^<]*)</td>', page))
        return cells, len(statements)

    before, queries_before = table()
    assert before == {str(one.id): "—", str(direct.id): "—"}
    with tenant_context(tenant_id):
        for rating, members, public in ((one, 6, 2), (direct, 3, 0)):
            session.add(BallotMeeting(tenant_id=tenant_id, rating_id=rating.id, meeting_date=dt.date(2026, 1, 5),
                                      place="三楼会议室", members_count=members, public_count=public,
                                      state=MeetingState.CLOSED))
        session.flush()
        meetings = {m.rating_id: m.id for m in session.scalars(select(BallotMeeting))}
        # 5 members gave 四星 on paper, one 五星 electronically; 2 public representatives (hidden: < 5)
        session.add(PaperTally(tenant_id=tenant_id, meeting_id=meetings[one.id], group=VoterGroup.MEMBERS,
                               indicator_key="", value=4, count=5))
        session.add(Ballot(id="a" * 32, tenant_id=tenant_id, meeting_id=meetings[one.id], group=VoterGroup.MEMBERS,
                           level=5))
        for index in range(2):
            session.add(Ballot(id=f"b{index}" * 16, tenant_id=tenant_id, meeting_id=meetings[one.id],
                               group=VoterGroup.PUBLIC, level=5))
        for index in range(3):  # three ballots in all: below the minimum of five
            session.add(Ballot(id=f"c{index}" * 16, tenant_id=tenant_id, meeting_id=meetings[direct.id],
                               group=VoterGroup.MEMBERS, level=3))
        session.flush()
    after, queries_after = table()
    assert after == {str(one.id): "加权 4.17 星（共 8 票）", str(direct.id): "票数不足（共 3 票）"}
    assert queries_after <= queries_before + 4  # the meetings, their rules, the ballots, the tallies
