"""亮星, the queries: only finalised rounds are published, branches grouped by organisation, medals
as the rule engine gives them for the stored scores (checked against values worked out by hand)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds import core, publication
from fivestar.branch_rounds.models import BranchRating, BranchRoundState, CriterionScore
from fivestar.enums import OrgKind
from fivestar.kernel.rounds import seeding
from fivestar.tenancy import tenant_context
from tests.branch.publication_support import (
    DIRECT_MEDALS,
    DIRECT_TOTALS,
    ONE_MEDALS,
    ONE_TOTALS,
    Decided,
    build_round,
)


def _medals(branch: publication.PublishedBranch) -> dict[str, str]:
    return {m.indicator_key: m.label for m in branch.medals}


def test_a_finalised_year_is_published_grouped_by_organisation(session: Session, published: dict[str, Any]) -> None:
    with tenant_context(published["tenant"].id):
        assert publication.published_years(session) == [2024]
        result = publication.published_round(session, 2024)
    assert result is not None and result.year == 2024 and result.rules_version == 1
    # the 机关党委 first, then the branches directly under the committee
    assert [(g.name, g.kind, g.direct) for g in result.groups] == [
        ("区财政局机关党委", OrgKind.PARTY_COMMITTEE, False),
        (result.groups[1].name, OrgKind.COMMITTEE, True),
    ]
    assert [[b.name for b in g.branches] for g in result.groups] == [["预算科党支部"], ["区档案馆党支部"]]
    one, direct = result.groups[0].branches[0], result.groups[1].branches[0]
    assert (one.level, one.level_label, one.title, one.stars) == (4, "四星", "四星党支部", "★★★★☆")
    assert (direct.level, direct.level_label, direct.title) == (5, "五星", "五星党支部")
    assert one.rating_id == published["published_one"].id
    assert result.level_counts() == [(5, "五星", 1), (4, "四星", 1)]
    assert result.indicators[0] == ("leadership", "班子建设") and len(result.indicators) == 5


def test_medals_match_the_hand_worked_values(session: Session, published: dict[str, Any]) -> None:
    with tenant_context(published["tenant"].id):
        result = publication.published_round(session, 2024)
    assert result is not None
    one, direct = result.branches[0], result.branches[1]
    assert one.name == "预算科党支部"
    assert _medals(one) == ONE_MEDALS  # 18 金, 16.5 银, 14 铜, 13.5 none, 20 金
    assert _medals(direct) == DIRECT_MEDALS
    assert [m.indicator_key for m in one.medals] == list(ONE_TOTALS)  # the rules' order
    assert one.medal_text.startswith("班子建设：金星；党员队伍建设：银星；工作机制建设：铜星；工作业绩：无")


def test_medals_are_what_the_dossier_computes_one_by_one(session: Session, published: dict[str, Any]) -> None:
    """The set-based computation gives what core.evaluate gives for each rating on its own."""
    with tenant_context(published["tenant"].id):
        result = publication.published_round(session, 2024)
        rules = core.round_rules(session, published["published_round"])
        assert result is not None
        for branch in result.branches:
            single = core.evaluate(session, rules, core.load_rating(session, branch.rating_id))
            assert single is not None
            assert {i.key: i.medal for i in single.indicators} == {m.indicator_key: m.medal for m in branch.medals}


def test_an_open_round_publishes_nothing(session: Session, published: dict[str, Any], frozen_now: Any) -> None:
    from fivestar.branch_rounds.opening import open_branch_round

    tenant = published["tenant"]
    with tenant_context(tenant.id):
        opened = open_branch_round(session, tenant).round
        session.flush()
        # the committee already recorded levels and the branch its proposal: still unpublished
        session.execute(
            update(BranchRating)
            .where(BranchRating.round_id == opened.id)
            .values(decided_level=1, proposed_level=2, statement="未公布的荐星说明")
        )
        session.expire_all()
        assert publication.published_years(session) == [2024]
        assert publication.published_round(session, 2025) is None
        for rating_id in session.scalars(select(BranchRating.id).where(BranchRating.round_id == opened.id)):
            assert publication.plaque_facts(session, rating_id) is None
        # the published year is untouched by the open one
        result = publication.published_round(session, 2024)
    assert result is not None and sorted(b.level for b in result.branches) == [4, 5]


def test_only_decided_ratings_are_listed_and_years_come_newest_first(
    session: Session, district: dict[str, Any]
) -> None:
    tenant = district["tenant"]
    build_round(session, tenant, year=2022, decisions=[Decided(district["one"], 2, {"leadership": 14})])
    build_round(
        session,
        tenant,
        year=2023,
        decisions=[Decided(district["one"], 3, ONE_TOTALS), Decided(district["direct"], None, DIRECT_TOTALS)],
    )
    with tenant_context(tenant.id):
        assert publication.published_years(session) == [2023, 2022]
        result = publication.published_round(session, 2023)
        older = publication.published_round(session, 2022)
    assert result is not None and [b.name for b in result.branches] == ["预算科党支部"]
    assert older is not None and older.branches[0].level_label == "二星"
    assert _medals(older.branches[0])["leadership"] == "铜星" and _medals(older.branches[0])["public"] == "无"


def test_stored_scores_the_engine_refuses_show_no_medals_instead_of_failing(
    session: Session, published: dict[str, Any]
) -> None:
    with tenant_context(published["tenant"].id):
        session.execute(
            update(CriterionScore)
            .where(
                CriterionScore.rating_id == published["published_one"].id,
                CriterionScore.criterion_key == "secretary",
            )
            .values(score=Decimal(99))  # above the criterion's 6 points
        )
        result = publication.published_round(session, 2024)
    assert result is not None
    one = next(b for b in result.branches if b.name == "预算科党支部")
    direct = next(b for b in result.branches if b.name == "区档案馆党支部")
    assert one.medals == () and one.level == 4  # the decided level still shows
    assert _medals(direct) == DIRECT_MEDALS


def test_the_module_refuses_to_publish_an_open_round(session: Session, published: dict[str, Any]) -> None:
    branch_round = published["published_round"]
    with tenant_context(published["tenant"].id):
        with seeding():
            branch_round.state = BranchRoundState.OPEN
        session.flush()
        assert publication.published_years(session) == []
        assert publication.published_round(session, 2024) is None
        assert publication.plaque_facts(session, published["published_one"].id) is None
        with pytest.raises(ValueError):
            publication._published(session, branch_round, 1)
