"""一季一小评: only started quarters, one review per branch and quarter, editable until the committee
comments, the committee's overview in one query, and rules that do not use it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds import quarterly
from fivestar.branch_rounds.models import QuarterlyReview
from fivestar.enums import OrgKind, Role
from fivestar.errors import ConflictError, ServiceError
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import add_rules_version
from tests.branch.committee_support import events, principal, rules_with
from tests.support import count_queries


def _indicator_checks(session: Session, world: dict[str, Any]) -> dict[str, str]:
    """A self-check for every indicator of the district's rules."""
    rules = quarterly.tenant_rules(session, world["tenant"])
    assert rules is not None
    return {quarterly.check_field(i.key): f"{i.label}：本季度情况良好" for i in rules.branch.indicators}


def _save(session: Session, world: dict[str, Any], year: int, quarter: int, raw: dict[str, str] | None = None,
          summary: str | None = "本季度总体良好", version: int | str | None = None, branch: str = "one") -> Any:
    with tenant_context(world["tenant"].id):
        rules = quarterly.tenant_rules(session, world["tenant"])
        return quarterly.save_review(
            session, world["tenant"], rules, world[branch], year, quarter,
            raw if raw is not None else _indicator_checks(session, world), summary, version=version,
        )


def test_a_branch_submits_a_review_of_a_started_quarter(
    session: Session, district: dict[str, Any], frozen_now: Any
) -> None:
    review = _save(session, district, 2026, 1)
    assert (review.year, review.quarter, review.summary) == (2026, 1, "本季度总体良好")
    assert review.checks["leadership"] == "班子建设：本季度情况良好" and len(review.checks) == 5
    assert review.submitted_at is not None and review.submitted_by == "system"
    earlier = _save(session, district, 2025, 4, summary=None)
    assert earlier.summary is None
    with tenant_context(district["tenant"].id):
        assert [e.after["quarter"] for e in events(session, district, "quarterly_review.submit")] == [1, 4]


@pytest.mark.parametrize(("year", "quarter"), [(2026, 2), (2027, 1), (2026, 5), (2026, 0), ("二〇二六", 1)])
def test_only_quarters_that_have_started_are_reviewed(
    session: Session, district: dict[str, Any], frozen_now: Any, year: Any, quarter: int
) -> None:
    with pytest.raises(ServiceError, match=r"还没有开始|请选择季度") as refused:
        _save(session, district, year, quarter)
    assert refused.value.field == "quarter"
    with tenant_context(district["tenant"].id):
        assert session.scalar(select(QuarterlyReview.id)) is None


def test_every_indicator_needs_its_self_check(session: Session, district: dict[str, Any], frozen_now: Any) -> None:
    raw = _indicator_checks(session, district)
    raw["check.leadership"] = "  "
    raw["check.membership"] = "长" * (quarterly.CHECK_MAX + 1)
    with pytest.raises(quarterly.InvalidReviewError) as refused:
        _save(session, district, 2026, 1, raw)
    assert set(refused.value.errors) == {"check.leadership", "check.membership"}
    assert "班子建设" in refused.value.errors["check.leadership"]


def test_one_review_per_quarter_revised_until_the_committee_comments(
    session: Session, district: dict[str, Any], frozen_now: Any
) -> None:
    review = _save(session, district, 2026, 1)
    raw = _indicator_checks(session, district)
    raw["check.leadership"] = "修改后的自查"
    again = _save(session, district, 2026, 1, raw, version=review.version)
    assert again.id == review.id and again.checks["leadership"] == "修改后的自查"
    with tenant_context(district["tenant"].id):
        assert session.scalar(select(QuarterlyReview.id).where(QuarterlyReview.id != review.id)) is None
        with pytest.raises(ConflictError):
            _save(session, district, 2026, 1, raw, version=review.version - 1)  # a stale form
        rules = quarterly.tenant_rules(session, district["tenant"])
        with pytest.raises(ServiceError, match="请填写点评意见"):
            quarterly.comment(session, rules, review, " ", version=review.version)
        quarterly.comment(session, rules, review, "班子建设抓得实，继续保持", version=review.version)
        assert review.committee_comment == "班子建设抓得实，继续保持" and review.commented_at is not None
        [event] = events(session, district, "quarterly_review.comment")
        assert event.after["committee_comment"] == "班子建设抓得实，继续保持"
    with pytest.raises(ServiceError, match="工委已点评2026年第一季度的小评，不能再修改"):
        _save(session, district, 2026, 1, raw, version=review.version)


def test_two_first_submissions_of_a_quarter_give_one_review(
    session: Session, district: dict[str, Any], frozen_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique key decides: the second insert of the same quarter is a conflict, not a second row."""
    _save(session, district, 2026, 1)
    with tenant_context(district["tenant"].id):
        session.expunge_all()  # as if the other request never saw the first one
        rules = quarterly.tenant_rules(session, district["tenant"])
        branch = session.get(type(district["one"]), district["one"].id)
        monkeypatch.setattr(quarterly, "find_review", lambda *_args: None)
        with pytest.raises(ConflictError, match="刚由他人提交"):
            quarterly.save_review(session, district["tenant"], rules, branch, 2026, 1,
                                  _indicator_checks(session, district), None)
        assert len(list(session.scalars(select(QuarterlyReview.id)))) == 1


def test_retirees_branches_and_organisations_do_not_review(
    session: Session, district: dict[str, Any], frozen_now: Any
) -> None:
    for key in ("retirees", "party"):
        with pytest.raises(ServiceError, match="只有参加星级评定的党支部"):
            _save(session, district, 2026, 1, branch=key)


def test_rules_without_the_quarterly_review_refuse_it(
    session: Session, district: dict[str, Any], frozen_now: Any
) -> None:
    add_rules_version(session, district["tenant"], rules_with(quota=None, promotion=False, quarterly=False))
    session.flush()
    with pytest.raises(ServiceError, match="未采用“一季一小评”"):
        _save(session, district, 2026, 1)


def test_the_committee_sees_every_branch_of_a_quarter_in_one_query(
    session: Session, district: dict[str, Any], frozen_now: Any, create_org: Any, engine: Engine
) -> None:
    _save(session, district, 2026, 1)
    _save(session, district, 2025, 4, branch="direct")
    admin = principal(district, Role.TENANT_ADMIN)

    def overview() -> tuple[list[quarterly.OverviewRow], int]:
        session.flush()
        with tenant_context(district["tenant"].id), count_queries(engine, exclude=("SAVEPOINT", "RELEASE")) as seen:
            rows = quarterly.quarter_overview(session, admin, 2026, 1)
        return rows, len(seen)

    rows, few = overview()
    assert {(row.branch.name, row.review is not None) for row in rows} == {
        ("预算科党支部", True), ("区档案馆党支部", False)
    }
    for number in range(6):
        create_org(district["tenant"], OrgKind.BRANCH, parent=district["party"], name=f"新增第{number}党支部")
    rows, many = overview()
    assert len(rows) == 8 and many == few == 1
    with tenant_context(district["tenant"].id):
        staff = principal(district, Role.ORG_STAFF, district["party"], account="org_staff")
        scoped = quarterly.quarter_overview(session, staff, 2026, 1)
    assert "区档案馆党支部" not in {row.branch.name for row in scoped} and len(scoped) == 7


def test_started_quarters_run_back_from_the_current_one() -> None:
    assert quarterly.started_quarters(dt.date(2026, 1, 6), 3) == [(2026, 1), (2025, 4), (2025, 3)]
    assert quarterly.quarter_label(2026, 1) == "2026年第一季度"
