"""亮星, the public star page (`/t/<slug>/stars/`): no login, finalised years only, branches by
organisation with level and medals, nothing of an open round, nothing of another tenant, and a
fixed number of statements whatever the number of branches."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating
from fivestar.enums import OrgKind
from fivestar.tenancy import tenant_context
from tests.branch.publication_support import DIRECT_TOTALS, ONE_TOTALS, Decided, build_round
from tests.support import count_queries

SECRET_TEXTS = ("未公布的荐星说明", "未公布的支部意见", "未公布的定星理由")


def _page(client: FlaskClient, slug: str, query: str = "") -> tuple[int, str, Any]:
    response = client.get(f"/t/{slug}/stars/{query}")
    return response.status_code, response.get_data(as_text=True), response


def test_anyone_reads_the_latest_finalised_year_without_logging_in(
    client: FlaskClient, published: dict[str, Any]
) -> None:
    status, page, response = _page(client, published["tenant"].slug)
    assert status == 200, page[:300]
    assert "2024年度党支部星级评定结果" in page and published["tenant"].name in page
    # grouped by organisation: the 机关党委 with its branch, then the committee's direct branch
    assert page.index("区财政局机关党委") < page.index("预算科党支部") < page.index("区档案馆党支部")
    assert "直属党支部" in page
    assert "四星" in page and "五星" in page
    assert '★★★★<span class="star-off">★</span>' in page  # four of five stars lit
    assert 'class="medal medal-gold"' in page and 'class="medal medal-silver"' in page
    assert 'class="medal medal-bronze"' in page and "银星" in page and "铜星" in page
    assert "经 2025年2月10日 工委会议研究决定，现予公布" in page
    assert "共 2 个党支部：五星 1 个 · 四星 1 个" in page
    # printable and phone-friendly, within the CSP
    assert 'class="table responsive stars-table"' in page and 'data-label="班子建设"' in page
    assert "<script" not in page and "style=" not in page
    assert f"/t/{published['tenant'].slug}/stars/poster.pdf?year=2024" in page
    assert f"/t/{published['tenant'].slug}/stars/plaque/{published['published_one'].id}.pdf" in page
    # public results may be indexed, but not served from a search engine's stale copy
    assert response.headers["X-Robots-Tag"] == "index, follow, noarchive"
    assert "Content-Security-Policy" in response.headers


def test_nothing_of_an_open_round_ever_shows(
    client: FlaskClient, session: Session, published: dict[str, Any], frozen_now: Any
) -> None:
    from fivestar.branch_rounds.opening import open_branch_round

    tenant = published["tenant"]
    with tenant_context(tenant.id):
        opened = open_branch_round(session, tenant).round
        session.flush()
        # proposals, statements and even levels the committee recorded before finalising
        session.execute(
            update(BranchRating)
            .where(BranchRating.round_id == opened.id)
            .values(
                proposed_level=2,
                opinion_level=1,
                decided_level=1,
                statement=SECRET_TEXTS[0],
                opinion_statement=SECRET_TEXTS[1],
                decision_reason=SECRET_TEXTS[2],
            )
        )
        session.flush()
        open_ids = list(session.scalars(select(BranchRating.id).where(BranchRating.round_id == opened.id)))
    assert len(open_ids) == 2
    status, page, _ = _page(client, tenant.slug)
    assert status == 200 and "2024年度" in page
    assert "2025年度" not in page  # not even offered as a year
    assert "一星" not in page and "二星" not in page
    assert not [text for text in SECRET_TEXTS if text in page]
    status, page, _ = _page(client, tenant.slug, "?year=2025")
    assert status == 200
    assert "2025年度的党支部星级评定结果尚未公布" in page
    assert "预算科党支部" not in page and "区档案馆党支部" not in page
    assert not [text for text in SECRET_TEXTS if text in page] and "一星" not in page
    for rating_id in open_ids:
        assert client.get(f"/t/{tenant.slug}/stars/plaque/{rating_id}.pdf").status_code == 404
    assert client.get(f"/t/{tenant.slug}/stars/poster.pdf?year=2025").status_code == 404


def test_a_district_with_only_an_open_round_gets_a_friendly_empty_page(
    client: FlaskClient, opened: dict[str, Any]
) -> None:
    status, page, _ = _page(client, opened["tenant"].slug)
    assert status == 200
    assert "还没有公布的党支部星级评定结果" in page
    assert "预算科党支部" not in page and "区档案馆党支部" not in page
    assert client.get(f"/t/{opened['tenant'].slug}/stars/poster.pdf").status_code == 404


def test_other_finalised_years_can_be_chosen(client: FlaskClient, session: Session, published: dict[str, Any]) -> None:
    build_round(session, published["tenant"], year=2023, decisions=[Decided(published["one"], 2, {"leadership": 14})])
    status, page, _ = _page(client, published["tenant"].slug)
    assert status == 200 and "2024年度党支部星级评定结果" in page
    assert 'aria-current="page">2024年度</a>' in page and "?year=2023" in page
    status, page, _ = _page(client, published["tenant"].slug, "?year=2023")
    assert status == 200 and "2023年度党支部星级评定结果" in page
    assert "二星" in page and "区档案馆党支部" not in page and "四星" not in page
    status, page, _ = _page(client, published["tenant"].slug, "?year=2019")
    assert status == 200 and "2019年度的党支部星级评定结果尚未公布" in page
    assert "?year=2024" in page  # the way back to what is published
    for bad in ("?year=abc", "?year=99", "?year=-2024", "?year=20245"):
        assert _page(client, published["tenant"].slug, bad)[0] == 400, bad


def test_an_unknown_district_is_404_and_posting_is_not_allowed(client: FlaskClient, published: dict[str, Any]) -> None:
    assert client.get("/t/no-such-district/stars/").status_code == 404
    assert client.post(f"/t/{published['tenant'].slug}/stars/").status_code == 405


def test_logged_in_people_see_the_same_page(client: FlaskClient, login: Any, published: dict[str, Any]) -> None:
    login(published["tenant"], published["secretary"])
    status, page, _ = _page(client, published["tenant"].slug)
    assert status == 200 and "预算科党支部" in page and "区档案馆党支部" in page


def test_district_b_never_shows_district_a(
    client: FlaskClient, session: Session, create_tenant: Any, create_org: Any
) -> None:
    worlds = {}
    for key, branch_name in (("a", "甲区审计科党支部"), ("b", "乙区统计科党支部")):
        tenant = create_tenant(slug=f"stars-{key}", name=f"{key.upper()}区直机关工委")
        party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name=f"{key.upper()}区机关党委", code="P1")
        branch = create_org(tenant, OrgKind.BRANCH, parent=party, name=branch_name, code="B1")
        _round, ratings = build_round(session, tenant, year=2024, decisions=[Decided(branch, 3, ONE_TOTALS)])
        worlds[key] = (tenant, branch, ratings[branch.id])
    (a, a_branch, a_rating), (b, b_branch, _b_rating) = worlds["a"], worlds["b"]
    page_b = _page(client, b.slug)[1]
    assert b_branch.name in page_b and "B区机关党委" in page_b
    assert a_branch.name not in page_b and "A区机关党委" not in page_b and a.name not in page_b
    page_a = _page(client, a.slug)[1]
    assert a_branch.name in page_a and b_branch.name not in page_a
    # A's plaque under B's address: not found
    assert client.get(f"/t/{b.slug}/stars/plaque/{a_rating.id}.pdf").status_code == 404
    assert client.get(f"/t/{a.slug}/stars/plaque/{a_rating.id}.pdf").status_code == 200


def _district_with(session: Session, create_tenant: Any, create_org: Any, slug: str, branches: int) -> Any:
    """`branches` decided branches, a new 机关党委 for every third of them, the rest directly under
    the committee, levels 0..5 and two sets of scores."""
    tenant = create_tenant(slug=slug, name=f"{slug} 工委")
    decisions = []
    for index in range(branches):
        party = None
        if index % 3 == 0:
            party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name=f"第{index}机关党委", code=f"P{index:03d}")
        branch = create_org(tenant, OrgKind.BRANCH, parent=party, name=f"统计{index:02d}党支部", code=f"B{index:03d}")
        decisions.append(Decided(branch, index % 6, DIRECT_TOTALS if index % 2 else ONE_TOTALS))
    build_round(session, tenant, year=2024, decisions=decisions)
    return tenant


def test_the_page_costs_the_same_statements_for_2_and_30_branches(
    client: FlaskClient, session: Session, engine: Engine, create_tenant: Any, create_org: Any
) -> None:
    small = _district_with(session, create_tenant, create_org, "stars-small", 2)
    large = _district_with(session, create_tenant, create_org, "stars-large", 30)
    for tenant in (small, large):  # warm the parsed-rules cache
        assert _page(client, tenant.slug)[0] == 200
    counts = {}
    for tenant in (small, large):
        with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as statements:
            status, page, _ = _page(client, tenant.slug)
        assert status == 200 and "统计01党支部" in page
        counts[tenant.slug] = len(statements)
    assert "统计29党支部" in _page(client, large.slug)[1]
    assert counts["stars-small"] == counts["stars-large"], counts
    assert counts["stars-small"] <= 10, counts  # 增星摘星: + the current levels and the adjustments
