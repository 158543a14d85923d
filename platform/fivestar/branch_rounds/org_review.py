"""The middle level: a branch under a 机关党委 or 党总支 reports its opinion there first, and that
organisation forwards it to the working committee with its comments or returns it to the branch
with a reason (workflow transitions "forward" and "org_return", BRANCH_FORWARD). A branch directly
under the committee never comes here (workflow.next_after_opinion).

The queue lists the ratings at ORG_REVIEW under the organisations the person works for
(`org_scope(principal, BRANCH_FORWARD)`), one query whatever their number. Services flush, never
commit, and refuse with `ServiceError` (ConflictError when someone saved the rating first).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased, contains_eager

from fivestar import audit
from fivestar.accounts.policy import Action, org_scope
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds import core, workflow
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version
from fivestar.orgs.models import Organisation
from fivestar.timekeeping import clock

COMMENT_MAX = 2000


@dataclass(frozen=True)
class QueueRow:
    rating: BranchRating  # with `branch` loaded
    year: int
    parent_name: str | None


def queue(session: Session, principal: Principal, *, pending: bool = True) -> list[QueueRow]:
    """The ratings of open rounds waiting for the person's organisations (`pending`), or those they
    already forwarded or returned (one query either way)."""
    parent = aliased(Organisation)
    if pending:
        which = BranchRating.step == RatingStep.ORG_REVIEW
    else:
        which = (BranchRating.step != RatingStep.ORG_REVIEW) & or_(
            BranchRating.forwarded_at.is_not(None), BranchRating.returned_at.is_not(None)
        )
    rows = session.execute(
        select(BranchRating, BranchRound.year, parent.name)
        .join(BranchRound, BranchRating.round_id == BranchRound.id)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .where(
            BranchRound.state == BranchRoundState.OPEN,
            parent.kind.in_(core.MIDDLE_KINDS),
            which,
            org_scope(principal, Action.BRANCH_FORWARD),
        )
        .options(contains_eager(BranchRating.branch))
        .order_by(BranchRound.year.desc(), parent.name, Organisation.sort_order, Organisation.name)
    ).all()
    return [QueueRow(rating, year, parent_name) for rating, year, parent_name in rows]


def _clean(text: str | None, *, required: str, field: str) -> str:
    return rounds.clean_reason(
        text, required=required, longest=COMMENT_MAX, too_long=_("最长 %(n)d 个字", n=COMMENT_MAX), field=field
    )


def _refusal(name: str, session: Session, branch_round: BranchRound, rating: BranchRating) -> str | None:
    rules = core.round_rules(session, branch_round)
    refused = workflow.refusal(name, core.facts_for(session, branch_round, rating, rules))
    if refused:
        return refused
    if core.middle_organisation(session, rating) is None:  # pragma: no cover - such a branch never gets here
        return _("该支部直属工委，无需机关党委/党总支审核")
    return None


def _state(rating: BranchRating) -> dict[str, object]:
    return {
        "step": rating.step,
        "org_comment": rating.org_comment,
        "forwarded_at": rating.forwarded_at,
        "forwarded_by": rating.forwarded_by,
        "returned_at": rating.returned_at,
        "return_reason": rating.return_reason,
    }


def forward(
    session: Session, branch_round: BranchRound, rating: BranchRating, comment: str | None, *,
    version: int | str | None,
) -> BranchRating:
    """Forward the branch's rating to the committee with the organisation's comments (→ COMMITTEE)."""
    core.ensure_open(branch_round)
    expect_version(rating, version)
    refusal = _refusal("forward", session, branch_round, rating)
    if refusal:
        raise ServiceError(refusal)
    text = _clean(comment, required=_("请填写审核意见"), field="comment")

    def forwarded() -> None:
        rating.org_comment = text
        rating.forwarded_at = clock.now()
        rating.forwarded_by = audit.current_actor().name

    rounds.apply(
        session, workflow.RATING_WORKFLOW, "forward", rating, refusal=refusal, changes=forwarded,
        before=_state(rating), after=lambda: _state(rating),
    )
    return rating


def org_return(
    session: Session, branch_round: BranchRound, rating: BranchRating, reason: str | None, *,
    version: int | str | None,
) -> BranchRating:
    """Return the rating to the branch (→ RECOMMEND) with the reason it must address."""
    core.ensure_open(branch_round)
    expect_version(rating, version)
    refusal = _refusal("org_return", session, branch_round, rating)
    if refusal:
        raise ServiceError(refusal)
    text = _clean(reason, required=_("退回须填写原因"), field="reason")

    def returned() -> None:
        rating.return_reason = text
        rating.returned_at = clock.now()

    rounds.apply(
        session, workflow.RATING_WORKFLOW, "org_return", rating, refusal=refusal, reason=text, changes=returned,
        before=_state(rating), after=lambda: _state(rating),
    )
    return rating


__all__ = ["COMMENT_MAX", "QueueRow", "forward", "org_return", "queue"]
