"""The branch's opinion after the 议星 ballot (评星定级意见), and submitting it upward.

Once voting is closed the branch committee forms its opinion — a proposed level and a statement —
with the ballot's result and the 荐星 proposal beside it, and submits it: to its 机关党委/党总支 when
it has one, else straight to the working committee (workflow.next_after_opinion). Submitting is
refused (workflow.refusal) while voting is open, while the results do not reach the rules' minimum
(electronic and paper ballots together), without an opinion, and after the reporting deadline.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import core, workflow
from fivestar.branch_rounds.ballot_meeting import FormError, MeetingContext
from fivestar.branch_rounds.ballot_results import has_results
from fivestar.branch_rounds.models import RatingStep
from fivestar.errors import ConflictError
from fivestar.i18n import _
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version, saving
from fivestar.timekeeping import clock

STATEMENT_MAX = 4000
OPINION_FIELDS = ("opinion_level", "opinion_statement", "opinion_at", "step")


def _snapshot(ctx: MeetingContext) -> dict[str, object]:
    return audit.snapshot(ctx.rating, list(OPINION_FIELDS))


def save_opinion(
    session: Session, ctx: MeetingContext, raw: Mapping[str, object], version: str | int | None
) -> None:
    """Record the proposed level (0–5) and the statement; allowed once voting is closed and until
    the opinion has gone up."""
    core.ensure_open(ctx.branch_round)
    refusal = ctx.refusal("opinion")
    if refusal is not None:
        raise ConflictError(refusal)
    rating = ctx.rating
    expect_version(rating, version)
    errors: dict[str, str] = {}
    level_text = str(raw.get("opinion_level") or "").strip()
    level = None
    if not level_text:
        errors["opinion_level"] = _("请选择建议星级")
    else:
        try:
            level = int(level_text)
        except ValueError:
            level = None
        if level is None or not 0 <= level <= 5:
            errors["opinion_level"] = _("建议星级须为无星至五星之一")
            level = None
    statement = str(raw.get("opinion_statement") or "").strip()
    if not statement:
        errors["opinion_statement"] = _("请填写支部意见说明")
    elif len(statement) > STATEMENT_MAX:
        errors["opinion_statement"] = _("意见说明最长 %(n)d 个字", n=STATEMENT_MAX)
    if errors:
        raise FormError(errors)
    before = _snapshot(ctx)
    with saving(session):
        rating.opinion_level = level
        rating.opinion_statement = statement
    audit.record(session, "branch_rating.opinion", rating, before=before, after=_snapshot(ctx))


def submit_opinion(session: Session, ctx: MeetingContext, version: str | int | None) -> RatingStep:
    """Send the opinion up (workflow transition `submit_opinion`); returns the new step."""
    core.ensure_open(ctx.branch_round)
    rating = ctx.rating
    facts = core.facts_for(session, ctx.branch_round, rating, ctx.rules, has_results=has_results(session, ctx))
    refusal = workflow.refusal("submit_opinion", facts)
    if refusal is not None:
        raise ConflictError(refusal)
    expect_version(rating, version)

    def submitted() -> None:
        rating.opinion_at = clock.now()

    return rounds.apply(
        session, workflow.RATING_WORKFLOW, "submit_opinion", rating, refusal=refusal,
        to=workflow.next_after_opinion(core.middle_organisation(session, rating) is not None),
        changes=submitted, before=_snapshot(ctx), after=lambda: _snapshot(ctx),
    )


__all__ = ["STATEMENT_MAX", "save_opinion", "submit_opinion"]
