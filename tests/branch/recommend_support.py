"""Helpers for the tests of 荐星 and the branch's pages: the rating as the views load it, complete
and partial 荐星 forms built from the pinned rules, and a district on public-rate rules."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fivestar.audit import Actor, acting_as
from fivestar.branch_rounds import core, recommend
from fivestar.branch_rounds.models import AnswerKind, BranchRating
from fivestar.rules import BranchInput, RuleSet
from fivestar.tenancy import tenant_context

REPO = Path(__file__).resolve().parents[2]
PUBLIC_RULES = REPO / "tenants" / "zoucheng-public-weighted.toml"
SECRETARY = Actor("account", None, "赵书记")


def load(session: Session, world: Mapping[str, Any], key: str = "rating_one") -> BranchRating:
    """The rating loaded as the views load it (branch attached), fresh from the database (the web
    requests of a test write through another session)."""
    with tenant_context(world["tenant"].id):
        session.flush()
        session.expire(world[key])
        session.expire(world["round"])
        return core.load_rating(session, world[key].id)


def context(session: Session, world: Mapping[str, Any], key: str = "rating_one") -> recommend.RatingContext:
    with tenant_context(world["tenant"].id):
        return recommend.context_for(session, load(session, world, key))


def rules_of(session: Session, world: Mapping[str, Any]) -> RuleSet:
    with tenant_context(world["tenant"].id):
        return core.round_rules(session, world["round"])


def full_form(
    rules: RuleSet,
    *,
    short: Decimal | int | str = 0,
    vetoes: Mapping[str, bool] | None = None,
    facts: Mapping[str, bool] | None = None,
    public_rate: str | None = None,
    statement: str = "本支部全年工作扎实，建议评为五星。",
) -> dict[str, str]:
    """A complete 荐星 form: every criterion at its maximum less `short` points in all (taken from
    the first criteria), every veto and fact answered (default "no"), the statement."""
    form: dict[str, str] = {}
    missing = Decimal(short)
    for indicator in rules.branch.indicators:
        for criterion in indicator.criteria:
            cut = min(missing, criterion.points)
            missing -= cut
            form[recommend.score_name(indicator.key, criterion.key)] = recommend.plain(criterion.points - cut)
            form[recommend.note_name(indicator.key, criterion.key)] = f"{criterion.label}：有记录可查"
    for kind, key, _label in recommend.questions(rules):
        given = (vetoes if kind is AnswerKind.VETO else facts) or {}
        value = given.get(key, False)
        form[recommend.answer_name(kind, key)] = "yes" if value else "no"
        if value:
            form[recommend.explanation_name(kind, key)] = "情况属实，详见附件"
    if rules.branch.public is not None:
        form[recommend.PUBLIC_RATE] = public_rate if public_rate is not None else "95"
    form[recommend.STATEMENT] = statement
    return form


def engine_input(rules: RuleSet, form: Mapping[str, str], rating: BranchRating) -> BranchInput:
    """The rule engine's input for a complete form, built independently of the service's parser."""
    scores: dict[str, dict[str, Decimal]] = {}
    for indicator in rules.branch.indicators:
        for criterion in indicator.criteria:
            text = form[recommend.score_name(indicator.key, criterion.key)]
            scores.setdefault(indicator.key, {})[criterion.key] = Decimal(text)
    vetoes = {v.key: form[recommend.answer_name(AnswerKind.VETO, v.key)] == "yes" for v in rules.branch.vetoes}
    facts = {f.key: form[recommend.answer_name(AnswerKind.FACT, f.key)] == "yes" for f in rules.branch.facts}
    rate = None
    if rules.branch.public is not None:
        rate = Decimal(form[recommend.PUBLIC_RATE]) / 100
    return BranchInput(
        scores=scores,
        vetoes=vetoes,
        facts=facts,
        public_rate=rate,
        previous_level=rating.previous_level,
        is_new=rating.is_new,
    )


def save(session: Session, world: Mapping[str, Any], form: Mapping[str, str], **kw: Any) -> BranchRating:
    """Save a draft through the service (version: the stored one unless given), as the secretary."""
    ctx = context(session, world)
    version = kw.pop("version", ctx.rating.version)
    with tenant_context(world["tenant"].id), acting_as(SECRETARY):
        recommend.save(session, ctx, form, version=version)
        session.flush()
    return ctx.rating


def submit(session: Session, world: Mapping[str, Any], form: Mapping[str, str] | None = None, **kw: Any) -> Any:
    ctx = context(session, world)
    version = kw.pop("version", ctx.rating.version)
    with tenant_context(world["tenant"].id), acting_as(SECRETARY):
        result = recommend.submit(session, ctx, version=version, raw=form)
        session.flush()
    return result


def url(world: Mapping[str, Any], rest: str = "", key: str = "rating_one") -> str:
    return f"/t/{world['tenant'].slug}/branch-rating/ratings/{world[key].id}{rest}"


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def public_district(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any
) -> dict[str, Any]:
    """A district on rules that weight the public satisfaction rate, cap it, and know a fact
    (zoucheng-public-weighted.toml); one branch under the committee with its secretary; the 2025
    round opened (call with the clock frozen at the opening day)."""
    from sqlalchemy import select

    from fivestar.branch_rounds.opening import open_branch_round
    from fivestar.enums import OrgKind, Position, Role

    tenant = create_tenant(slug="public-district", name="满意度测试工委", rules_toml=PUBLIC_RULES.read_text("utf-8"))
    branch = create_org(tenant, OrgKind.BRANCH, name="区文化馆党支部", code="C01")
    member = create_member(tenant, branch, name="周书记", member_no="C001", position=Position.SECRETARY)
    secretary = create_account(tenant, roles=[(Role.BRANCH_SECRETARY, branch)], member=member, username="zhou")
    with tenant_context(tenant.id):
        opened = open_branch_round(session, tenant)
        session.flush()
        rating = session.scalar(select(BranchRating).where(BranchRating.round_id == opened.round.id))
    return {"tenant": tenant, "one": branch, "secretary": secretary, "round": opened.round, "rating_one": rating}
