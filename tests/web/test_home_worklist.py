"""The home page as a work list: per role what shows and what does not, items gone once done, overdue
first, another branch's and another district's work never shown, and a fixed number of statements
whatever the size of the district (home/providers.py and each feature's worklist.py)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.branch_rounds.models import BranchRating, RatingStep
from fivestar.branch_rounds.opening import open_branch_round
from fivestar.enums import OrgKind, Position, Role
from fivestar.exports.models import ExportDelivery, ExportMethod, ExportState, ExportTarget, ExportTrigger
from fivestar.home.providers import gather
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import BranchStep, Evaluation, Objection, RoundBranch, SelfState
from fivestar.member_rounds.opening import open_round
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.reports.jobs.models import ReportFormat, ReportKind
from fivestar.scheduling.models import DueItem, DueKind, DueState
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.support import count_queries

# A working day after the first quarter: the Q1 member round opens with its self-assessment week.
OPENING = dt.datetime(2026, 4, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SELF_REPORT_DUE = dt.date(2026, 4, 30)
COMMITTEE_DUE = dt.date(2026, 5, 29)


@pytest.fixture
def frozen() -> Any:
    """The platform clock at OPENING; `frozen.move(to)` moves it."""

    class Frozen:
        def __init__(self) -> None:
            self._cm = clock.frozen(OPENING)
            self._cm.__enter__()

        def move(self, to: dt.datetime) -> None:
            self._cm.__exit__(None, None, None)
            self._cm = clock.frozen(to)
            self._cm.__enter__()

    f = Frozen()
    yield f
    f._cm.__exit__(None, None, None)


def build_district(
    session: Session,
    create_tenant: Any,
    create_org: Any,
    create_member: Any,
    create_account: Any,
    *,
    slug: str,
    branches: int = 2,
    members: int = 3,
) -> dict[str, Any]:
    """A district: a 机关党委 with `branches` branches of `members` members each (the first two are the
    secretary and a branch committee member), one account per role, the Q1 member round and the 2025
    branch rating open."""
    tenant = create_tenant(slug=slug, name=f"工委 {slug}")
    party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="区财政局机关党委", code="P01")
    orgs = [
        create_org(tenant, OrgKind.BRANCH, parent=party, name=f"第{i + 1}党支部", code=f"B{i + 1:03d}")
        for i in range(branches)
    ]
    people: dict[int, list[Any]] = {}
    for index, org in enumerate(orgs):
        people[org.id] = [
            create_member(
                tenant,
                org,
                name=f"{slug[:2]}{index}-{n}",
                member_no=f"{index:03d}{n:04d}",
                position=Position.SECRETARY if n == 0 else Position.COMMITTEE_MEMBER if n == 1 else Position.MEMBER,
            )
            for n in range(members)
        ]
    one, two = orgs[0], orgs[1]
    world = {
        "tenant": tenant,
        "party": party,
        "one": one,
        "two": two,
        "branches": orgs,
        "people": people,
        "admin": create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="gongwei"),
        "committee": create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan"),
        "org_staff": create_account(tenant, roles=[(Role.ORG_STAFF, party)], username="jiguan"),
        "secretary": create_account(
            tenant,
            roles=[(Role.BRANCH_SECRETARY, one), (Role.MEMBER, None)],
            member=people[one.id][0],
            username="shuji",
        ),
        "branch_committee": create_account(
            tenant,
            roles=[(Role.BRANCH_COMMITTEE, one), (Role.MEMBER, None)],
            member=people[one.id][1],
            username="zhiwei",
        ),
        "member": create_account(tenant, roles=[(Role.MEMBER, None)], member=people[one.id][2], username="dangyuan"),
        "other_secretary": create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, two)], member=people[two.id][0], username="shuji2"
        ),
        "inspector": create_account(tenant, roles=[(Role.INSPECTOR, None)], username="ducha"),
    }
    with tenant_context(tenant.id):
        world["round"] = open_round(session, tenant).round
        world["branch_round"] = open_branch_round(
            session, tenant, year=2025, self_report_due=SELF_REPORT_DUE, committee_due=COMMITTEE_DUE
        ).round
        session.flush()
        world["round_branches"] = {
            rb.branch_id: rb
            for rb in session.scalars(select(RoundBranch).where(RoundBranch.round_id == world["round"].id))
        }
        world["ratings"] = {
            r.branch_id: r
            for r in session.scalars(select(BranchRating).where(BranchRating.round_id == world["branch_round"].id))
        }
    return world


@pytest.fixture
def world(
    session: Session, frozen: Any, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any
) -> dict[str, Any]:
    return build_district(session, create_tenant, create_org, create_member, create_account, slug="home-a")


def _home(client: FlaskClient, login: Any, world: dict[str, Any], who: str) -> str:
    client.post(f"/t/{world['tenant'].slug}/logout")
    login(world["tenant"], world[who])
    response = client.get(f"/t/{world['tenant'].slug}/")
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def _kinds(page: str) -> list[str]:
    return re.findall(r'data-kind="([^"]+)"', page)


def _item(page: str, kind: str) -> str:
    """The HTML of the first item of `kind`."""
    start = page.index(f'data-kind="{kind}"')
    return page[start : page.index("</li>", start)]


def _evaluation(session: Session, world: dict[str, Any], member: Any) -> Evaluation:
    with tenant_context(world["tenant"].id):
        found = session.scalar(select(Evaluation).where(Evaluation.member_id == member.id))
    assert found is not None
    return found


# --- per role ---------------------------------------------------------------------------------------


def test_member_sees_their_self_assessment_one_tap_away_with_the_local_deadline(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    page = _home(client, login, world, "member")
    evaluation = _evaluation(session, world, world["people"][world["one"].id][2])
    assert _kinds(page) == ["member_round.self_assessment"]
    item = _item(page, "member_round.self_assessment")
    assert f'href="/t/home-a/rounds/self/{evaluation.id}"' in item and "填写并提交个人自评" in item
    local = world["round"].self_due_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert f"截止 {local:%Y-%m-%d %H:%M}" in item
    assert "目前没有待办事项" not in page
    # the people search and the link to the organisation tree stay; the tree itself moved away
    assert 'action="/t/home-a/people/"' in page and 'href="/t/home-a/orgs/"' in page
    assert f'href="/t/home-a/orgs/{world["party"].id}"' not in page


def test_a_returned_self_assessment_says_why(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    evaluation = _evaluation(session, world, world["people"][world["one"].id][2])
    evaluation.self_state = SelfState.RETURNED
    evaluation.return_reason = "承诺践诺情况写得太简单"
    session.flush()
    item = _item(_home(client, login, world, "member"), "member_round.self_assessment")
    assert "修改并重新提交个人自评" in item and "承诺践诺情况写得太简单" in item


def test_a_self_assessment_past_its_deadline_is_overdue_and_says_whom_to_ask(
    client: FlaskClient, login: Any, world: dict[str, Any], frozen: Any
) -> None:
    frozen.move(world["round"].self_due_at + dt.timedelta(hours=2))
    page = _home(client, login, world, "member")
    item = _item(page, "member_round.self_assessment")
    assert page.index('id="work-overdue"') < page.index('data-kind="member_round.self_assessment"')
    assert "个人自评已截止，请联系支部代录" in item and "已于" in item


def test_the_item_is_gone_once_the_self_assessment_is_submitted(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    evaluation = _evaluation(session, world, world["people"][world["one"].id][2])
    evaluation.self_state = SelfState.SUBMITTED
    session.flush()
    page = _home(client, login, world, "member")
    assert _kinds(page) == [] and "目前没有待办事项" in page


def test_secretary_who_is_a_member_sees_both_their_own_and_their_branchs_work(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    page = _home(client, login, world, "secretary")
    kinds = _kinds(page)
    assert "member_round.self_assessment" in kinds  # their own, as a member
    urge = _item(page, "member_round.branch_self")
    rb = world["round_branches"][world["one"].id]
    assert f'href="/t/home-a/rounds/branch/{rb.id}"' in urge and "3 项" in urge and "第1党支部" in urge
    recommend = _item(page, "branch_rating.recommend")
    assert f'href="/t/home-a/branch-rating/ratings/{world["ratings"][world["one"].id].id}/recommend"' in recommend
    # the other branch's work never shows, nor anything of the committee's
    assert "第2党支部" not in page
    assert not {k for k in kinds if k.endswith(("not_reported", "decide", "forward", "failed", "close"))}


def test_branch_committee_member_sees_the_branch_steps_and_the_other_secretary_only_theirs(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    page = _home(client, login, world, "branch_committee")
    assert {"member_round.branch_self", "branch_rating.recommend"} <= set(_kinds(page))
    assert "第2党支部" not in page
    other = _home(client, login, world, "other_secretary")
    assert "第2党支部" in _item(other, "member_round.branch_self") and "第1党支部" not in other


def test_branch_items_follow_the_steps(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    rb = world["round_branches"][world["one"].id]
    rating = world["ratings"][world["one"].id]
    with seeding():
        rb.step = BranchStep.REVIEW
        rb.returned_at = clock.now()
        rb.return_reason = "加分依据不足"
        rating.step = RatingStep.DELIBERATE
    session.flush()
    page = _home(client, login, world, "secretary")
    review = _item(page, "member_round.branch_review")
    assert f'href="/t/home-a/rounds/branch/{rb.id}/review"' in review and "加分依据不足" in review
    assert "3 项" in review  # three members without final scores
    meeting = _item(page, "branch_rating.deliberate")
    assert "召开议星会议" in meeting and f"/branch-rating/deliberation/{rating.id}" in meeting
    assert "member_round.self_assessment" not in _kinds(page)  # the branch has moved on
    with seeding():
        rb.step = BranchStep.FINALISED
        rating.step = RatingStep.ORG_REVIEW
    session.flush()
    kinds = _kinds(_home(client, login, world, "secretary"))
    assert not [k for k in kinds if k.startswith(("member_round.branch", "branch_rating."))]


def test_org_staff_see_their_branches_to_forward_summed(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    assert "目前没有待办事项" in _home(client, login, world, "org_staff")
    with seeding():
        for rating in world["ratings"].values():
            rating.step = RatingStep.ORG_REVIEW
    session.flush()
    page = _home(client, login, world, "org_staff")
    item = _item(page, "branch_rating.forward")
    assert 'href="/t/home-a/branch-rating/org-review/"' in item and "2 项" in item
    assert _kinds(page) == ["branch_rating.forward"]


def test_committee_sees_branches_to_decide_and_rounds_whose_deadline_comes(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, frozen: Any
) -> None:
    # more than a week before the self-assessment deadline: nothing for the committee yet
    assert "目前没有待办事项" in _home(client, login, world, "committee")
    frozen.move(dt.datetime(2026, 4, 9, 9, 0, tzinfo=dt.UTC))
    page = _home(client, login, world, "committee")
    # within a week of the deadline the branches still at it are the committee's concern
    lagging = _item(page, "member_round.not_reported")
    assert f'href="/t/home-a/rounds/{world["round"].id}"' in lagging and "2 项" in lagging
    assert "branch_rating.not_reported" not in _kinds(page)  # the 2025 self-reports are weeks away
    with seeding():
        world["ratings"][world["one"].id].step = RatingStep.COMMITTEE
        world["round_branches"][world["two"].id].step = BranchStep.REVIEW
        world["round_branches"][world["two"].id].returned_at = clock.now()
    session.flush()
    page = _home(client, login, world, "committee")
    decide = _item(page, "branch_rating.decide")
    assert f'href="/t/home-a/branch-rating/{world["branch_round"].id}"' in decide and "1 项" in decide
    assert "1 项" in _item(page, "member_round.returned")
    frozen.move(dt.datetime(2026, 4, 28, 9, 0, tzinfo=dt.UTC))
    page = _home(client, login, world, "committee")
    assert "1 项" in _item(page, "branch_rating.not_reported")  # branch two, near its deadline


def test_administrator_sees_failed_deliveries_of_their_district_only(
    client: FlaskClient,
    login: Any,
    world: dict[str, Any],
    session: Session,
    create_tenant: Any,
    create_org: Any,
    create_member: Any,
    create_account: Any,
) -> None:
    other = build_district(session, create_tenant, create_org, create_member, create_account, slug="home-b")
    for district, failures in ((world, 2), (other, 5)):
        tenant_id = district["tenant"].id
        with tenant_context(tenant_id):
            for n in range(failures):
                session.add(
                    OutboxMessage(
                        tenant_id=tenant_id,
                        channel=Channel.EMAIL,
                        recipient=f"x{n}@example.org",
                        subject="s",
                        body_text="b",
                        dedupe_key=f"k{n}",
                        state=DeliveryState.FAILED,
                        created_at=clock.now(),
                    )
                )
            target = ExportTarget(
                tenant_id=tenant_id,
                name="市委组织部",
                report_kind=ReportKind.BRANCH_LEVELS,
                report_format=ReportFormat.XLSX,
                method=ExportMethod.EMAIL,
                destination="up@example.org",
                trigger=ExportTrigger.ON_FINALISE,
                created_by="test",
            )
            session.add(target)
            session.flush()
            session.add(
                DueItem(
                    tenant_id=tenant_id,
                    kind=DueKind.REMINDER,
                    key=f"m:self:{n}",
                    due_at=clock.now(),
                    state=DueState.FAILED,
                    outcome="测试：失败",
                )
            )
            session.add(
                ExportDelivery(
                    tenant_id=tenant_id,
                    target_id=target.id,
                    trigger=ExportTrigger.ON_FINALISE,
                    round_type="branch",
                    round_id=district["branch_round"].id,
                    round_key="2025",
                    state=ExportState.FAILED,
                )
            )
            session.flush()
    page = _home(client, login, world, "admin")
    # an administrator may open every branch's pages, but the branches' steps are their secretaries' work
    assert not [kind for kind in _kinds(page) if kind.startswith(("member_round.branch", "branch_rating.rec"))]
    outbox = _item(page, "outbox.failed")
    assert 'href="/t/home-a/accounts/outbox?state=failed"' in outbox and "2 项" in outbox and "5 项" not in outbox
    assert 'href="/t/home-a/exports/"' in _item(page, "exports.failed")
    assert 'href="/t/home-a/schedule/"' in _item(page, "scheduling.failed")
    # nobody else is shown the administrators' work
    for who in ("committee", "secretary", "inspector"):
        assert not {k for k in _kinds(_home(client, login, world, who)) if k.endswith("failed")}, who


def test_inspector_has_an_empty_list(client: FlaskClient, login: Any, world: dict[str, Any]) -> None:
    page = _home(client, login, world, "inspector")
    assert _kinds(page) == [] and 'id="worklist-empty"' in page and "目前没有待办事项" in page


def test_another_districts_work_never_appears(
    client: FlaskClient,
    login: Any,
    world: dict[str, Any],
    session: Session,
    frozen: Any,
    create_tenant: Any,
    create_org: Any,
    create_member: Any,
    create_account: Any,
) -> None:
    other = build_district(session, create_tenant, create_org, create_member, create_account, slug="home-b", branches=4)
    with seeding():
        for rating in other["ratings"].values():
            rating.step = RatingStep.COMMITTEE
    session.flush()
    frozen.move(dt.datetime(2026, 4, 9, 9, 0, tzinfo=dt.UTC))
    page = _home(client, login, world, "committee")
    assert "branch_rating.decide" not in _kinds(page)
    assert "2 项" in _item(page, "member_round.not_reported")  # A's two branches, not B's four
    assert "home-b" not in page and f'/rounds/{other["round"].id}"' not in page


# --- order ------------------------------------------------------------------------------------------


def test_overdue_items_come_first(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, frozen: Any
) -> None:
    # after the self-assessment deadline: the branch's 党群联评 is due, the 荐星 later still
    frozen.move(world["round"].self_due_at + dt.timedelta(hours=1))
    with seeding():
        world["round_branches"][world["one"].id].step = BranchStep.JOINT
    session.flush()
    frozen.move(world["round"].joint_due_at + dt.timedelta(hours=1))
    page = _home(client, login, world, "secretary")
    assert page.index('id="work-overdue"') < page.index('data-kind="member_round.branch_joint"')
    assert page.index('data-kind="member_round.branch_joint"') < page.index('data-kind="branch_rating.recommend"')
    assert "已于" in _item(page, "member_round.branch_joint")
    principal = Principal(
        session_token="t",
        display_name="x",
        tenant_id=world["tenant"].id,
        account_id=world["secretary"].id,
        member_id=world["secretary"].member_id,
        grants=(Grant(Role.BRANCH_SECRETARY, world["one"].id, world["one"].path),),
    )
    with tenant_context(world["tenant"].id):
        work = gather(session, principal, clock.now())
    assert [item.kind for item in work.overdue] == ["member_round.branch_joint"]
    assert all(item.due is None or item.due > clock.now() for item in work.due_soon + work.other)


# --- a fixed number of statements -------------------------------------------------------------------

ROLES = ("admin", "committee", "org_staff", "secretary", "branch_committee", "member", "inspector")


def _statements(client: FlaskClient, login: Any, engine: Engine, world: dict[str, Any], who: str) -> int:
    client.post(f"/t/{world['tenant'].slug}/logout")
    login(world["tenant"], world[who])
    with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK TO")) as statements:
        assert client.get(f"/t/{world['tenant'].slug}/").status_code == 200
    return len(statements)


def _busy(session: Session, world: dict[str, Any]) -> None:
    """Work for every role: ratings at each step, a returned branch, a failed message."""
    steps = [RatingStep.ORG_REVIEW, RatingStep.COMMITTEE, RatingStep.DELIBERATE]
    with seeding():
        for index, (branch_id, rating) in enumerate(world["ratings"].items()):
            if branch_id != world["one"].id:
                rating.step = steps[index % len(steps)]
        for index, (branch_id, rb) in enumerate(world["round_branches"].items()):
            if branch_id != world["one"].id and index % 2:
                rb.step = BranchStep.REVIEW
                rb.returned_at = clock.now()
    with tenant_context(world["tenant"].id):
        session.add(
            OutboxMessage(
                tenant_id=world["tenant"].id,
                channel=Channel.EMAIL,
                recipient="x@example.org",
                subject="s",
                body_text="b",
                dedupe_key="k",
                state=DeliveryState.FAILED,
                created_at=clock.now(),
            )
        )
    session.flush()


def test_the_home_page_costs_the_same_statements_at_any_size(
    client: FlaskClient,
    login: Any,
    engine: Engine,
    session: Session,
    frozen: Any,
    create_tenant: Any,
    create_org: Any,
    create_member: Any,
    create_account: Any,
) -> None:
    small = build_district(
        session, create_tenant, create_org, create_member, create_account, slug="home-small", branches=3, members=4
    )
    large = build_district(
        session,
        create_tenant,
        create_org,
        create_member,
        create_account,
        slug="home-large",
        branches=30,
        members=10,
    )
    for district in (small, large):
        _busy(session, district)
    for who in ROLES:
        at_small = _statements(client, login, engine, small, who)
        at_large = _statements(client, login, engine, large, who)
        assert at_large == at_small, (who, at_small, at_large)


# --- one tap away -----------------------------------------------------------------------------------


def test_every_item_leads_to_a_page_its_person_may_open(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, frozen: Any
) -> None:
    """Work of every kind, then every link of every role's home page answers 200 for that role."""
    one, two = world["round_branches"][world["one"].id], world["round_branches"][world["two"].id]
    with seeding():
        one.step = BranchStep.NOTICE
        one.notice_ends_at = clock.now() + dt.timedelta(days=5)
        two.step = BranchStep.JOINT
        world["ratings"][world["one"].id].step = RatingStep.DELIBERATE
        world["ratings"][world["two"].id].step = RatingStep.ORG_REVIEW
    with tenant_context(world["tenant"].id):
        session.add(Objection(tenant_id=world["tenant"].id, round_branch_id=one.id, text="评分偏高"))
        session.add(
            OutboxMessage(
                tenant_id=world["tenant"].id,
                channel=Channel.EMAIL,
                recipient="x@example.org",
                subject="s",
                body_text="b",
                dedupe_key="k",
                state=DeliveryState.FAILED,
                created_at=clock.now(),
            )
        )
    session.flush()
    frozen.move(dt.datetime(2026, 4, 15, 9, 0, tzinfo=dt.UTC))  # within a week of the 党群联评 deadline
    seen: set[str] = set()
    for who in (*ROLES, "other_secretary"):
        page = _home(client, login, world, who)
        for kind, href in re.findall(r'data-kind="([^"]+)">\s*<div class="work-title">\s*<a href="([^"]+)"', page):
            seen.add(kind)
            assert client.get(href).status_code == 200, (who, kind, href)
    assert {
        "member_round.objections",
        "member_round.branch_report",
        "member_round.branch_joint",
        "member_round.not_reported",
        "branch_rating.deliberate",
        "branch_rating.forward",
        "outbox.failed",
    } <= seen
    objections = _item(_home(client, login, world, "secretary"), "member_round.objections")
    assert "1 项" in objections and f"/rounds/branches/{one.id}/objections" in objections
