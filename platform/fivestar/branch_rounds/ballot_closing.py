"""议星, the close of voting: after it, nothing links a code, a slip or a moment of casting to a ballot.

Closing the voting is one transaction: every code row of the meeting is rewritten in random order
(so no code row keeps the id of the transaction that used it, nor a position that follows the order
of casting), the box is opened and its ballots written to `ballots` in random order with fresh keys,
and the box is emptied for good (TRUNCATE on PostgreSQL, zeroed on SQLite: ballot_box.py). The
meeting's totals are audited here, once, instead of one event per ballot.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import ballot_box, core
from fivestar.branch_rounds.ballot_meeting import (
    GROUPS,
    MeetingContext,
    flush_or_conflict,
    issued_counts,
    meeting_or_refuse,
    refuse,
)
from fivestar.branch_rounds.models import Ballot, BallotCode, BallotMeeting, MeetingState, VoterGroup
from fivestar.kernel.versioning import expect_version
from fivestar.timekeeping import clock


def _per_group(session: Session, model: type[Ballot] | type[BallotCode], *where: Any) -> dict[str, int]:
    """Rows of `model` matching `where`, counted per voter group (every group present, 0 if none)."""
    rows = session.execute(select(model.group, func.count()).where(*where).group_by(model.group)).all()
    found = {VoterGroup(g).value: int(n) for g, n in rows}
    return {group.value: found.get(group.value, 0) for group in GROUPS}


def electronic_per_group(session: Session, meeting: BallotMeeting) -> dict[str, int]:
    """Electronic ballots of each group so far: while voting, the codes used (the box is sealed);
    once closed, the ballots counted."""
    if meeting.state is MeetingState.CLOSED:
        return _per_group(session, Ballot, Ballot.meeting_id == meeting.id)
    return _per_group(session, BallotCode, BallotCode.meeting_id == meeting.id, BallotCode.used.is_(True))


def _rewrite_codes(session: Session, meeting: BallotMeeting) -> int:
    """Every code of the meeting used up, each row written anew in random order; returns how many
    had not been used.

    On PostgreSQL each row version carries the id of the transaction that wrote it, and the order
    of new versions on disk follows the order of writing: after this, every code row of the meeting
    carries the closing transaction's id and sits at a random place. The UPDATE first waits for any
    casting transaction holding one of these rows, so no ballot slips in afterwards."""
    unused = session.execute(
        update(BallotCode)
        .where(
            BallotCode.tenant_id == meeting.tenant_id,
            BallotCode.meeting_id == meeting.id,
            BallotCode.used.is_(False),
        )
        .values(used=True)
        .execution_options(synchronize_session=False)
    )
    codes = [
        {
            "id": int(row[0]),
            "tenant_id": meeting.tenant_id,
            "meeting_id": meeting.id,
            "group": row[1],
            "code_hash": str(row[2]),
            "used": True,
        }
        for row in session.execute(
            select(BallotCode.id, BallotCode.group, BallotCode.code_hash).where(
                BallotCode.tenant_id == meeting.tenant_id, BallotCode.meeting_id == meeting.id
            )
        )
    ]
    session.execute(
        delete(BallotCode)
        .where(BallotCode.tenant_id == meeting.tenant_id, BallotCode.meeting_id == meeting.id)
        .execution_options(synchronize_session=False)
    )
    secrets.SystemRandom().shuffle(codes)
    if codes:
        session.execute(insert(BallotCode), codes)
    return int(unused.rowcount or 0)  # type: ignore[attr-defined]


def close_voting(
    session: Session, ctx: MeetingContext, version: str | int | None, *, secret_key: str
) -> dict[str, int]:
    """End voting: every code not used yet stops working, the ballot box is opened and emptied, and
    its ballots are counted in random order; the totals are audited. Returns the electronic ballots
    per group. `secret_key` is the instance's (the box was sealed with it)."""
    core.ensure_open(ctx.branch_round)
    meeting = meeting_or_refuse(ctx)
    refuse(ctx, "close_voting")
    expect_version(meeting, version)
    meeting.state = MeetingState.CLOSED
    meeting.voting_closed_at = clock.now()
    flush_or_conflict(session)
    unused = _rewrite_codes(session, meeting)
    boxed = ballot_box.open_box(session, secret_key, meeting.tenant_id, meeting.id)
    if boxed:
        session.execute(
            insert(Ballot),
            [{**row, "tenant_id": meeting.tenant_id, "meeting_id": meeting.id} for row in ballot_box.plain(boxed)],
        )
    ballot_box.empty_box(session, meeting.tenant_id, meeting.id)
    ballots = _per_group(session, Ballot, Ballot.meeting_id == meeting.id)
    audit.record(
        session,
        "ballot_meeting.close",
        meeting,
        before={"state": MeetingState.VOTING},
        after={
            "state": meeting.state,
            "codes": issued_counts(meeting),  # one code per attendee, fixed once issued
            "ballots": ballots,
            "codes_unused": unused,
        },
    )
    return ballots


__all__ = [
    "close_voting",
    "electronic_per_group",
]
