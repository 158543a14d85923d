"""What the working committee (工委) sees and does with the year's branch rating: the rounds and their
progress, extending a deadline, and the table of every branch with the rules' quota guidance.

The table is one statement whatever the number of branches (plus, when the ballot part offers it,
one for every branch's ballot result); quota guidance is computed from its rows in Python by the
rule engine's `check_quota`. Services flush, never commit, and refuse with `ServiceError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, contains_eager

from fivestar.accounts.policy import Action, org_scope
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds import ballot_results, core
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.enums import Role
from fivestar.i18n import _
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version
from fivestar.orgs.models import Organisation
from fivestar.rules import LEVELS, QuotaReport, RuleSet, check_quota, level_label
from fivestar.tenants.services import timezone_of

STEPS = tuple(RatingStep)
# The round's two deadlines, in the order they fall.
DEADLINES: dict[str, str] = {"self_report": "self_report_due_at", "committee": "committee_due_at"}


def deadline_label(which: str) -> str:
    return {"self_report": _("自评上报"), "committee": _("工委定星")}[which]


def round_state_label(state: BranchRoundState) -> str:
    return _("进行中") if state is BranchRoundState.OPEN else _("已定星公布")


# --- the rounds list ------------------------------------------------------------------------------


RoundRow = rounds.Progress[BranchRound]  # a year's round and its branches in the person's scope at each step


def rounds_overview(session: Session, principal: Principal) -> list[RoundRow]:
    """Every year's round, newest first, with how many of the principal's branches are at each step
    (two queries whatever the number of rounds and branches)."""
    years = list(session.scalars(select(BranchRound).order_by(BranchRound.year.desc())))
    counts = rounds.step_counts_in_scope(
        session, BranchRating, [r.id for r in years], org_scope(principal, Action.ROUND_VIEW), STEPS
    )
    return [RoundRow(r, counts[r.id]) for r in years]


def my_ratings(session: Session, principal: Principal) -> list[tuple[BranchRating, BranchRound]]:
    """The open rounds' ratings of the branches this person leads (secretary, branch committee), for
    the shortcut to the branch's page; tenant-wide roles get no list of every branch here."""
    return rounds.led_rows(
        session, BranchRating, BranchRound, principal.scoped_paths(Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE),
        open_state=BranchRoundState.OPEN, newest=BranchRound.year,
    )


def ratings_by_step(session: Session, branch_round: BranchRound) -> dict[RatingStep, int]:
    """How many branches of the round are at each step (one grouped query)."""
    return rounds.count_by_step(session, BranchRating, branch_round)


# --- extending a deadline ---------------------------------------------------------------------------


def extend_deadline(
    session: Session,
    branch_round: BranchRound,
    which: str,
    new_day: dt.date,
    reason: str | None,
    *,
    version: int | str | None = None,
) -> BranchRound:
    """Move the self-report or the committee deadline to the end of `new_day` (tenant time).

    The same rules as the member round (fivestar.timekeeping.deadlines): a reason, a day not in the past and
    later than the current deadline, and the self-report deadline stays before the committee's.
    Refused once the round is finalised. `version` is the round version the form was opened with.
    """
    core.ensure_open(branch_round)
    if version is not None:
        expect_version(branch_round, version)
    rounds.extend_deadline(
        session, branch_round, which=which, columns=DEADLINES, label=deadline_label, new_day=new_day, reason=reason,
        timezone=timezone_of(session, branch_round.tenant_id), audit_name="branch_round.extend_deadline",
        audit_key="deadline", field_name="which",
    )
    return branch_round


# --- the committee's table of every branch ----------------------------------------------------------------


@dataclass(frozen=True)
class TableRow:
    rating: BranchRating  # with `branch` loaded
    parent_name: str | None
    ballot: str | None = None  # the weighted ballot result as the ballot part words it, if available

    @property
    def decided(self) -> bool:
        return self.rating.decided_level is not None

    @property
    def projected_level(self) -> int | None:
        """What the quota guidance counts: the decided level, else the branch's opinion, else the
        荐星 proposal (marked as not yet decided on the page)."""
        rating = self.rating
        if rating.decided_level is not None:
            return rating.decided_level
        return rating.opinion_level if rating.opinion_level is not None else rating.proposed_level


