"""The demo seed: realistic districts, one login per role, and nothing duplicated on a second run."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, Operator, RoleGrant
from fivestar.accounts.passwords import verify_password
from fivestar.audit.models import AuditEvent
from fivestar.demo.seed import (
    DEMO_PASSWORD,
    DISTRICTS,
    OPERATOR_USERNAME,
    USERNAMES,
    demo_logins,
    seed_demo,
    table_counts,
)
from fivestar.enums import OrgKind, Position, Role, Standing
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant

SLUGS = [district.slug for district in DISTRICTS]
NAME = re.compile(r"^[\u4e00-\u9fff]{2,3}$")
PHONE = re.compile(r"^138\d{8}$")


@pytest.fixture
def seeded(session: Session) -> dict[str, Any]:
    first = seed_demo(session)
    return {"report": first, "counts": table_counts(session)}


def _tenant(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    assert tenant is not None
    return tenant


def test_second_seed_adds_nothing(session: Session, seeded: dict[str, Any]) -> None:
    assert seeded["report"].created == [*SLUGS, f"operator:{OPERATOR_USERNAME}"]
    second = seed_demo(session)
    assert second.created == []
    assert second.existing == [*SLUGS, f"operator:{OPERATOR_USERNAME}"]
    assert table_counts(session) == seeded["counts"]
    assert seeded["counts"]["members"] >= 600  # other tests' rows are rolled back, ours are here


@pytest.mark.parametrize("slug", SLUGS)
def test_district_shape(session: Session, seeded: dict[str, Any], slug: str) -> None:
    tenant = _tenant(session, slug)
    with tenant_context(tenant.id):
        kinds = dict(session.execute(select(Organisation.kind, func.count()).group_by(Organisation.kind)).all())
        assert kinds[OrgKind.COMMITTEE] == 1
        assert kinds[OrgKind.PARTY_COMMITTEE] == 4
        assert kinds[OrgKind.GENERAL_BRANCH] == 2
        assert 18 <= kinds[OrgKind.BRANCH] <= 22
        assert kinds[OrgKind.RETIREE_BRANCH] == 1

        orgs = {org.id: org for org in session.scalars(select(Organisation))}
        for org in orgs.values():
            assert org.path.endswith(f"/{org.id}/")
            if org.parent_id is not None:
                assert org.path.startswith(orgs[org.parent_id].path)
        retirees = next(org for org in orgs.values() if org.kind is OrgKind.RETIREE_BRANCH)
        assert "离退休" in retirees.name

        members = list(session.scalars(select(Member)))
        assert 280 <= len(members) <= 320
        assert all(NAME.match(member.name) for member in members), [m.name for m in members if not NAME.match(m.name)]
        assert all(member.phone and PHONE.match(member.phone) for member in members)
        assert len({member.phone for member in members}) == len(members)
        assert len({member.name for member in members}) > len(members) * 0.8  # varied, not a handful repeated
        assert {member.gender for member in members} == {"male", "female"}
        probationary = [member for member in members if member.standing is Standing.PROBATIONARY]
        assert 3 <= len(probationary) <= 40
        assert all(member.position is Position.MEMBER for member in probationary)
        assert any(member.branch_id == retirees.id for member in members)
        assert all(orgs[member.branch_id].kind.holds_members for member in members)

        # Every member-holding organisation has exactly one 书记 and a committee of 3–5.
        for org in orgs.values():
            if not org.kind.holds_members:
                continue
            people = [member for member in members if member.branch_id == org.id]
            assert sum(member.position is Position.SECRETARY for member in people) == 1, org.name
            committee = [member for member in people if member.position is not Position.MEMBER]
            assert 3 <= len(committee) <= 5, org.name

        created = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "member.create", AuditEvent.tenant_id == tenant.id)
        )
        assert created == len(members)
        assert session.scalar(select(func.count()).select_from(RuleSetVersion)) == 1


@pytest.mark.parametrize("slug", SLUGS)
def test_one_login_per_role(session: Session, seeded: dict[str, Any], slug: str) -> None:
    tenant = _tenant(session, slug)
    with tenant_context(tenant.id):
        accounts = {account.username: account for account in session.scalars(select(Account))}
        assert set(accounts) == set(USERNAMES.values())
        grants = {grant.role: grant for grant in session.scalars(select(RoleGrant))}
        assert set(grants) == set(Role)
        for role, username in USERNAMES.items():
            assert grants[role].account_id == accounts[username].id

        orgs = {org.id: org for org in session.scalars(select(Organisation))}
        members = {member.id: member for member in session.scalars(select(Member))}
        assert orgs[grants[Role.ORG_STAFF].organisation_id].kind is OrgKind.PARTY_COMMITTEE
        branch = orgs[grants[Role.BRANCH_SECRETARY].organisation_id]
        assert branch.kind is OrgKind.BRANCH
        assert grants[Role.BRANCH_COMMITTEE].organisation_id == branch.id

        secretary = members[accounts["secretary"].member_id]
        assert (secretary.branch_id, secretary.position) == (branch.id, Position.SECRETARY)
        committee = members[accounts["branchcommittee"].member_id]
        assert (committee.branch_id, committee.position) == (branch.id, Position.COMMITTEE_MEMBER)
        member = members[accounts["member"].member_id]
        assert (member.branch_id, member.position) == (branch.id, Position.MEMBER)
        assert accounts["secretary"].display_name == secretary.name
        assert verify_password(accounts["member"].password_hash, DEMO_PASSWORD)
    operator = session.scalar(select(Operator).where(Operator.username == OPERATOR_USERNAME))
    assert operator is not None and verify_password(operator.password_hash, DEMO_PASSWORD)


def test_districts_are_isolated_and_differ(session: Session, seeded: dict[str, Any]) -> None:
    east, west = (_tenant(session, slug) for slug in SLUGS)
    with tenant_context(east.id):
        east_names = set(session.scalars(select(Organisation.name)))
        east_rules = session.scalar(select(RuleSetVersion.content_hash))
    with tenant_context(west.id):
        west_names = set(session.scalars(select(Organisation.name)))
        west_rules = session.scalar(select(RuleSetVersion.content_hash))
    assert len(east_names & west_names) <= 1  # different bureaus in different districts
    assert len({district.preferred_rules[0] for district in DISTRICTS}) == 2
    assert east_rules != west_rules  # each district runs its own sample rule set


def test_every_demo_login_opens_every_page_of_its_menu(app: Any, session: Session, seeded: dict[str, Any]) -> None:
    """What the README promises a newcomer: each printed login works and its menu leads somewhere."""
    for login in demo_logins():
        client = app.test_client()
        response = client.post(f"/t/{login.slug}/login", data={"username": login.username, "password": login.password})
        assert response.status_code == 302, (login, response.get_data(as_text=True)[:300])
        home = client.get(response.location)
        assert home.status_code == 200, login
        menu = re.search(r'<nav class="topnav"[^>]*>(.*?)</nav>', home.get_data(as_text=True), re.S)
        assert menu is not None
        links = re.findall(r'href="([^"]+)"', menu.group(1))
        assert f"/t/{login.slug}/" in links
        for link in links:
            assert client.get(link).status_code == 200, (login.username, link)
    operator = app.test_client()
    response = operator.post("/ops/login", data={"username": OPERATOR_USERNAME, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert "demo-east" in operator.get(response.location).get_data(as_text=True)


def test_a_wrong_demo_password_is_refused(client: Any, session: Session, seeded: dict[str, Any]) -> None:
    wrong = client.post("/t/demo-west/login", data={"username": "secretary", "password": "not-the-password"})
    assert wrong.status_code == 200
    assert "用户名或密码不正确" in wrong.get_data(as_text=True)


def test_demo_east_starts_in_a_running_member_round(session: Session, seeded: dict[str, Any]) -> None:
    from fivestar.accounts.models import Account
    from fivestar.member_rounds.models import Evaluation, MemberRound, RoundState, SelfState

    east, west = (_tenant(session, slug) for slug in SLUGS)
    with tenant_context(east.id):
        rounds = list(session.scalars(select(MemberRound).order_by(MemberRound.period_start)))
        # The period before, closed with its follow-ups (demo/scene_overview.py), then the running one.
        assert [r.state for r in rounds] == [RoundState.CLOSED, RoundState.OPEN]
        with_login = set(session.scalars(select(Account.member_id).where(Account.member_id.is_not(None))))
        states = {
            member_id: state
            for member_id, state in session.execute(
                select(Evaluation.member_id, Evaluation.self_state).where(Evaluation.round_id == rounds[-1].id)
            )
        }
    assert len(states) > 250  # every member of a rated branch (not the retirees)
    assert {states[m] for m in with_login} == {SelfState.PENDING}  # left for the demo logins
    assert {state for m, state in states.items() if m not in with_login} == {SelfState.SUBMITTED}
    with tenant_context(west.id):
        assert session.scalar(select(MemberRound.id)) is None  # the other district opens one by hand


def test_demo_east_has_last_years_branch_rating_with_one_branch_to_go(session: Session, seeded: dict[str, Any]) -> None:
    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
    from fivestar.enums import Role

    east = _tenant(session, SLUGS[0])
    with tenant_context(east.id):
        rounds = list(session.scalars(select(BranchRound).order_by(BranchRound.year)))
        # The year before last, finalised (the public page and the export upward have it), and last year, open.
        assert [(r.year, r.state) for r in rounds] == [
            (rounds[1].year - 1, BranchRoundState.FINALISED), (rounds[1].year, BranchRoundState.OPEN)]
        finalised = dict(session.execute(select(BranchRating.branch_id, BranchRating.step)
                                         .where(BranchRating.round_id == rounds[0].id)).all())
        assert set(finalised.values()) == {RatingStep.DECIDED}
        steps = dict(session.execute(select(BranchRating.branch_id, BranchRating.step)
                                     .where(BranchRating.round_id == rounds[1].id)).all())
        rated = set(session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.BRANCH)))
        secretary_branch = session.scalar(
            select(RoleGrant.organisation_id)
            .join(Account, Account.id == RoleGrant.account_id)
            .where(Account.username == "secretary", RoleGrant.role == Role.BRANCH_SECRETARY)
        )
    assert steps[secretary_branch] is RatingStep.RECOMMEND
    others = sorted(step.value for branch, step in steps.items() if branch != secretary_branch)
    # every other branch decided, but one waiting for its 机关党委 and one for 定星 (demo/scene_worklist.py)
    assert [step for step in others if step != RatingStep.DECIDED.value] == ["committee", "org_review"]
    assert others.count(RatingStep.DECIDED.value) == len(others) - 2
    assert set(steps) == rated  # every branch, not the retirees'


def test_demo_west_opens_the_period_just_past_by_itself(app: Any, session: Session, seeded: dict[str, Any]) -> None:
    """demo-west's rules open member rounds by themselves, and the seed plants the opening of the
    period just past 90 s ahead: the worker's sweep opens it without a click."""
    import datetime as dt

    from fivestar.member_rounds.models import MemberRound
    from fivestar.scheduling.models import DueItem, DueKind, DueState
    from fivestar.scheduling.runner import run_due
    from fivestar.timekeeping import clock

    west = _tenant(session, SLUGS[1])
    with tenant_context(west.id):
        planted = session.scalar(select(DueItem).where(DueItem.kind == DueKind.OPEN_MEMBER_ROUND))
        assert planted is not None and planted.state is DueState.PENDING
        assert dt.timedelta(seconds=30) < planted.due_at - clock.now() <= dt.timedelta(seconds=90)
        key = planted.key
    factory = app.extensions["fivestar.sessionmaker"]
    at = planted.due_at + dt.timedelta(seconds=1)
    with clock.frozen(at):
        run_due(factory, now=at)
    session.expire_all()
    with tenant_context(west.id):
        assert list(session.scalars(select(MemberRound.period_key))) == [key]
        assert session.scalar(select(DueItem.state).where(DueItem.key == key)) is DueState.DONE


