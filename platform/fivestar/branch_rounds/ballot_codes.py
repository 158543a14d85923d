"""议星, the codes: one random single-use code per attendee and group, printed on the slips.

Issuing the slips makes the codes; only each code's keyed hash (HMAC-SHA256 under a key derived from
the instance's secret key: `code_hash`) is stored, with its group and `used = false`. The codes
themselves exist in memory just long enough to print the slips, in shuffled order — the slips are
handed out at random, so the server never knows whose code is whose. Losing the PDF means re-issuing
(allowed while no ballot was cast). Codes never appear in a URL the server sees (the QR code puts
them in the fragment), in an audit event, in a log line, in an exception or in a flash message.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds import ballot_box, core
from fivestar.branch_rounds.ballot_meeting import (
    COUNT_FIELDS,
    GROUPS,
    MeetingContext,
    flush_or_conflict,
    issued_counts,
    meeting_or_refuse,
    refuse,
)
from fivestar.branch_rounds.models import Ballot, BallotCode, BallotMeeting, MeetingState, VoterGroup
from fivestar.errors import ConflictError
from fivestar.i18n import _
from fivestar.kernel.versioning import expect_version
from fivestar.timekeeping import clock

# Ten characters from an alphabet without 0/O, 1/I/L: ≈ 49 bits, read aloud or typed without doubt.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """For reading: ABCDE-FGHJK."""
    return f"{code[:5]}-{code[5:]}"


def normalise_code(text: object) -> str | None:
    """What a person typed, as a code (spaces and dashes dropped, any case), or None if it cannot be
    one. Nothing here echoes the input back: a malformed code is never shown or logged."""
    if not isinstance(text, str):
        return None
    cleaned = "".join(ch for ch in text.upper() if ch not in " -_\t\r\n")
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def code_hash(code: str, secret_key: str) -> str:
    """What is stored of a code: HMAC-SHA256 under a key derived from the instance's secret key, so
    that someone holding only a copy of the database cannot find unused codes by trying every
    possible code (ten characters of 31: about 2^49 tries, hours for a graphics card)."""
    return hmac.new(ballot_box.code_key(secret_key), code.encode("ascii"), hashlib.sha256).hexdigest()


def legacy_code_hash(code: str) -> str:
    """How codes issued before revision 0003 were stored (a plain SHA-256): still accepted, so that a
    meeting voting during the upgrade goes on; codes issued since never match it."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def code_hashes(code: str, secret_key: str) -> dict[str, str]:
    """The statement parameters a code is looked up with: its keyed hash, and its hash as codes issued
    before revision 0003 were stored."""
    return {"b_hash": code_hash(code, secret_key), "b_legacy": legacy_code_hash(code)}


# --- slips -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slip:
    group: VoterGroup
    code: str  # plain text: exists only in memory, for the PDF being made right now


@dataclass(frozen=True)
class IssuedSlips:
    meeting: BallotMeeting
    slips: list[Slip] = field(default_factory=list)  # shuffled


def _insert_codes(session: Session, meeting: BallotMeeting, secret_key: str) -> list[Slip]:
    """New codes for every attendee of every group (one INSERT), in shuffled order."""
    slips = [Slip(group, new_code()) for group in GROUPS for _n in range(int(getattr(meeting, COUNT_FIELDS[group])))]
    if not slips:
        raise ConflictError(_("会议没有参会人员，无法发放测评票"))
    session.execute(
        insert(BallotCode),
        [
            {
                "tenant_id": meeting.tenant_id,
                "meeting_id": meeting.id,
                "group": s.group,
                "code_hash": code_hash(s.code, secret_key),
                "used": False,
            }
            for s in slips
        ],
    )
    secrets.SystemRandom().shuffle(slips)
    return slips


def issue_slips(session: Session, ctx: MeetingContext, version: str | int | None, *, secret_key: str) -> IssuedSlips:
    """Make the codes and start voting. The plain codes are returned once, for the slips PDF.
    `secret_key` is the instance's (codes are stored as keyed hashes: `code_hash`)."""
    core.ensure_open(ctx.branch_round)
    meeting = meeting_or_refuse(ctx)
    refuse(ctx, "issue_slips")
    expect_version(meeting, version)
    meeting.state = MeetingState.VOTING
    meeting.slips_issued_at = clock.now()
    flush_or_conflict(session)  # the version check of the UPDATE: of two clicks at once only one goes on
    slips = _insert_codes(session, meeting, secret_key)
    audit.record(
        session,
        "ballot_meeting.issue_slips",
        meeting,
        before={"state": MeetingState.SETUP},
        after={"state": meeting.state, "codes": issued_counts(meeting)},
    )
    return IssuedSlips(meeting, slips)


def ballots_cast(session: Session, meeting: BallotMeeting) -> int:
    """Electronic ballots cast so far (in the box while voting; counted once closed)."""
    if meeting.state is MeetingState.CLOSED:
        return int(session.scalar(select(func.count()).select_from(Ballot).where(Ballot.meeting_id == meeting.id)) or 0)
    return ballot_box.count(session, meeting.tenant_id, meeting.id)


def reissue_slips(session: Session, ctx: MeetingContext, version: str | int | None, *, secret_key: str) -> IssuedSlips:
    """Revoke every code of the meeting and print new ones — only while no ballot has been cast
    (a lost or spoilt PDF: the codes cannot be printed again, since only their hashes are kept)."""
    core.ensure_open(ctx.branch_round)
    meeting = meeting_or_refuse(ctx)
    refuse(ctx, "reissue", ballots_cast=ballots_cast(session, meeting))
    expect_version(meeting, version)
    used = session.scalar(
        select(func.count()).select_from(BallotCode).where(BallotCode.meeting_id == meeting.id, BallotCode.used)
    )
    if used:  # a used code without a ballot cannot happen (one transaction), but never revoke one
        raise ConflictError(_("已有测评码被使用，不能再重新发放测评票"))
    revoked = session.execute(
        delete(BallotCode).where(BallotCode.tenant_id == meeting.tenant_id, BallotCode.meeting_id == meeting.id)
    )
    revoked_count = int(revoked.rowcount or 0)  # type: ignore[attr-defined]
    before_state = meeting.state
    meeting.state = MeetingState.VOTING
    meeting.slips_issued_at = clock.now()
    flush_or_conflict(session)
    slips = _insert_codes(session, meeting, secret_key)
    audit.record(
        session,
        "ballot_meeting.reissue",
        meeting,
        before={"state": before_state},
        after={"state": meeting.state, "codes": issued_counts(meeting), "revoked": revoked_count},
    )
    return IssuedSlips(meeting, slips)


__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "IssuedSlips",
    "Slip",
    "ballots_cast",
    "code_hash",
    "code_hashes",
    "format_code",
    "issue_slips",
    "legacy_code_hash",
    "new_code",
    "normalise_code",
    "reissue_slips",
]
