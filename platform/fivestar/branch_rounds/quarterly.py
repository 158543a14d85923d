"""一季一小评: each quarter a branch writes a short self-check against every indicator of the rules
(and an optional summary); the working committee comments on it. The reviews of a year appear in
that year's annual dossier (decision.build_dossier).

Only when the tenant's rules say so (`branch.quarterly_review`); the current rules apply, since a
quarterly review belongs to no round. A review is for a quarter that has started (tenant time),
one per branch and quarter (a unique key: two people submitting at once give one review and a
conflict), and the branch may edit it until the committee has commented. Lists run one query
whatever the number of branches. Services flush, never commit, and refuse with `ServiceError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from fivestar import audit
from fivestar.accounts.policy import Action, org_scope
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds.models import QuarterlyReview
from fivestar.branch_rounds.opening import RATED_KINDS
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version, saving
from fivestar.member_rounds.honour import period_label
from fivestar.orgs.models import Organisation
from fivestar.rules import RuleSet
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

CHECK_MAX = 1000  # characters of one indicator's self-check
SUMMARY_MAX = 2000
COMMENT_MAX = 2000
FIRST_YEAR = 2000


def tenant_rules(session: Session, tenant: Tenant) -> RuleSet | None:
    version = current_rules(session, tenant)
    return version_rules(version) if version is not None else None


def enabled(rules: RuleSet | None) -> bool:
    """Whether the tenant's rules use the quarterly small review at all."""
    return rules is not None and rules.branch.quarterly_review


def quarter_start(year: int, quarter: int) -> dt.date:
    return dt.date(year, 3 * (quarter - 1) + 1, 1)


def quarter_of(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def quarter_label(year: int, quarter: int) -> str:
    """2026年第一季度 — the member round's period names, so both speak alike."""
    return period_label(f"{year}Q{quarter}")


def started_quarters(today: dt.date, count: int = 8) -> list[tuple[int, int]]:
    """The `count` latest quarters that have started by `today`, the current one first."""
    year, quarter = quarter_of(today)
    found = []
    for _i in range(count):
        found.append((year, quarter))
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return found


def checked_quarter(year: object, quarter: object, today: dt.date) -> tuple[int, int]:
    """A (year, quarter) the branch may review: a real quarter that has started by `today`."""
    try:
        y, q = int(str(year).strip()), int(str(quarter).strip())
    except (TypeError, ValueError):
        raise ServiceError(_("请选择季度"), field="quarter") from None
    if not 1 <= q <= 4 or not FIRST_YEAR <= y <= today.year:
        raise ServiceError(_("请选择季度"), field="quarter")
    if quarter_start(y, q) > today:
        raise ServiceError(
            _("%(quarter)s还没有开始，只能填写已经开始的季度", quarter=quarter_label(y, q)), field="quarter"
        )
    return y, q


# --- loading ----------------------------------------------------------------------------------------------


def load_review(session: Session, review_id: int) -> QuarterlyReview:
    """A review with its branch loaded (as `authorize` needs)."""
    found: QuarterlyReview = rounds.load_with_branch(session, QuarterlyReview, review_id, _("该季度小评不存在"))
    return found


def find_review(session: Session, branch_id: int, year: int, quarter: int) -> QuarterlyReview | None:
    return session.scalar(
        select(QuarterlyReview).where(
            QuarterlyReview.branch_id == branch_id, QuarterlyReview.year == year, QuarterlyReview.quarter == quarter
        )
    )


def branch_reviews(session: Session, branch_id: int) -> list[QuarterlyReview]:
    """Every review of one branch, newest quarter first (one query)."""
    return list(
        session.scalars(
            select(QuarterlyReview)
            .where(QuarterlyReview.branch_id == branch_id)
            .order_by(QuarterlyReview.year.desc(), QuarterlyReview.quarter.desc())
        )
    )


def is_rated_branch(branch: Organisation) -> bool:
    """Branches that are rated (retirees' branches are not) take part in the quarterly review."""
    return branch.kind in RATED_KINDS and branch.active


@dataclass(frozen=True)
class OverviewRow:
    branch: Organisation
    parent_name: str | None
    review: QuarterlyReview | None


def quarter_overview(session: Session, principal: Principal, year: int, quarter: int) -> list[OverviewRow]:
    """Every rated branch in the person's scope with its review of one quarter, if any (one query)."""
    parent = aliased(Organisation)
    rows = session.execute(
        select(Organisation, parent.name, QuarterlyReview)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .outerjoin(
            QuarterlyReview,
            and_(
                QuarterlyReview.branch_id == Organisation.id,
                QuarterlyReview.year == year,
                QuarterlyReview.quarter == quarter,
            ),
        )
        .where(
            Organisation.kind.in_(RATED_KINDS),
            Organisation.active.is_(True),
            org_scope(principal, Action.ROUND_VIEW),
        )
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code, Organisation.name)
    ).all()
    return [OverviewRow(branch, parent_name, review) for branch, parent_name, review in rows]