def test_demo_east_exports_its_finalised_branch_rating_upward(session: Session, seeded: dict[str, Any]) -> None:
    """The export to the superior committee is configured, so the finalised year goes out by itself."""
    from fivestar.branch_rounds.models import BranchRound
    from fivestar.exports.models import ExportTarget

    east = _tenant(session, SLUGS[0])
    with tenant_context(east.id):
        targets = list(session.scalars(select(ExportTarget)))
    assert [(t.method.value, t.destination, t.trigger.value) for t in targets] == [
        ("email", "zuzhibu.demo-east@example.org", "on_finalise")]
    with tenant_context(east.id):
        finalised_at = session.scalar(select(BranchRound.finalised_at).where(BranchRound.finalised_at.is_not(None)))
    assert finalised_at is not None and targets[0].since <= finalised_at  # so the sweep sends it


def test_demo_east_has_adjustments_and_an_open_prompt(session: Session, seeded: dict[str, Any]) -> None:
    """增星摘星 in the demo: the finished year in the level history, one branch 摘星 after a veto event,
    the member login 增星 after an honour, and one veto event still waiting for the committee."""
    from fivestar.standing import queries
    from fivestar.standing.models import Adjustment, EventState, LevelHistory, SourceKind, StandingEvent

    east = _tenant(session, SLUGS[0])
    with tenant_context(east.id):
        sources = dict(session.execute(select(LevelHistory.source, func.count()).group_by(LevelHistory.source)).all())
        assert sources[SourceKind.BRANCH_ROUND] > 10 and sources[SourceKind.ADJUSTMENT] == 2
        lowered, raised = sorted(session.scalars(select(Adjustment)), key=lambda a: a.branch_id is None)
        assert lowered.branch_id is not None and lowered.to_level < (lowered.from_level or 0)
        assert raised.member_id is not None and raised.to_level == 5
        member_login = session.scalar(select(Account.member_id).where(Account.username == USERNAMES[Role.MEMBER]))
        assert raised.member_id == member_login
        current = queries.current_branch_levels(session, [lowered.branch_id])[lowered.branch_id]
        assert current.adjusted and current.level == lowered.to_level
        states = sorted(e.state for e in session.scalars(select(StandingEvent)))
        assert states == sorted([EventState.ADJUSTED, EventState.ADJUSTED, EventState.OPEN])


