"""Helpers for the 议星 tests: meeting context, setup, issuing, casting — each in the district's
tenant context — and switching a round to another sample rule set."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fivestar.branch_rounds import ballot_casting, ballot_closing, ballot_codes, ballot_meeting, ballot_tallies
from fivestar.branch_rounds.models import BallotMeeting, BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.enums import OrgKind
from fivestar.orgs.models import Organisation
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.conftest import SAMPLE_RULES, TEST_SECRET_KEY

TENANTS = Path(__file__).resolve().parents[2] / "tenants"
# The instance secret the tests seal ballot boxes with: the test app's own, so that a ballot cast here
# can be counted by a close made through the app, and the other way round.
BOX_SECRET = TEST_SECRET_KEY


@contextmanager
def as_tenant(world: Mapping[str, Any]) -> Iterator[None]:
    with tenant_context(world["tenant"].id):
        yield


def ctx_of(
    session: Session, world: Mapping[str, Any], rating: BranchRating | None = None
) -> ballot_meeting.MeetingContext:
    with as_tenant(world):
        return ballot_meeting.context_for(session, rating or world["rating_one"])


def setup_meeting(
    session: Session, world: Mapping[str, Any], *, members: int = 6, public: int = 6, deputies: int = 2,
    rating: BranchRating | None = None, place: str = "三楼会议室", meeting_date: str = "2026-01-20",
) -> ballot_meeting.SavedMeeting:
    ctx = ctx_of(session, world, rating)
    version = ctx.meeting.version if ctx.meeting else 0
    raw = {"meeting_date": meeting_date, "place": place, "members_count": str(members),
           "public_count": str(public), "deputies_count": str(deputies)}
    with as_tenant(world):
        saved = ballot_meeting.save_meeting(session, ctx, raw, version)
        session.flush()
    return saved


def issue(session: Session, world: Mapping[str, Any], rating: BranchRating | None = None) -> ballot_codes.IssuedSlips:
    ctx = ctx_of(session, world, rating)
    assert ctx.meeting is not None
    with as_tenant(world):
        issued = ballot_codes.issue_slips(session, ctx, ctx.meeting.version, secret_key=BOX_SECRET)
        session.flush()
    return issued


def codes_of(issued: ballot_codes.IssuedSlips, group: str) -> list[str]:
    return [s.code for s in issued.slips if s.group.value == group]


def cast(session: Session, world: Mapping[str, Any], code: str, **answers: Any) -> None:
    raw = {("level" if key == "level" else f"item.{key}"): str(value) for key, value in answers.items()}
    with as_tenant(world):
        ballot_casting.cast_ballot(session, world["tenant"].id, code, raw, secret_key=BOX_SECRET)
        session.flush()


def close(session: Session, world: Mapping[str, Any], rating: BranchRating | None = None) -> dict[str, int]:
    ctx = ctx_of(session, world, rating)
    assert ctx.meeting is not None
    with as_tenant(world):
        totals = ballot_closing.close_voting(session, ctx, ctx.meeting.version, secret_key=BOX_SECRET)
        session.flush()
    return totals


def tally(session: Session, world: Mapping[str, Any], counts: Mapping[str, int],
          rating: BranchRating | None = None) -> None:
    ctx = ctx_of(session, world, rating)
    assert ctx.meeting is not None
    with as_tenant(world):
        ballot_tallies.save_tallies(session, ctx, {k: str(v) for k, v in counts.items()}, ctx.meeting.version)
        session.flush()


def meeting_of(session: Session, world: Mapping[str, Any], rating: BranchRating | None = None) -> BallotMeeting:
    """The meeting as stored now (what the app committed, not the test session's old copy)."""
    from sqlalchemy import select

    with as_tenant(world):
        found = session.scalar(
            select(BallotMeeting)
            .where(BallotMeeting.rating_id == (rating or world["rating_one"]).id)
            .execution_options(populate_existing=True)
        )
    assert found is not None
    return found


def use_rules(session: Session, world: Mapping[str, Any], name: str) -> None:
    """Pin the world's round to another sample rule set (a new version of the tenant's rules)."""
    from fivestar.tenants.services import add_rules_version

    with as_tenant(world):
        version = add_rules_version(session, world["tenant"], (TENANTS / f"{name}.toml").read_text(encoding="utf-8"))
        session.flush()
        world["round"].rules_version_id = version.id
        session.flush()


SEED_NOW = dt.datetime(2026, 1, 6, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def seed_meeting(
    maker: sessionmaker[Session], *, members: int, slug: str = "ballot-race", rules: Path = SAMPLE_RULES
) -> tuple[int, list[str]]:
    """A tenant with one branch in 议星 and a voting meeting of `members` codes; committed."""
    from fivestar.tenants.services import create_tenant, current_rules

    with maker() as session, clock.frozen(SEED_NOW):
        tenant = create_tenant(session, slug=slug, name="并发测试工委",
                               rules_toml=rules.read_text(encoding="utf-8"))
        session.flush()
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            branch = Organisation(tenant_id=tenant.id, parent_id=root.id, kind=OrgKind.BRANCH, name="第一党支部",
                                  code="B01")
            session.add(branch)
            session.flush()
            branch.path = f"{root.path}{branch.id}/"
            version = current_rules(session, tenant)
            assert version is not None
            branch_round = BranchRound(
                tenant_id=tenant.id, year=2025, rules_version_id=version.id, state=BranchRoundState.OPEN,
                opened_at=clock.now(), opened_by="test", self_report_due_at=clock.now() + dt.timedelta(days=30),
                committee_due_at=clock.now() + dt.timedelta(days=60),
            )
            session.add(branch_round)
            session.flush()
            rating = BranchRating(tenant_id=tenant.id, round_id=branch_round.id, branch_id=branch.id,
                                  step=RatingStep.DELIBERATE)
            session.add(rating)
            session.flush()
            rating = session.scalars(select(BranchRating).where(BranchRating.id == rating.id)).one()
            from fivestar.branch_rounds import core

            ctx = ballot_meeting.context_for(session, core.load_rating(session, rating.id))
            ballot_meeting.save_meeting(session, ctx, {"meeting_date": "2026-01-06", "place": "会议室",
                                               "members_count": str(members)}, 0)
            ctx = ballot_meeting.context_for(session, ctx.rating)
            assert ctx.meeting is not None
            issued = ballot_codes.issue_slips(session, ctx, ctx.meeting.version, secret_key=BOX_SECRET)
        session.commit()
        return tenant.id, [s.code for s in issued.slips]




def seeded_context(session: Session, tenant_id: int) -> ballot_meeting.MeetingContext:
    """The meeting of a district made by `seed_meeting` (its only one), in the caller's tenant context."""
    from fivestar.branch_rounds import core

    rating_id = session.scalar(select(BallotMeeting.rating_id).where(BallotMeeting.tenant_id == tenant_id))
    assert rating_id is not None
    ctx = ballot_meeting.context_for(session, core.load_rating(session, int(rating_id)))
    assert ctx.meeting is not None
    return ctx


def cast_committed(maker: sessionmaker[Session], tenant_id: int, code: str, raw: Mapping[str, str]) -> None:
    """One voter's ballot in its own committed transaction, as the voting page casts it."""
    with maker() as session, tenant_context(tenant_id):
        ballot_casting.cast_ballot(session, tenant_id, code, raw, secret_key=BOX_SECRET)
        session.commit()


def close_committed(
    maker: sessionmaker[Session], tenant_id: int, *, secret_key: str = BOX_SECRET
) -> dict[str, int]:
    """Close the voting of a `seed_meeting` district in a committed transaction; the totals."""
    with maker() as session, tenant_context(tenant_id):
        ctx = seeded_context(session, tenant_id)
        assert ctx.meeting is not None
        totals = ballot_closing.close_voting(session, ctx, ctx.meeting.version, secret_key=secret_key)
        session.commit()
    return totals
