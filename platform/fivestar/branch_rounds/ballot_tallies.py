"""议星, paper ballots (纸质票): counted by hand at the meeting and entered as tallies per group, question
and answer — the alternative for a meeting that cannot, or would rather not, vote online. Paper and
electronic ballots of a group together never exceed its attendees.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import core
from fivestar.branch_rounds.ballot_closing import electronic_per_group
from fivestar.branch_rounds.ballot_meeting import (
    COUNT_FIELDS,
    GROUPS,
    FormError,
    MeetingContext,
    form_count,
    group_label,
    meeting_or_refuse,
    refuse,
)
from fivestar.branch_rounds.models import BallotMeeting, PaperTally, VoterGroup
from fivestar.errors import ConflictError
from fivestar.i18n import _
from fivestar.kernel.versioning import expect_version
from fivestar.rules import BallotItem

TallyKey = tuple[VoterGroup, str, int]  # group, item key ("" = the level), value


def tally_field(group: VoterGroup | str, item_key: str, value: int) -> str:
    return f"tally.{VoterGroup(group).value}.{item_key or '_'}.{value}"


def paper_tallies(session: Session, meeting_id: int) -> dict[TallyKey, int]:
    rows = session.execute(
        select(PaperTally.group, PaperTally.indicator_key, PaperTally.value, PaperTally.count).where(
            PaperTally.meeting_id == meeting_id
        )
    )
    return {(VoterGroup(g), key, int(value)): int(count) for g, key, value, count in rows}


def paper_ballots(items: tuple[BallotItem, ...], tallies: Mapping[TallyKey, int], group: VoterGroup) -> int:
    """A group's paper ballots: the level tally's total, or the largest indicator's (a voter may
    leave an indicator blank on paper)."""
    sums = [sum(n for (g, key, _v), n in tallies.items() if g is group and key == item.key) for item in items]
    return max(sums, default=0)


def save_tallies(
    session: Session, ctx: MeetingContext, raw: Mapping[str, object], version: str | int | None
) -> dict[TallyKey, int]:
    """Replace the meeting's paper tallies with the counts in the form (empty = 0).

    Paper and electronic ballots of a group together cannot exceed its attendees. Guarded by the
    meeting's version: two secretaries entering tallies at once — the second gets a conflict."""
    core.ensure_open(ctx.branch_round)
    meeting = meeting_or_refuse(ctx)
    refuse(ctx, "tally")
    expect_version(meeting, version)
    errors: dict[str, str] = {}
    counts: dict[TallyKey, int] = {}
    for group in GROUPS:
        for item in ctx.items:
            for value in ctx.ballot.values():
                name = tally_field(group, item.key, value)
                number = form_count(errors, raw, name, _("票数"))
                if number:
                    counts[(group, item.key, value)] = number
    electronic = electronic_per_group(session, meeting)
    for group in GROUPS:
        attendees = int(getattr(meeting, COUNT_FIELDS[group]))
        paper = paper_ballots(ctx.items, counts, group)
        if paper + electronic[group.value] > attendees:
            errors[f"tally.{group.value}"] = _(
                "%(group)s纸质票 %(paper)d 张加电子票 %(electronic)d 张，超过参会人数 %(n)d",
                group=group_label(group),
                paper=paper,
                electronic=electronic[group.value],
                n=attendees,
            )
    if errors:
        raise FormError(errors)
    before = paper_tallies(session, meeting.id)
    # The meeting's version moves with the tallies: a concurrent save of the same version fails.
    bumped = session.execute(
        update(BallotMeeting)
        .where(
            BallotMeeting.tenant_id == meeting.tenant_id,
            BallotMeeting.id == meeting.id,
            BallotMeeting.version == meeting.version,
        )
        .values(version=meeting.version + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(_("此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。"))
    session.expire(meeting, ["version"])
    session.execute(
        delete(PaperTally).where(PaperTally.tenant_id == meeting.tenant_id, PaperTally.meeting_id == meeting.id)
    )
    if counts:
        session.execute(
            insert(PaperTally),
            [
                {
                    "tenant_id": meeting.tenant_id,
                    "meeting_id": meeting.id,
                    "group": g,
                    "indicator_key": key,
                    "value": value,
                    "count": n,
                }
                for (g, key, value), n in counts.items()
            ],
        )
    audit.record(session, "ballot_meeting.tally", meeting, before=_tally_doc(before), after=_tally_doc(counts))
    return counts


def _tally_doc(counts: Mapping[TallyKey, int]) -> dict[str, int]:
    return {f"{g.value}/{key or 'level'}/{value}": n for (g, key, value), n in sorted(counts.items())}


__all__ = [
    "TallyKey",
    "paper_ballots",
    "paper_tallies",
    "save_tallies",
    "tally_field",
]
