"""Opening a year's branch rating: the round row, then one rating per rated branch (retirees'
branches excluded) with last year's decided level, in one `INSERT … SELECT`.

The deadlines come from the rules (organisations report self-ratings by the end of month x of the
following year, the committee answers by the end of month y); when a round is opened after those
dates the committee gives later ones, and the change is recorded like any extension.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from fivestar import audit
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.enums import OrgKind
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _
from fivestar.orgs.models import Organisation
from fivestar.rules.schedule import branch_deadlines
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

RATED_KINDS = (OrgKind.BRANCH,)  # 离退休支部 are never branch-rated


@dataclass(frozen=True)
class OpenedBranchRound:
    round: BranchRound
    branches: int


@dataclass(frozen=True)
class Deadlines:
    self_report_due: dt.date
    committee_due: dt.date


def default_deadlines(tenant: Tenant, session: Session, year: int) -> Deadlines:
    """The rules' deadlines for rating `year` (they fall in the following year)."""
    version = current_rules(session, tenant)
    if version is None:
        raise ServiceError(_("本单位还没有评定规则"))
    dates = branch_deadlines(version_rules(version), year + 1)
    return Deadlines(dates["self_report_due"], dates["committee_feedback_due"])


def open_branch_round(
    session: Session,
    tenant: Tenant,
    *,
    year: int | None = None,
    self_report_due: dt.date | None = None,
    committee_due: dt.date | None = None,
) -> OpenedBranchRound:
    """Open the rating of `year` (default: last year) for every rated branch of the tenant."""
    version = current_rules(session, tenant)
    if version is None:
        raise ServiceError(_("本单位还没有评定规则"))
    today = clock.today_in(tenant.timezone)
    year = year if year is not None else today.year - 1
    if not 2000 <= year < today.year:
        raise ServiceError(_("只能评定已经结束的年度（%(year)d 年尚未结束）", year=year), field="year")
    if session.scalar(select(BranchRound.id).where(BranchRound.year == year)) is not None:
        raise ConflictError(_("%(year)d 年度党支部星级评定已经开启", year=year), field="year")
    rules_dates = default_deadlines(tenant, session, year)
    self_due = self_report_due or rules_dates.self_report_due
    committee = committee_due or rules_dates.committee_due
    if self_due < today:
        raise ServiceError(
            _("自评上报截止日 %(day)s 已过，请另定一个今天以后的日期", day=self_due.isoformat()),
            field="self_report_due",
        )
    if committee < self_due:
        raise ServiceError(_("工委反馈截止日不能早于自评上报截止日"), field="committee_due")

    branch_round = BranchRound(
        tenant_id=tenant.id,
        year=year,
        rules_version_id=version.id,
        state=BranchRoundState.OPEN,
        opened_at=clock.now(),
        opened_by=audit.current_actor().name,
        self_report_due_at=clock.end_of_day(self_due, tenant.timezone),
        committee_due_at=clock.end_of_day(committee, tenant.timezone),
    )
    session.add(branch_round)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(_("%(year)d 年度党支部星级评定已经开启", year=year), field="year") from None
    branches = _insert_ratings(session, tenant.id, branch_round.id, year)
    audit.record(
        session,
        "branch_round.open",
        branch_round,
        after={
            "year": year,
            "rules_version": version.version,
            "branches": branches,
            "self_report_due_at": branch_round.self_report_due_at,
            "committee_due_at": branch_round.committee_due_at,
            "rules_deadlines": {
                "self_report_due": rules_dates.self_report_due,
                "committee_due": rules_dates.committee_due,
            },
        },
    )
    return OpenedBranchRound(branch_round, branches)


def _insert_ratings(session: Session, tenant_id: int, round_id: int, year: int) -> int:
    last_round = aliased(BranchRound)
    last_rating = aliased(BranchRating)
    previous = (
        select(last_rating.decided_level)
        .join(last_round, last_round.id == last_rating.round_id)
        .where(
            last_round.tenant_id == tenant_id,
            last_round.year == year - 1,
            last_rating.branch_id == Organisation.id,
        )
        .correlate(Organisation)
        .scalar_subquery()
    )
    source = select(
        Organisation.tenant_id,
        literal(round_id).label("round_id"),
        Organisation.id,
        literal(RatingStep.RECOMMEND.value).label("step"),
        previous.label("previous_level"),
        literal(False).label("is_new"),
        literal(1).label("version"),
    ).where(
        and_(Organisation.tenant_id == tenant_id, Organisation.kind.in_(RATED_KINDS), Organisation.active.is_(True))
    )
    session.execute(
        insert(BranchRating).from_select(
            ["tenant_id", "round_id", "branch_id", "step", "previous_level", "is_new", "version"], source
        )
    )
    return int(session.scalar(select(func.count()).where(BranchRating.round_id == round_id)) or 0)
