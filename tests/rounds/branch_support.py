"""Helpers for the branch-side tests of the member round: walking a branch through its steps with the
real services, and building grid posts the way the pages do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.member_rounds import branch, branch_pages, core
from fivestar.member_rounds.core import ScoreField
from fivestar.member_rounds.models import BranchStep, Evaluation, RoundBranch, ScoreStage
from fivestar.tenancy import tenant_context


def round_branch(session: Session, world: Mapping[str, Any], key: str = "one") -> RoundBranch:
    """The round branch of `world[key]` in the opened round, loaded as the views load it."""
    with tenant_context(world["tenant"].id):
        found = session.scalar(
            select(RoundBranch.id).where(
                RoundBranch.round_id == world["round"].id, RoundBranch.branch_id == world[key].id
            )
        )
        assert found is not None
        return core.load_round_branch(session, found)


def context(session: Session, world: Mapping[str, Any], key: str = "one") -> branch.BranchContext:
    with tenant_context(world["tenant"].id):
        return branch.context_for(session, round_branch(session, world, key))


def evaluations(session: Session, world: Mapping[str, Any], key: str = "one") -> list[Evaluation]:
    """The branch's evaluations in roll order (member number), members loaded."""
    with tenant_context(world["tenant"].id):
        return branch.branch_evaluations(session, round_branch(session, world, key))


def scores_for(fields: list[ScoreField], total: Decimal | int | str) -> dict[str, str]:
    """Form values whose scheme total is `total` (sum of aspects): everything at its maximum, then
    points taken off field by field."""
    values = {f.name: f.max for f in fields}
    missing = sum(values.values(), Decimal(0)) - Decimal(total)
    assert missing >= 0, "more than the maximum"
    for f in fields:
        cut = min(missing, values[f.name])
        values[f.name] -= cut
        missing -= cut
    return {name: branch_pages.fmt(value) for name, value in values.items()}


def row_post(evaluation: Evaluation, values: Mapping[str, str], version: int | None = None) -> dict[str, str]:
    post = {branch.cell_name(evaluation.id, name): value for name, value in values.items()}
    post[branch.cell_name(evaluation.id, "version")] = str(evaluation.version if version is None else version)
    return post


def grid_post(rows: list[tuple[Evaluation, Mapping[str, str]]]) -> dict[str, str]:
    post: dict[str, str] = {}
    for evaluation, values in rows:
        post.update(row_post(evaluation, values))
    return post


def enter_all_self(session: Session, world: Mapping[str, Any], key: str = "one", total: int = 90) -> None:
    """Every member's self-assessment, entered by the branch (as for members without accounts)."""
    ctx = context(session, world, key)
    fields = core.score_fields(ctx.rules)
    with tenant_context(world["tenant"].id):
        for evaluation in branch.branch_evaluations(session, ctx.round_branch, active_only=True):
            ctx = branch.context_for(session, ctx.round_branch)
            form = {**scores_for(fields, total), "pledge": "按承诺完成各项工作", "summary": "本季度认真履职"}
            branch.enter_self(session, ctx, evaluation, form, evaluation.version)
        session.flush()


def take(session: Session, world: Mapping[str, Any], name: str, key: str = "one") -> None:
    with tenant_context(world["tenant"].id):
        branch.take_step(session, context(session, world, key), name)
        session.flush()


def record_meeting(session: Session, world: Mapping[str, Any], key: str = "one", public: int = 2) -> None:
    ctx = context(session, world, key)
    with tenant_context(world["tenant"].id):
        branch.save_meeting(
            session, ctx,
            {"meeting_date": ctx.today.isoformat(), "members_present": "3", "public_present": str(public),
             "meeting_note": "群众代表因故缺席" if public < 1 else ""},
            ctx.round_branch.version,
        )
        session.flush()


def save_joint(session: Session, world: Mapping[str, Any], totals: Mapping[int, int] | None = None,
               key: str = "one", default: int = 90) -> None:
    """Joint scores for everyone (`totals` by member id, else `default`)."""
    ctx = context(session, world, key)
    fields = core.score_fields(ctx.rules)
    with tenant_context(world["tenant"].id):
        rows = branch.branch_evaluations(session, ctx.round_branch, active_only=True)
        post = grid_post(
            [(e, {**scores_for(fields, (totals or {}).get(e.member_id, default)), "strengths": "积极"}) for e in rows]
        )
        branch.save_joint(session, ctx, post)
        session.flush()


def review_post(
    session: Session, world: Mapping[str, Any], totals: Mapping[int, int] | None = None, key: str = "one",
    default: int = 90, extra: Mapping[int, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    ctx = context(session, world, key)
    fields = core.score_fields(ctx.rules)
    with tenant_context(world["tenant"].id):
        rows = branch.branch_evaluations(session, ctx.round_branch, active_only=True)
        return grid_post(
            [
                (e, {**scores_for(fields, (totals or {}).get(e.member_id, default)),
                     **(extra or {}).get(e.member_id, {})})
                for e in rows
            ]
        )


def save_review(session: Session, world: Mapping[str, Any], totals: Mapping[int, int] | None = None,
                key: str = "one", default: int = 90, extra: Mapping[int, Mapping[str, str]] | None = None) -> None:
    post = review_post(session, world, totals, key, default, extra)
    ctx = context(session, world, key)
    with tenant_context(world["tenant"].id):
        branch.save_review(session, ctx, post)
        session.flush()


def walk_to(session: Session, world: Mapping[str, Any], step: BranchStep, key: str = "one",
            totals: Mapping[int, int] | None = None,
            extra: Mapping[int, Mapping[str, str]] | None = None) -> None:
    """Take branch `key` through the real services up to `step` (clock inside the deadlines)."""
    order = [BranchStep.SELF, BranchStep.JOINT, BranchStep.REVIEW, BranchStep.NOTICE]
    target = order.index(step)
    if target >= 1:
        enter_all_self(session, world, key)
        take(session, world, "start_joint", key)
    if target >= 2:
        record_meeting(session, world, key)
        save_joint(session, world, totals, key)
        take(session, world, "start_review", key)
    if target >= 3:
        save_review(session, world, totals, key, extra=extra)
        take(session, world, "submit_notice", key)


def stage_scores(session: Session, world: Mapping[str, Any], evaluation_id: int, stage: ScoreStage) -> dict[Any, Any]:
    with tenant_context(world["tenant"].id):
        return core.read_scores(session, [evaluation_id], [stage]).get((evaluation_id, stage), {})


def after(moment: dt.datetime, minutes: int = 1) -> dt.datetime:
    return moment + dt.timedelta(minutes=minutes)



def url(world: Mapping[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}/rounds/branch{path}"


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