def test_demo_east_walks_from_ding_xing_to_acceptance(session: Session, seeded: dict[str, Any]) -> None:
    """The finished year's plans: published, items done but one of the demo secretary's overdue, one
    draft, several reviewed with each outcome; last year's open round shows a review in its dossier."""
    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.branch_rounds import core, decision
    from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState
    from fivestar.enums import Role
    from fivestar.improvement import queries
    from fivestar.improvement.models import AcceptanceReview, ImprovementPlan, Outcome, PlanState
    from fivestar.timekeeping import clock

    east = _tenant(session, SLUGS[0])
    with tenant_context(east.id):
        finished, running = list(session.scalars(select(BranchRound).order_by(BranchRound.year)))
        assert finished.state is BranchRoundState.FINALISED
        progress = queries.plans_of_year(session, running.year, clock.today_in(east.timezone))
        secretary_branch = session.scalar(
            select(RoleGrant.organisation_id)
            .join(Account, Account.id == RoleGrant.account_id)
            .where(Account.username == "secretary", RoleGrant.role == Role.BRANCH_SECRETARY)
        )
        rated = session.scalar(
            select(func.count()).select_from(BranchRating).where(BranchRating.round_id == finished.id)
        )
        assert len(progress) == rated
        states = [p.state for p in progress]
        assert states.count(PlanState.DRAFT) == 1 and PlanState.REVIEWED in states
        own = next(p for p in progress if p.branch_id == secretary_branch)
        assert own.state is PlanState.PUBLISHED and own.items_overdue == 1 and own.items_done == own.items_total - 1
        outcomes = set(session.scalars(select(AcceptanceReview.outcome)))
        assert outcomes == {Outcome.PROMOTE, Outcome.KEEP, Outcome.RECTIFY}
        reviewed = session.scalar(select(ImprovementPlan).where(ImprovementPlan.state == PlanState.REVIEWED).limit(1))
        assert reviewed is not None
        rating_id = session.scalar(select(BranchRating.id).where(BranchRating.round_id == running.id,
                                                                 BranchRating.branch_id == reviewed.branch_id))
        assert rating_id is not None
        rating = core.load_rating(session, rating_id)
        dossier = decision.build_dossier(session, running, rating)
    [section] = dossier.sections
    assert section.title == f"上年度整改提升与考核验收（{running.year}年）"
    assert any(label == "验收结果" for label, _text in section.rows)
