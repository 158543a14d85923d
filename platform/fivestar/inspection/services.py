"""Spot checks (随机抽查): drawing branches and members of a round with a recorded seed.

The draw is written down so that anyone can repeat it by hand or in any language:

    key(id) = SHA-256 hex digest of the UTF-8 text "<seed>:<branch|member>:<id>"
    order the population (organisation ids of the round's branches, member ids of the round's
    active members) by (key, id) ascending, and take the first n.

Same seed and same population give the same draw, whatever the database returned first and
whatever version of Python runs it (no `random` state is involved). Members are drawn from the
whole round, independently of the branches. A branch round has no member results, so it draws
branches only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds.models import BranchRating, BranchRound
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.inspection.models import SpotCheck
from fivestar.member_rounds.models import Evaluation, EvaluationStatus, MemberRound, RoundBranch

MAX_DRAW = 500
SEED_PATTERN = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def draw_key(seed: str, label: str, ident: int) -> str:
    return hashlib.sha256(f"{seed}:{label}:{ident}".encode()).hexdigest()


def draw(seed: str, label: str, population: Iterable[int], n: int) -> list[int]:
    """The first `n` of the population ordered by (SHA-256 of "<seed>:<label>:<id>", id)."""
    ordered = sorted(set(population), key=lambda ident: (draw_key(seed, label, ident), ident))
    return ordered[: max(0, n)]


def new_seed() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Population:
    branch_ids: list[int]
    member_ids: list[int]


def population(
    session: Session, *, member_round_id: int | None = None, branch_round_id: int | None = None
) -> Population:
    """What a round's draw chooses from: its branches' organisation ids and its active members."""
    if member_round_id is not None:
        branches = session.scalars(select(RoundBranch.branch_id).where(RoundBranch.round_id == member_round_id))
        members = session.scalars(
            select(Evaluation.member_id).where(
                Evaluation.round_id == member_round_id, Evaluation.status == EvaluationStatus.ACTIVE
            )
        )
        return Population(sorted(set(branches)), sorted(set(members)))
    branches = session.scalars(select(BranchRating.branch_id).where(BranchRating.round_id == branch_round_id))
    return Population(sorted(set(branches)), [])


def _count(value: object, *, field: str, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        text = str(value if value is not None else "").strip()
        if not text.isdigit():
            raise ServiceError(_("%(label)s应为 0 或正整数", label=label), field=field)
        value = int(text)
    if value < 0 or value > MAX_DRAW:
        raise ServiceError(_("%(label)s应在 0 到 %(max)d 之间", label=label, max=MAX_DRAW), field=field)
    return value


def draw_spot_check(
    session: Session,
    *,
    round_kind: str,
    round_id: int,
    branches: object,
    members: object,
    seed: str | None = None,
    account_id: int | None = None,
) -> SpotCheck:
    """Draw and record a spot check (audited). Refuses with a field-named message, writing nothing."""
    member_round_id = branch_round_id = None
    if round_kind == "member":
        found = session.scalar(select(MemberRound.id).where(MemberRound.id == round_id))
        member_round_id = found
    elif round_kind == "branch":
        found = session.scalar(select(BranchRound.id).where(BranchRound.id == round_id))
        branch_round_id = found
    else:
        found = None
    if found is None:
        raise NotFoundError(_("请选择评定轮次"), field="round")
    branch_count = _count(branches, field="branches", label=_("抽查支部数"))
    member_count = _count(members, field="members", label=_("抽查党员数"))
    if branch_round_id is not None and member_count:
        raise ServiceError(_("支部评定没有党员个人结果：抽查党员请选择党员评定轮次"), field="members")
    if branch_count + member_count == 0:
        raise ServiceError(_("请至少抽查一个支部或一名党员"), field="branches")
    seed = (seed or "").strip() or new_seed()
    if not SEED_PATTERN.match(seed):
        raise ServiceError(_("随机种子只能由字母、数字、“-”和“_”组成，最多 64 个字符"), field="seed")
    pool = population(session, member_round_id=member_round_id, branch_round_id=branch_round_id)
    if branch_count > len(pool.branch_ids):
        raise ServiceError(
            _("该轮次只有 %(n)d 个支部，不能抽查 %(k)d 个", n=len(pool.branch_ids), k=branch_count), field="branches"
        )
    if member_count > len(pool.member_ids):
        raise ServiceError(
            _("该轮次只有 %(n)d 名党员，不能抽查 %(k)d 名", n=len(pool.member_ids), k=member_count), field="members"
        )
    actor = audit.current_actor()
    check = SpotCheck(
        member_round_id=member_round_id,
        branch_round_id=branch_round_id,
        drawn_by=actor.name,
        account_id=account_id,
        seed=seed,
        branch_count=branch_count,
        member_count=member_count,
        branch_population=len(pool.branch_ids),
        member_population=len(pool.member_ids),
        branch_ids=draw(seed, "branch", pool.branch_ids, branch_count),
        member_ids=draw(seed, "member", pool.member_ids, member_count),
    )
    session.add(check)
    session.flush()
    audit.record(session, "spot_check.draw", check, after=audit.snapshot(check))
    return check


def repeat(session: Session, check: SpotCheck) -> tuple[list[int], list[int], bool]:
    """The draw made again now from the stored seed and sizes: (branches, members, same as stored)."""
    pool = population(session, member_round_id=check.member_round_id, branch_round_id=check.branch_round_id)
    branches = draw(check.seed, "branch", pool.branch_ids, check.branch_count)
    members = draw(check.seed, "member", pool.member_ids, check.member_count)
    same = branches == list(check.branch_ids) and members == list(check.member_ids)
    return branches, members, same


def load_spot_check(session: Session, check_id: int) -> SpotCheck | None:
    """One spot check of the current district (the tenancy hook scopes the query)."""
    return session.scalar(select(SpotCheck).where(SpotCheck.id == check_id))


def recent_spot_checks(session: Session, limit: int = 50) -> list[SpotCheck]:
    query = select(SpotCheck).order_by(SpotCheck.drawn_at.desc(), SpotCheck.id.desc()).limit(limit)
    return list(session.scalars(query))
