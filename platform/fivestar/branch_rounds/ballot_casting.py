"""议星, casting: the voter's page checks a code and casts its ballot.

Casting is one transaction: `UPDATE ballot_codes SET used = true WHERE code_hash = :h AND used =
false` must change exactly one row, then the ballot is sealed and dropped into the ballot box
(ballot_box.py) with a random key — no code, no voter, no time. No audit event is written per
ballot (its time would line up with the code's use); the meeting's totals are audited when voting
closes (ballot_closing.py). Nothing here echoes a code back, logs it or puts it in an exception.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from fivestar.branch_rounds import ballot_box, workflow
from fivestar.branch_rounds.ballot_codes import code_hashes, normalise_code
from fivestar.branch_rounds.ballot_meeting import FormError, form_text
from fivestar.branch_rounds.models import (
    BallotCode,
    BallotMeeting,
    BranchRating,
    BranchRound,
    BranchRoundState,
    MeetingState,
    RatingStep,
    VoterGroup,
)
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _
from fivestar.orgs.models import Organisation
from fivestar.rules import OVERALL, BallotItem, BallotRules, ballot_items, ballot_rules
from fivestar.tenants.models import RuleSetVersion
from fivestar.tenants.services import pinned_rules


@dataclass(frozen=True)
class Voting:
    """What the voter's page needs to show the ballot of a valid, unused code."""

    meeting_id: int
    meeting_date: dt.date
    group: VoterGroup
    branch_name: str
    ballot: BallotRules
    items: tuple[BallotItem, ...]


def _bad_code() -> ServiceError:
    return ServiceError(_("测评码无效，请核对测评票上的测评码后重新输入。"), field="code")


# (rule-set version id, content hash) → the ballot part of those rules; versions never change, and
# the hash guards against an id reused after a rolled-back transaction (as tenants.pinned_rules).
_BALLOTS_BY_VERSION: dict[tuple[int, str], tuple[BallotRules, tuple[BallotItem, ...]]] = {}


def _ballot_of(session: Session, version_id: int, content_hash: str) -> tuple[BallotRules, tuple[BallotItem, ...]]:
    key = (version_id, content_hash)
    found = _BALLOTS_BY_VERSION.get(key)
    if found is None:
        rules = pinned_rules(session, version_id)
        found = (ballot_rules(rules), ballot_items(rules))
        if len(_BALLOTS_BY_VERSION) > 256:
            _BALLOTS_BY_VERSION.clear()
        _BALLOTS_BY_VERSION[key] = found
    return found


# The voter's path runs on every ballot, all at once when the chair says "please vote now": it uses
# Core statements on the tables (no ORM unit of work, no loader-criteria hook), one UPDATE, one
# SELECT and one INSERT — and, being Core, each filters `tenant_id` itself (tenancy.py's rule for
# statements the hook does not see).
_CODES = cast(Table, BallotCode.__table__)
_MEETINGS = cast(Table, BallotMeeting.__table__)
_RATINGS = cast(Table, BranchRating.__table__)
_ROUNDS = cast(Table, BranchRound.__table__)
_ORGS = cast(Table, Organisation.__table__)
_VERSIONS = cast(Table, RuleSetVersion.__table__)


def _statements() -> dict[str, Any]:
    """Built once: constructing a statement costs more than running it on this path."""
    c, m, r, o, br, v = _CODES, _MEETINGS, _RATINGS, _ORGS, _ROUNDS, _VERSIONS
    tenant: Any = bindparam("b_tenant")
    code_of_tenant = (c.c.tenant_id == tenant) & c.c.code_hash.in_([bindparam("b_hash"), bindparam("b_legacy")])
    return {
        "claim": update(c)
        .where(code_of_tenant, c.c.used.is_(False))
        .values(used=True)
        .returning(c.c.meeting_id, c.c.group),
        "unused": select(c.c.meeting_id, c.c.group).where(code_of_tenant, c.c.used.is_(False)),
        "why": select(c.c.used, m.c.state)
        .select_from(c.join(m, (m.c.id == c.c.meeting_id) & (m.c.tenant_id == c.c.tenant_id)))
        .where(code_of_tenant),
        "voting": select(
            m.c.state, m.c.meeting_date, r.c.step, o.c.name, br.c.state, br.c.rules_version_id, v.c.content_hash
        )
        .select_from(
            m.join(r, (r.c.id == m.c.rating_id) & (r.c.tenant_id == m.c.tenant_id))
            .join(o, (o.c.id == r.c.branch_id) & (o.c.tenant_id == r.c.tenant_id))
            .join(br, (br.c.id == r.c.round_id) & (br.c.tenant_id == r.c.tenant_id))
            .join(v, (v.c.id == br.c.rules_version_id) & (v.c.tenant_id == br.c.tenant_id))
        )
        .where(m.c.id == bindparam("b_meeting"), m.c.tenant_id == tenant),
    }


