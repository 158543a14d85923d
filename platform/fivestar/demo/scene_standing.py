"""The demo's 增星摘星 (standing): the finished year's decided levels in the level history, one branch
摘星 after a veto event, the demo member login 增星 after an honour, and one veto event still open
as a prompt on the committee's list — so every part of standing can be walked at once.

The demo's finished year is seeded as data (`scenes.seed_branch_round(finalise=True)`), not through
`finalise_round`, so its history rows are written here by the function finalising uses. Everything
else goes through standing's services (checks, history rows, audit events)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, RoleGrant
from fivestar.branch_rounds import decision
from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.enums import Role
from fivestar.orgs.models import Organisation
from fivestar.standing import services
from fivestar.standing.subjects import Subject
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock


def seed_standing(session: Session, tenant: Tenant, branches: list[Organisation]) -> None:
    """See the module's docstring. `branches[0]` is the demo secretary's; the scene uses the next two."""
    version = current_rules(session, tenant)
    if version is None or len(branches) < 3:  # pragma: no cover - every demo district has both
        return
    rules = version_rules(version)
    today = clock.today_in(tenant.timezone)
    finished = session.scalar(
        select(BranchRound).where(BranchRound.state == BranchRoundState.FINALISED).order_by(BranchRound.year.desc())
    )
    if finished is not None and finished.finalised_at is not None:
        decision.record_final_levels(session, finished)
    veto = rules.branch.vetoes[0] if rules.branch.vetoes else None
    if veto is None:  # pragma: no cover - the demo's rule sets all have vetoes
        return
    yesterday = today - dt.timedelta(days=1)

    # 摘星: a veto event against a branch, resolved by lowering its level
    lowered = Subject.branch(branches[1].id)
    event = services.record_event(
        session,
        lowered,
        rules,
        kind="veto",
        veto_key=veto.key,
        occurred_on=yesterday,
        note="经查实，该支部发生否决事项所列情形。（演示数据）",
        today=today,
    )
    current = services.current_level_row(session, lowered)
    before = current.level if current is not None and current.level is not None else 3
    services.record_adjustment(
        session,
        services.check_adjustment(
            session,
            lowered,
            rules,
            services.AdjustmentInput(
                to_level=max(0, min(before, 3) - 1) if before > 0 else 1,
                cause="veto",
                veto_key=veto.key,
                reason=f"发生“{veto.label}”情形，经工委会议研究，予以摘星。（演示数据）",
                meeting_name="工委会议（演示数据）",
                meeting_date=today,
                event_id=event.id,
            ),
            version=services.history_version(session, lowered),
            today=today,
        ),
    )

    # 增星: the demo member login is honoured and raised
    member_id = session.scalar(
        select(Account.member_id)
        .join(RoleGrant, RoleGrant.account_id == Account.id)
        .where(RoleGrant.role == Role.MEMBER, Account.member_id.is_not(None))
    )
    if member_id is not None:
        honoured = Subject.member(member_id)
        honour = services.record_event(
            session,
            honoured,
            rules,
            kind="honour",
            veto_key=None,
            occurred_on=yesterday,
            note="获评区直机关优秀共产党员。（演示数据）",
            today=today,
        )
        services.record_adjustment(
            session,
            services.check_adjustment(
                session,
                honoured,
                rules,
                services.AdjustmentInput(
                    to_level=5,
                    cause="honour",
                    reason="获评优秀共产党员，经工委会议研究，予以增星。（演示数据）",
                    meeting_name="工委会议（演示数据）",
                    meeting_date=today,
                    event_id=honour.id,
                ),
                version=services.history_version(session, honoured),
                today=today,
            ),
        )

    # an open prompt: a veto event the committee has yet to consider
    services.record_event(
        session,
        Subject.branch(branches[2].id),
        rules,
        kind="veto",
        veto_key=veto.key,
        occurred_on=today,
        note="群众反映该支部存在否决事项所列情形，待工委核实研究。（演示数据）",
        today=today,
    )
    session.flush()


__all__ = ["seed_standing"]
