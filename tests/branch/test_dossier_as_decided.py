"""A decided dossier shows what the committee had in front of it: the quarterly reviews (一季一小评)
submitted, and the comments made, up to the decision; a review filed afterwards is left out and
counted ("决定后新增的 N 条小评未列入"), a later comment is not shown."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.branch_rounds import decision, quarterly
from fivestar.branch_rounds.models import BranchRoundState, QuarterlyReview
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.branch.publication_support import ONE_TOTALS, Decided, build_round

UTC = dt.UTC
# `published` finalises 2024 on 2025-02-10 08:00 UTC; every rating is decided then.
DECIDED_AT = dt.datetime(2025, 2, 10, 8, 0, tzinfo=UTC)


def _review(session: Session, world: dict[str, Any], quarter: int, submitted: dt.datetime, text: str,
            comment: str | None = None, commented: dt.datetime | None = None) -> QuarterlyReview:
    tenant_id = world["tenant"].id
    with tenant_context(tenant_id):
        review = QuarterlyReview(
            tenant_id=tenant_id, branch_id=world["one"].id, year=2024, quarter=quarter,
            checks={"leadership": text}, submitted_at=submitted, submitted_by="赵书记",
            committee_comment=comment, commented_at=commented, commented_by="工委" if comment else None,
        )
        session.add(review)
        session.flush()
    return review


def _after_the_decision(session: Session, world: dict[str, Any], q1: QuarterlyReview) -> None:
    """What happens after the decision, through the services: the committee comments on Q1 and the
    branch files its Q4 review, a month later."""
    tenant = world["tenant"]
    with tenant_context(tenant.id), clock.frozen(dt.datetime(2025, 3, 10, 2, 0, tzinfo=UTC)):
        rules = quarterly.tenant_rules(session, tenant)
        quarterly.comment(session, rules, quarterly.load_review(session, q1.id), "补评：落实较好", version=q1.version)
        checks = {quarterly.check_field(i.key): f"四季度{i.label}自查（事后补报）" for i in rules.branch.indicators}
        quarterly.save_review(session, tenant, rules, world["one"], 2024, 4, checks, "补报")
        session.flush()


def _world(session: Session, published: dict[str, Any]) -> dict[str, Any]:
    q1 = _review(session, published, 1, dt.datetime(2024, 4, 8, tzinfo=UTC), "一季度班子自查")
    q2 = _review(session, published, 2, dt.datetime(2024, 7, 8, tzinfo=UTC), "二季度班子自查",
                 comment="按期完成", commented=dt.datetime(2024, 7, 20, tzinfo=UTC))
    _after_the_decision(session, published, q1)
    return {**published, "q1": q1, "q2": q2}


def test_a_finalised_dossier_lists_only_what_existed_at_the_decision(
    session: Session, published: dict[str, Any]
) -> None:
    world = _world(session, published)
    with tenant_context(world["tenant"].id):
        found = decision.build_dossier(session, world["published_round"], world["published_one"])
        everything = decision.quarterly_of_year(session, world["one"].id, 2024)
    assert [r.quarter for r in everything] == [1, 2, 4]  # the late review is stored, and left out below
    assert found.decided_at == DECIDED_AT
    assert [r.quarter for r in found.quarterly] == [1, 2]
    assert found.quarterly_later == 1
    assert found.comments_after == frozenset({world["q1"].id})  # commented after the decision
    assert world["q2"].id not in found.comments_after  # commented before it: shown


def test_an_undecided_rating_shows_every_review_as_it_is_now(session: Session, published: dict[str, Any]) -> None:
    branch_round, ratings = build_round(
        session, published["tenant"], year=2025, state=BranchRoundState.OPEN,
        decisions=[Decided(published["one"], None, ONE_TOTALS)],
    )
    rating = ratings[published["one"].id]
    tenant_id = published["tenant"].id
    with tenant_context(tenant_id):
        for quarter in (1, 2):
            session.add(QuarterlyReview(tenant_id=tenant_id, branch_id=published["one"].id, year=2025,
                                        quarter=quarter, checks={}, submitted_at=dt.datetime(2026, 1, 2, tzinfo=UTC)))
        session.flush()
        found = decision.build_dossier(session, branch_round, rating)
    assert decision.decision_time(branch_round, rating) is None
    assert [r.quarter for r in found.quarterly] == [1, 2] and found.quarterly_later == 0


def test_the_dossier_page_says_what_was_left_out(
    client: FlaskClient, login: Any, session: Session, published: dict[str, Any]
) -> None:
    world = _world(session, published)
    login(world["tenant"], world["committee"])
    response = client.get(f"/t/{world['tenant'].slug}/branch-rating/dossier/{world['published_one'].id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "决定后新增的 1 条小评未列入" in page
    assert "一季度班子自查" in page and "二季度班子自查" in page and "按期完成" in page
    assert "事后补报" not in page  # the Q4 review filed after the decision
    assert "补评：落实较好" not in page and "定星时尚未点评" in page  # the later comment on Q1
