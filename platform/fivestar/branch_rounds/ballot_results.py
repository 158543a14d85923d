"""议星, the results: only once voting is closed (live figures would tell who just voted what), per group
only from the rules' minimum number of ballots, and a hidden group is left out of the weighted result
too (fivestar.rules.ballot). Electronic ballots and paper tallies are counted together, in a fixed
number of queries whatever the number of ballots or ratings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.ballot_meeting import GROUPS, MeetingContext, context_for
from fivestar.branch_rounds.ballot_tallies import TallyKey, paper_ballots
from fivestar.branch_rounds.models import (
    Ballot,
    BallotMeeting,
    BranchRating,
    BranchRound,
    MeetingState,
    PaperTally,
    VoterGroup,
)
from fivestar.i18n import _
from fivestar.rules import (
    OVERALL,
    BallotItem,
    BallotResult,
    BallotRules,
    GroupCounts,
    ballot_items,
    ballot_rules,
    tally_ballots,
)
from fivestar.tenants.services import pinned_rules


def group_counts(session: Session, ctx: MeetingContext, meeting: BallotMeeting) -> dict[str, GroupCounts]:
    """Electronic ballots and paper tallies of each group, as counts the rule engine tallies
    (two or three small queries, whatever the number of ballots)."""
    return _counts_of(session, {meeting.id: (ctx.ballot, ctx.items)})[meeting.id]


def _counts_of(
    session: Session, shapes: Mapping[int, tuple[BallotRules, tuple[BallotItem, ...]]]
) -> dict[int, dict[str, GroupCounts]]:
    """`group_counts` of many meetings at once (meeting id → its ballot's form and items): one query
    per ballot form in use plus one for the paper tallies, whatever the number of meetings."""
    per_item: dict[int, dict[VoterGroup, dict[str, dict[int, int]]]] = {m: {g: {} for g in GROUPS} for m in shapes}
    electronic: dict[int, dict[VoterGroup, int]] = {m: dict.fromkeys(GROUPS, 0) for m in shapes}

    def add(meeting_id: int, group: VoterGroup, key: str, value: int, n: int) -> None:
        bucket = per_item[meeting_id][group].setdefault(key, {})
        bucket[value] = bucket.get(value, 0) + n

    by_level = [m for m, (rules, _items) in shapes.items() if rules.form == "level"]
    by_items = [m for m, (rules, _items) in shapes.items() if rules.form != "level"]
    if by_level:
        for meeting_id, g, level, n in session.execute(
            select(Ballot.meeting_id, Ballot.group, Ballot.level, func.count())
            .where(Ballot.meeting_id.in_(by_level))
            .group_by(Ballot.meeting_id, Ballot.group, Ballot.level)
        ):
            group = VoterGroup(g)
            electronic[meeting_id][group] += int(n)
            if level is not None:
                add(meeting_id, group, OVERALL, int(level), int(n))
    if by_items:
        for row in session.execute(
            select(Ballot.meeting_id, Ballot.group, Ballot.ratings).where(Ballot.meeting_id.in_(by_items))
        ):
            of_meeting, voter_group = int(row[0]), VoterGroup(row[1])
            answers: dict[str, object] = row[2] or {}
            keys = {item.key for item in shapes[of_meeting][1]}
            electronic[of_meeting][voter_group] += 1
            for key, value in answers.items():
                if key in keys and isinstance(value, int):
                    add(of_meeting, voter_group, key, value, 1)
    tallies: dict[int, dict[TallyKey, int]] = {m: {} for m in shapes}
    if shapes:
        for meeting_id, g, key, value, count in session.execute(
            select(
                PaperTally.meeting_id, PaperTally.group, PaperTally.indicator_key, PaperTally.value, PaperTally.count
            ).where(PaperTally.meeting_id.in_(list(shapes)))
        ):
            tallies[meeting_id][(VoterGroup(g), key, int(value))] = int(count)
    found: dict[int, dict[str, GroupCounts]] = {}
    for meeting_id, (rules, items) in shapes.items():
        allowed = set(rules.values())
        item_keys = {item.key for item in items}
        for (group, key, value), n in tallies[meeting_id].items():
            if key in item_keys and value in allowed:
                add(meeting_id, group, key, value, n)
        found[meeting_id] = {
            group.value: GroupCounts(
                ballots=electronic[meeting_id][group] + paper_ballots(items, tallies[meeting_id], group),
                counts=per_item[meeting_id][group],
            )
            for group in GROUPS
        }
    return found


def results_for_ratings(session: Session, rating_ids: Sequence[int]) -> dict[int, BallotResult]:
    """The ballot results of many branch ratings at once (rating id → result; ratings whose voting
    has not closed are left out), for list pages and reports. A fixed number of queries — the
    meetings, the rule-set versions they were counted under, the ballots, the paper tallies —
    whatever the number of ratings."""
    if not rating_ids:
        return {}
    rows = session.execute(
        select(BallotMeeting.id, BallotMeeting.rating_id, BranchRound.rules_version_id)
        .join(
            BranchRating,
            (BranchRating.id == BallotMeeting.rating_id) & (BranchRating.tenant_id == BallotMeeting.tenant_id),
        )
        .join(
            BranchRound, (BranchRound.id == BranchRating.round_id) & (BranchRound.tenant_id == BranchRating.tenant_id)
        )
        .where(BallotMeeting.rating_id.in_(list(rating_ids)), BallotMeeting.state == MeetingState.CLOSED)
    ).all()
    if not rows:
        return {}
    rules_of = {version_id: pinned_rules(session, version_id) for version_id in {int(r[2]) for r in rows}}
    shapes = {
        int(meeting_id): (ballot_rules(rules_of[int(version_id)]), ballot_items(rules_of[int(version_id)]))
        for meeting_id, _rating, version_id in rows
    }
    counts = _counts_of(session, shapes)
    return {
        int(rating_id): tally_ballots(rules_of[int(version_id)], counts[int(meeting_id)])
        for meeting_id, rating_id, version_id in rows
    }


def weighted_summaries(session: Session, rating_ids: Sequence[int]) -> dict[int, str]:
    """The ballot result of many branch ratings in a few words each, for a list page (rating id →
    text; ratings whose voting has not closed are left out): `results_for_ratings`, worded."""
    return {rating_id: summary_text(result) for rating_id, result in results_for_ratings(session, rating_ids).items()}


def summary_text(result: BallotResult) -> str:
    """A ballot result in a few words: the weighted result and the ballots it rests on."""
    if result.weighted is None:
        return _("票数不足（共 %(n)d 票）", n=result.ballots)
    if result.form == "level":
        return _("加权 %(value)s 星（共 %(n)d 票）", value=result.weighted, n=result.ballots)
    return _("加权 %(value)s 分（共 %(n)d 票）", value=result.weighted, n=result.ballots)


def results(session: Session, ctx: MeetingContext) -> BallotResult | None:
    """The ballot's results — only once voting is closed (None before, or without a meeting)."""
    meeting = ctx.meeting
    if meeting is None or meeting.state is not MeetingState.CLOSED:
        return None
    return tally_ballots(ctx.rules, group_counts(session, ctx, meeting))


def results_for_rating(session: Session, rating: BranchRating) -> BallotResult | None:
    """The ballot results of one branch's rating, for other parts (the committee's dossier)."""
    return results(session, context_for(session, rating))


def has_results(session: Session, ctx: MeetingContext) -> bool:
    """Voting closed and a weighted result exists (at least one counted group reaches the minimum)."""
    found = results(session, ctx)
    return found is not None and found.available


__all__ = [
    "group_counts",
    "has_results",
    "results",
    "results_for_rating",
    "results_for_ratings",
    "summary_text",
    "weighted_summaries",
]