# --- the branch's self-check ---------------------------------------------------------------------------


def parse_checks(rules: RuleSet, raw: Mapping[str, object]) -> tuple[dict[str, str], dict[str, str]]:
    """The self-check text per indicator (form fields `check.<key>`), and errors by field name."""
    checks: dict[str, str] = {}
    errors: dict[str, str] = {}
    for indicator in rules.branch.indicators:
        name = check_field(indicator.key)
        text = str(raw.get(name, "") or "").strip()
        if not text:
            errors[name] = _("请填写“%(indicator)s”的自查情况", indicator=indicator.label)
        elif len(text) > CHECK_MAX:
            errors[name] = _("每项最长 %(n)d 个字", n=CHECK_MAX)
        checks[indicator.key] = text
    return checks, errors


def check_field(indicator_key: str) -> str:
    return f"check.{indicator_key}"


class InvalidReviewError(ServiceError):
    """Some indicators' self-checks are missing or too long: `errors` by form field name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(_("请改正标出的错误后再提交。"))
        self.errors = dict(errors)


def save_review(
    session: Session,
    tenant: Tenant,
    rules: RuleSet | None,
    branch: Organisation,
    year: object,
    quarter: object,
    raw: Mapping[str, object],
    summary: str | None,
    *,
    version: int | str | None = None,
) -> QuarterlyReview:
    """Submit (or, until the committee comments, revise) the branch's review of a quarter."""
    if not enabled(rules):
        raise ServiceError(_("本单位的评定规则未采用“一季一小评”"))
    assert rules is not None
    if not is_rated_branch(branch):
        raise ServiceError(_("只有参加星级评定的党支部填写季度小评"))
    y, q = checked_quarter(year, quarter, clock.today_in(tenant.timezone))
    checks, errors = parse_checks(rules, raw)
    text = (summary or "").strip() or None
    if text is not None and len(text) > SUMMARY_MAX:
        errors["summary"] = _("小结最长 %(n)d 个字", n=SUMMARY_MAX)
    existing = find_review(session, branch.id, y, q)
    if existing is not None:
        if existing.committee_comment:
            raise ServiceError(_("工委已点评%(quarter)s的小评，不能再修改", quarter=quarter_label(y, q)))
        expect_version(existing, version)
    if errors:
        raise InvalidReviewError(errors)
    now = clock.now()
    who = audit.current_actor().name
    if existing is None:
        review = QuarterlyReview(
            tenant_id=branch.tenant_id, branch_id=branch.id, year=y, quarter=q, checks=checks, summary=text,
            submitted_at=now, submitted_by=who,
        )
        try:
            with session.begin_nested():
                session.add(review)
        except IntegrityError:
            raise ConflictError(
                _("%(quarter)s的小评刚由他人提交，请刷新后查看。您填写的内容仍保留。", quarter=quarter_label(y, q))
            ) from None
        audit.record(session, "quarterly_review.submit", review, after=_state(review))
        return review
    before = _state(existing)
    with saving(session):
        existing.checks = checks
        existing.summary = text
        existing.submitted_at = now
        existing.submitted_by = who
    audit.record(session, "quarterly_review.revise", existing, before=before, after=_state(existing))
    return existing


def comment(
    session: Session, rules: RuleSet | None, review: QuarterlyReview, text: str | None, *,
    version: int | str | None,
) -> QuarterlyReview:
    """The committee's comment on a branch's review; from then on the branch cannot change it."""
    if not enabled(rules):
        raise ServiceError(_("本单位的评定规则未采用“一季一小评”"))
    expect_version(review, version)
    cleaned = (text or "").strip()
    if not cleaned:
        raise ServiceError(_("请填写点评意见"), field="comment")
    if len(cleaned) > COMMENT_MAX:
        raise ServiceError(_("点评最长 %(n)d 个字", n=COMMENT_MAX), field="comment")
    before = _state(review)
    with saving(session):
        review.committee_comment = cleaned
        review.commented_at = clock.now()
        review.commented_by = audit.current_actor().name
    audit.record(session, "quarterly_review.comment", review, before=before, after=_state(review))
    return review


def _state(review: QuarterlyReview) -> dict[str, object]:
    return {
        "branch_id": review.branch_id,
        "year": review.year,
        "quarter": review.quarter,
        "checks": dict(review.checks or {}),
        "summary": review.summary,
        "submitted_at": review.submitted_at,
        "committee_comment": review.committee_comment,
        "commented_at": review.commented_at,
    }


__all__ = [
    "CHECK_MAX",
    "COMMENT_MAX",
    "SUMMARY_MAX",
    "InvalidReviewError",
    "OverviewRow",
    "branch_reviews",
    "check_field",
    "checked_quarter",
    "comment",
    "enabled",
    "find_review",
    "is_rated_branch",
    "load_review",
    "parse_checks",
    "quarter_label",
    "quarter_of",
    "quarter_overview",
    "quarter_start",
    "save_review",
    "started_quarters",
    "tenant_rules",
]
