"""The level history and the committee's adjustments (增星摘星): finalising a branch round writes each
branch's decided level once (set-based), the current level is the latest row (one statement however
many branches), an adjustment is the one way a level changes after finalising — with its refusals —
and a veto event only prompts the committee."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import decision
from fivestar.branch_rounds.models import BranchRating, RatingStep
from fivestar.enums import OrgKind
from fivestar.errors import ConflictError, ServiceError
from fivestar.standing import queries, services, worklist
from fivestar.standing.models import Adjustment, EventState, LevelHistory, SourceKind, StandingEvent
from fivestar.standing.subjects import Subject
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import current_rules, version_rules
from tests.branch.committee_support import principal, put_at
from tests.branch.publication_support import Decided, build_round
from tests.support import count_queries

TODAY = dt.date(2026, 3, 2)


def _finalise_levels(session: Session, world: dict[str, Any], levels: tuple[int, int] = (4, 3)) -> None:
    with tenant_context(world["tenant"].id):
        for rating, level in zip((world["rating_one"], world["rating_direct"]), levels, strict=True):
            put_at(session, world, rating, RatingStep.COMMITTEE, opinion=level)
            decision.decide(session, world["round"], rating, level, "", version=rating.version)
        decision.finalise_round(
            session,
            world["round"],
            meeting_date=dt.date(2026, 1, 6),
            participants="张主任、李委员",
            version=world["round"].version,
        )


def _rules(session: Session, tenant: Any) -> Any:
    version = current_rules(session, tenant)
    assert version is not None
    return version_rules(version)


def _adjust(session: Session, world: dict[str, Any], subject: Subject, to_level: object, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "to_level": to_level,
        "cause": "other",
        "reason": "年中巡察发现问题",
        "meeting_name": "工委第3次会议",
        "meeting_date": "2026-03-01",
    }
    version = overrides.pop("version", None)
    values.update(overrides)
    with tenant_context(world["tenant"].id):
        if version is None:
            version = services.history_version(session, subject)
        checked = services.check_adjustment(
            session,
            subject,
            _rules(session, world["tenant"]),
            services.AdjustmentInput(**values),
            version=version,
            today=TODAY,
        )
        return services.record_adjustment(session, checked)


def test_finalising_writes_each_decided_level_once_into_the_history(
    session: Session, opened: dict[str, Any], engine: Engine
) -> None:
    with count_queries(engine, only=("INSERT INTO LEVEL_HISTORY",)) as inserts:
        _finalise_levels(session, opened)
    assert len(inserts) == 1  # one INSERT … SELECT for the whole round
    one, direct = opened["one"], opened["direct"]
    with tenant_context(opened["tenant"].id):
        rows = {r.branch_id: r for r in session.scalars(select(LevelHistory))}
        assert {k: (r.level, r.source, r.period) for k, r in rows.items()} == {
            one.id: (4, SourceKind.BRANCH_ROUND, "2025"),
            direct.id: (3, SourceKind.BRANCH_ROUND, "2025"),
        }
        assert rows[one.id].branch_round_id == opened["round"].id
        assert rows[one.id].effective_at == opened["round"].finalised_at and rows[one.id].recorded_by == "system"
        current = queries.current_branch_levels(session)
        assert current[one.id].level == 4 and not current[one.id].adjusted and current[one.id].period == "2025"
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "standing.round_levels"))
        assert event.after == {"period": "2025", "rows": 2, "effective_at": rows[one.id].effective_at.isoformat()}


def test_the_previous_level_is_the_subjects_latest_before(session: Session, published: dict[str, Any]) -> None:
    tenant, one = published["tenant"], published["one"]
    with tenant_context(tenant.id):
        services.record_round_levels(
            session,
            services.RoundLevels(
                SourceKind.BRANCH_ROUND,
                tenant.id,
                published["published_round"].id,
                "2024",
                published["published_round"].finalised_at,
            ),
            select(BranchRating.branch_id.label("subject_id"), BranchRating.decided_level.label("level")).where(
                BranchRating.round_id == published["published_round"].id
            ),
        )
    _adjust(session, published, Subject.branch(one.id), 2, cause="veto", veto_key=_veto_key(session, published))
    with tenant_context(tenant.id):
        entries = queries.history(session, Subject.branch(one.id))
        assert [(e.previous_level, e.level, e.source) for e in entries] == [
            (None, 4, SourceKind.BRANCH_ROUND),
            (4, 2, SourceKind.ADJUSTMENT),
        ]
        assert entries[1].meeting_name == "工委第3次会议" and entries[1].cause is not None
        current = queries.current_branch_levels(session, [one.id])
        assert list(current) == [one.id] and current[one.id].level == 2 and current[one.id].adjusted
        # the decided level of the finalised round never changes
        assert session.get(BranchRating, published["published_one"].id).decided_level == 4  # type: ignore[union-attr]


def _veto_key(session: Session, world: dict[str, Any]) -> str:
    with tenant_context(world["tenant"].id):
        return str(_rules(session, world["tenant"]).branch.vetoes[0].key)


@pytest.mark.parametrize("branches", [2, 12])
def test_current_levels_are_one_statement_whatever_the_number(
    session: Session, district: dict[str, Any], create_org: Any, engine: Engine, branches: int
) -> None:
    tenant = district["tenant"]
    orgs = [district["one"], district["direct"]] + [
        create_org(tenant, OrgKind.BRANCH, name=f"测试{i}党支部", code=f"X{i:02d}") for i in range(branches - 2)
    ]
    branch_round, _ratings = build_round(session, tenant, year=2024, decisions=[Decided(o, 3) for o in orgs])
    with tenant_context(tenant.id):
        services.record_round_levels(
            session,
            services.RoundLevels(
                SourceKind.BRANCH_ROUND,
                tenant.id,
                branch_round.id,
                "2024",
                branch_round.finalised_at,  # type: ignore[arg-type]
            ),
            select(BranchRating.branch_id.label("subject_id"), BranchRating.decided_level.label("level")).where(
                BranchRating.round_id == branch_round.id
            ),
        )
        with count_queries(engine, only=("SELECT",)) as statements:
            current = queries.current_branch_levels(session)
        assert len(statements) == 1
        assert len(current) == branches and {c.level for c in current.values()} == {3}
        assert queries.current_branch_levels(session, []) == {}
        assert queries.current_member_levels(session) == {}


def test_adjustment_refusals(session: Session, published: dict[str, Any]) -> None:
    one = Subject.branch(published["one"].id)
    _adjust(session, published, one, 3)  # from nothing (no history for the built round) to 三星
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"to_level": 3}, "to_level", "相同"),
        ({"to_level": 6}, "to_level", "星级须在 0 到 5 之间"),
        ({"to_level": "x"}, "to_level", "请选择调整后的星级"),
        ({"reason": "  "}, "reason", "请填写调整理由"),
        ({"meeting_name": ""}, "meeting_name", "请填写批准调整的会议名称"),
        ({"meeting_date": ""}, "meeting_date", "请填写批准调整的会议日期"),
        ({"meeting_date": "2026-04-01"}, "meeting_date", "还没有到"),
        ({"cause": "veto", "veto_key": "nope"}, "veto_key", "否决事项"),
        ({"cause": "whatever"}, "cause", "调整原因"),
    ]
    for override, field, message in cases:
        values = {"to_level": 2, **override}
        with pytest.raises(ServiceError, match=message) as refused:
            _adjust(session, published, one, **values)
        assert refused.value.field == field, override
    with pytest.raises(ConflictError, match="已被他人修改"):
        _adjust(session, published, one, 2, version=0)  # opened before the first adjustment
    with tenant_context(published["tenant"].id):
        assert session.scalar(select(func.count()).select_from(Adjustment)) == 1
        assert session.scalar(select(func.count()).select_from(LevelHistory)) == 1
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "standing.adjust"))
        assert event.reason == "年中巡察发现问题" and event.after["to_level"] == 3  # type: ignore[index]


def test_a_veto_event_prompts_and_never_acts(session: Session, published: dict[str, Any]) -> None:
    tenant, one = published["tenant"], published["one"]
    subject = Subject.branch(one.id)
    key = _veto_key(session, published)
    committee = principal(published, _role("COMMITTEE_MEMBER"))
    secretary = principal(published, _role("BRANCH_SECRETARY"), one, account="secretary")
    now = dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC)
    with tenant_context(tenant.id):
        with pytest.raises(ServiceError, match="否决事项") as refused:
            services.record_event(
                session,
                subject,
                _rules(session, tenant),
                kind="veto",
                veto_key="nope",
                occurred_on="2026-03-01",
                note="x",
                today=TODAY,
            )
        assert refused.value.field == "veto_key"
        event = services.record_event(
            session,
            subject,
            _rules(session, tenant),
            kind="veto",
            veto_key=key,
            occurred_on="2026-03-01",
            note="发生违纪问题",
            today=TODAY,
        )
        assert session.scalar(select(func.count()).select_from(LevelHistory)) == 0  # nothing changed
        [item] = worklist.pending(session, committee, now)
        assert item.kind == "standing.prompt" and item.params == {"event_id": event.id}
        assert "预算科党支部" in item.detail
        assert worklist.pending(session, secretary, now) == []
    _adjust(session, published, subject, 1, cause="veto", veto_key=key, event_id=event.id)
    with tenant_context(tenant.id):
        assert event.state is EventState.ADJUSTED and worklist.pending(session, committee, now) == []
        second = services.record_event(
            session,
            subject,
            _rules(session, tenant),
            kind="veto",
            veto_key=key,
            occurred_on="2026-03-02",
            note="又一次",
            today=TODAY,
        )
        with pytest.raises(ServiceError, match="理由"):
            services.dismiss_event(session, second, " ", version=second.version)
        with pytest.raises(ConflictError, match="已被他人修改"):
            services.dismiss_event(session, second, "已整改", version=second.version + 1)
        services.dismiss_event(session, second, "已整改到位", version=second.version)
        assert second.state is EventState.DISMISSED and second.dismiss_reason == "已整改到位"
        with pytest.raises(ConflictError, match="已处理"):
            services.dismiss_event(session, second, "再次", version=second.version)
        assert session.scalar(select(func.count()).select_from(StandingEvent)) == 2


def _role(name: str) -> Any:
    from fivestar.enums import Role

    return Role[name]