_SQL = _statements()


def _voting_for(session: Session, tenant_id: int, meeting_id: int, group: VoterGroup) -> Voting:
    """The meeting, its branch and its round in one query."""
    row: Any = session.execute(_SQL["voting"], {"b_meeting": meeting_id, "b_tenant": tenant_id}).one_or_none()
    if row is None:  # pragma: no cover - foreign keys guarantee it
        raise _bad_code()
    meeting_state, meeting_date, step, branch_name, round_state, version_id, content_hash = tuple(row)
    refusal = workflow.meeting_refusal(
        "cast", MeetingState(str(meeting_state)), BranchRoundState(str(round_state)), RatingStep(str(step))
    )
    if refusal is not None:
        raise ConflictError(refusal, field="code")
    rules, items = _ballot_of(session, int(version_id), str(content_hash))
    assert isinstance(meeting_date, dt.date)
    return Voting(meeting_id, meeting_date, group, str(branch_name), rules, items)


def _why_not(session: Session, tenant_id: int, hashed: Mapping[str, str]) -> ServiceError:
    """Why a code cannot be used: unknown (400), meeting over (409) or already used (409)."""
    row = session.execute(_SQL["why"], {"b_tenant": tenant_id, **hashed}).first()
    if row is None:
        return _bad_code()
    if MeetingState(str(row[1])) is MeetingState.CLOSED:
        return ConflictError(_("本次测评已结束，测评码不能再使用。"), field="code")
    return ConflictError(_("该测评码已经使用过：每个测评码只能投票一次。"), field="code")


def check_code(session: Session, tenant_id: int, text: object, *, secret_key: str) -> Voting:
    """Is this a valid, unused code of a meeting that is voting? (Nothing is changed.)"""
    code = normalise_code(text)
    if code is None:
        raise _bad_code()
    hashed = code_hashes(code, secret_key)
    row = session.execute(_SQL["unused"], {"b_tenant": tenant_id, **hashed}).first()
    if row is None:
        raise _why_not(session, tenant_id, hashed)
    return _voting_for(session, tenant_id, int(row[0]), VoterGroup(str(row[1])))


def parse_choice(
    ballot: BallotRules, items: tuple[BallotItem, ...], raw: Mapping[str, object]
) -> tuple[int | None, dict[str, int] | None]:
    """The voter's answers: (level, None) for the level form, (None, {indicator: value}) for the
    indicators form. Every question must be answered with one of the rules' answers."""
    allowed = set(ballot.values())
    errors: dict[str, str] = {}
    values: dict[str, int] = {}
    for item in items:
        name = choice_field(item)
        text = form_text(raw, name)
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value not in allowed:
            errors[name] = _("请选择一项") if not text else _("选项无效，请重新选择")
            continue
        values[item.key] = value
    if errors:
        raise FormError(errors)
    if ballot.form == "level":
        return values[OVERALL], None
    return None, values


def choice_field(item: BallotItem) -> str:
    """The form field of one question: `level`, or `item.<indicator key>`."""
    return "level" if item.key == OVERALL else f"item.{item.key}"


def cast_ballot(session: Session, tenant_id: int, text: object, raw: Mapping[str, object], *, secret_key: str) -> None:
    """Use the code once and drop the sealed ballot into the box, in the caller's (single) transaction.

    The conditional UPDATE comes first, so that on SQLite the transaction starts as a writer (a
    transaction that read first cannot become one once another voter has committed), and so that
    of any number of simultaneous submissions of one code exactly one changes the row (PostgreSQL
    re-checks `used = false` after waiting for the row lock). If anything after it refuses, the
    caller rolls back and the code is unused again. `secret_key` is the instance's (it seals the
    ballot until the close).
    """
    code = normalise_code(text)
    if code is None:
        raise _bad_code()
    hashed = code_hashes(code, secret_key)
    claimed = session.execute(_SQL["claim"], {"b_tenant": tenant_id, **hashed}).all()
    if len(claimed) != 1:
        raise _why_not(session, tenant_id, hashed)
    meeting_id, group = int(claimed[0][0]), VoterGroup(str(claimed[0][1]))
    voting = _voting_for(session, tenant_id, meeting_id, group)
    level, ratings = parse_choice(voting.ballot, voting.items, raw)
    # Sealed, with a random key and nothing else: no code, no voter, no time (and no audit event).
    ballot_box.put(session, secret_key, tenant_id, meeting_id, ballot_box.BoxedBallot(group, level, ratings))


__all__ = [
    "Voting",
    "cast_ballot",
    "check_code",
    "choice_field",
    "parse_choice",
]