def branch_table(session: Session, principal: Principal, branch_round: BranchRound) -> list[TableRow]:
    """Every branch of the round in the principal's scope, grouped by the organisation above it
    (one query; one more when the ballot part can give every branch's result at once)."""
    parent = aliased(Organisation)
    rows = session.execute(
        select(BranchRating, parent.name)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .where(BranchRating.round_id == branch_round.id, org_scope(principal, Action.ROUND_VIEW))
        .options(contains_eager(BranchRating.branch))
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code, Organisation.name)
    ).all()
    ballots = ballot_summaries(session, [rating.id for rating, _parent in rows])
    return [TableRow(rating, parent_name, ballots.get(rating.id)) for rating, parent_name in rows]


def ballot_summaries(session: Session, rating_ids: Sequence[int]) -> dict[int, str]:
    """The weighted ballot result of many ratings, worded for the table (a fixed number of queries
    for the whole page: ballot_results.weighted_summaries)."""
    return ballot_results.weighted_summaries(session, rating_ids)


# --- quota guidance ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaLineView:
    level: int
    label: str
    decided: int  # branches decided at this level
    projected: int  # not yet decided, counted at their opinion or proposal
    allowed: int | None
    max_share: str | None  # "10" (percent), for the page
    over: bool  # decided + projected above the limit
    decided_over: bool  # the decisions alone are above the limit


@dataclass(frozen=True)
class QuotaGuidance:
    mode: str  # "advisory", "enforced" or "none"
    note: str
    total: int
    lines: tuple[QuotaLineView, ...]
    undecided_counted: int  # branches counted at their opinion/proposal
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_quota(self) -> bool:
        return self.mode != "none"

    @property
    def enforced(self) -> bool:
        return self.mode == "enforced"


def _percent(share: Any) -> str:
    text = format((share * 100).normalize(), "f")
    return text


def quota_guidance(rules: RuleSet, levels: Mapping[Any, int | None], decided: Mapping[Any, bool]) -> QuotaGuidance:
    """The rules' quota over `levels` (unit → level; None = no level yet), with how many of each
    level are decisions and how many are still the branch's opinion or proposal."""
    report: QuotaReport = check_quota(rules, levels)
    decided_counts = {level: 0 for level in LEVELS}
    projected_counts = {level: 0 for level in LEVELS}
    for key, level in levels.items():
        if level is None:
            continue
        (decided_counts if decided.get(key) else projected_counts)[level] += 1
    lines = []
    warnings = []
    for line in report.lines:
        view = QuotaLineView(
            level=line.level,
            label=level_label(line.level),
            decided=decided_counts[line.level],
            projected=projected_counts[line.level],
            allowed=line.allowed,
            max_share=_percent(line.max_share) if line.max_share is not None else None,
            over=line.over,
            decided_over=line.allowed is not None and decided_counts[line.level] > line.allowed,
        )
        lines.append(view)
        if view.over:
            warnings.append(quota_message(view, report.total, enforced=report.mode == "enforced"))
    quota = rules.branch.quota
    return QuotaGuidance(
        mode=report.mode,
        note=quota.note if quota is not None else "",
        total=report.total,
        lines=tuple(sorted(lines, key=lambda v: -v.level)),
        undecided_counted=sum(projected_counts.values()),
        warnings=tuple(warnings),
    )


def quota_message(line: QuotaLineView, total: int, *, enforced: bool) -> str:
    """One sentence about a level over its limit, naming the level, the limit and the count."""
    count = line.decided + line.projected
    if enforced:
        return _(
            "%(level)s %(count)d 个（已定星 %(decided)d 个），超过限额 %(allowed)d 个（%(total)d 个的 %(share)s%%）",
            level=line.label, count=count, decided=line.decided, allowed=line.allowed or 0,
            share=line.max_share or "0", total=total,
        )
    return _(
        "%(level)s %(count)d 个（已定星 %(decided)d 个），超出指导比例（%(total)d 个的 %(share)s%% 即 %(allowed)d 个）",
        level=line.label, count=count, decided=line.decided, allowed=line.allowed or 0,
        share=line.max_share or "0", total=total,
    )


def table_guidance(rules: RuleSet, rows: Sequence[TableRow]) -> QuotaGuidance:
    """Quota guidance for the committee's table: decided levels, and for the branches not yet
    decided their opinion (or 荐星 proposal)."""
    return quota_guidance(
        rules,
        {row.rating.id: row.projected_level for row in rows},
        {row.rating.id: row.decided for row in rows},
    )


__all__ = [
    "DEADLINES",
    "STEPS",
    "QuotaGuidance",
    "QuotaLineView",
    "RoundRow",
    "TableRow",
    "ballot_summaries",
    "branch_table",
    "deadline_label",
    "extend_deadline",
    "my_ratings",
    "quota_guidance",
    "quota_message",
    "ratings_by_step",
    "round_state_label",
    "rounds_overview",
    "table_guidance",
]
