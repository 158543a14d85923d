"""Closing a member round writes every scored member's level into the level history (one INSERT …
SELECT; 不予评星 kept as no level, a member never scored left out), and a member's current level is
the latest row — the next round, or the committee's adjustment after an honour."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core
from fivestar.member_rounds.closing import close_round
from fivestar.member_rounds.models import BranchStep, Evaluation, PartKind, RoundBranch, ScoreStage
from fivestar.standing import queries, services
from fivestar.standing.models import LevelHistory, SourceKind
from fivestar.standing.subjects import Subject
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import current_rules, version_rules
from tests.support import count_queries


def _scores(rules: Any, per_aspect: Decimal) -> dict[core.FieldKey, Decimal]:
    out: dict[core.FieldKey, Decimal] = {}
    for part in rules.member.scheme.parts():
        left = per_aspect
        for criterion in part.criteria:
            take = min(left, criterion.points)
            out[(PartKind.ASPECT, part.key, criterion.key)] = take
            left -= take
    return out


def test_closing_writes_the_history_and_an_honour_raises_a_member(
    session: Session, opened: dict[str, Any], engine: Engine
) -> None:
    member_round, tenant = opened["round"], opened["tenant"]
    with tenant_context(tenant.id):
        rules = core.round_rules(session, member_round)
        rows = list(
            session.scalars(select(Evaluation).where(Evaluation.round_id == member_round.id).order_by(Evaluation.id))
        )
        ids = [e.id for e in rows]
        values = dict(zip(ids, [_scores(rules, Decimal(v)) for v in (19, 16, 14, 10, 19)], strict=False))
        core.write_scores(session, ids, ScoreStage.FINAL, values)
        session.execute(
            update(Evaluation)
            .where(Evaluation.id == ids[4])
            .values(disqualifier="unpaid_dues")
            .execution_options(synchronize_session=False)
        )
        for branch in session.scalars(select(RoundBranch).where(RoundBranch.round_id == member_round.id)):
            with seeding():
                branch.step = BranchStep.FINALISED
        session.flush()
        with count_queries(engine, only=("INSERT INTO LEVEL_HISTORY",)) as inserts:
            close_round(session, member_round)
        assert len(inserts) == 1
        history = {r.member_id: r for r in session.scalars(select(LevelHistory))}
        by_member = {e.id: e.member_id for e in rows}
        assert [history[by_member[i]].level for i in ids[:5]] == [5, 4, 3, 2, None]
        assert by_member[ids[5]] not in history  # never scored: no level received
        assert {r.source for r in history.values()} == {SourceKind.MEMBER_ROUND}
        assert {r.period for r in history.values()} == {member_round.period_key}

        honoured = by_member[ids[1]]
        checked = services.check_adjustment(
            session,
            Subject.member(honoured),
            version_rules(current_rules(session, tenant)),  # type: ignore[arg-type]
            services.AdjustmentInput(
                to_level=5,
                cause="honour",
                reason="获评优秀共产党员",
                meeting_name="工委会议",
                meeting_date=dt.date(2026, 5, 1),
            ),
            version=services.history_version(session, Subject.member(honoured)),
            today=dt.date(2026, 6, 1),
        )
        services.record_adjustment(session, checked)
        with count_queries(engine, only=("SELECT",)) as statements:
            current = queries.current_member_levels(session, [by_member[i] for i in ids])
        assert len(statements) == 1
        assert current[honoured].level == 5 and current[honoured].adjusted
        assert current[by_member[ids[4]]].level is None and not current[by_member[ids[4]]].adjusted
        assert [e.level for e in queries.history(session, Subject.member(honoured))] == [4, 5]
