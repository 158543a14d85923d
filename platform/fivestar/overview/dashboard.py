"""The committee dashboard (工委看板): the district at a glance, every panel a small table of counts.

Each panel is a `Chart` — a title, the series (a level, a medal, a step) and one row of counts per
organisation, period, year, indicator or round — so that the page draws it (overview.charts, SVG on
the server), shows it as a table beside the drawing, and downloads it as Excel from the same data.

Panels: the current branch levels by organisation (机关党委/党总支 and the branches directly under the
committee), member levels by rating period, branch levels by finalised year, medals per indicator of
the newest finalised year, the progress of open member and branch rounds, and what is overdue.
A fixed number of statements whatever the size of the district (tests count them at two sizes).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.branch_rounds.publication import published_round, published_years
from fivestar.branch_rounds.workflow import step_label as rating_step_label
from fivestar.enums import OrgKind
from fivestar.i18n import _
from fivestar.improvement.models import PlanState
from fivestar.improvement.queries import plan_years, plans_of_year
from fivestar.member_rounds.honour import period_label
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Rectification,
    RoundBranch,
    RoundState,
)
from fivestar.member_rounds.workflow import BRANCH_WORKFLOW
from fivestar.orgs.models import Organisation
from fivestar.overview.levels import current_branch_levels, level_of, newest_year
from fivestar.rules import Medal, RuleSet, level_label, medal_label
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules

PERIODS_SHOWN = 8  # member rating periods on the chart, the newest
YEARS_SHOWN = 6  # finalised branch years on the chart, the newest
LEVELS = (5, 4, 3, 2, 1, 0)
NOT_RATED = -1  # a member 不予评星, a branch without a current level
# Colours from dark to light, so levels stay apart in greyscale too; the words are always beside them.
LEVEL_COLOURS = {
    5: "#7a0d1f",
    4: "#b3202f",
    3: "#e0604a",
    2: "#f2a27a",
    1: "#f9d5bd",
    0: "#fdf1e8",
    NOT_RATED: "#bdbdbd",
}
MEDAL_COLOURS = {"gold": "#8a5a00", "silver": "#9aa0aa", "bronze": "#d79a5c", "none": "#f1f1f1"}
STEP_COLOURS = ("#fdf1e8", "#f9d5bd", "#f2a27a", "#e0604a", "#7a0d1f")
OVERDUE_COLOUR = "#b3202f"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    # Drawn with diagonal hatching over the colour: what is missing or late (no level, 不予评星, no
    # medal, overdue) stays apart from its light neighbours in greyscale too.
    hatched: bool = False


@dataclass(frozen=True)
class ChartRow:
    label: str
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Chart:
    """One panel: rows of counts by series. `whole` draws every row as a share of its own total
    (progress), else bars are drawn to the largest row's total (comparable sizes)."""

    key: str
    title: str
    row_heading: str
    series: tuple[Series, ...]
    rows: tuple[ChartRow, ...]
    note: str = ""
    whole: bool = False

    @property
    def empty(self) -> bool:
        return not any(row.total for row in self.rows)


@dataclass(frozen=True)
class OverdueItem:
    """A kind of overdue thing with how many there are, and the page where they are dealt with."""

    key: str
    label: str
    count: int
    endpoint: str | None  # None: no page lists them yet
    params: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Dashboard:
    charts: tuple[Chart, ...]
    overdue: tuple[OverdueItem, ...]
    today: dt.date

    def chart(self, key: str) -> Chart | None:
        return next((c for c in self.charts if c.key == key), None)


CHART_KEYS = (
    "org-levels",
    "member-periods",
    "branch-years",
    "medals",
    "member-rounds",
    "branch-rounds",
    "plan-items",
    "plan-states",
    "overdue",
)


def _level_series(rules: RuleSet | None, kind: str, unrated: str) -> tuple[Series, ...]:
    below = rules.member.below_label if rules is not None and kind == "member" else None
    series = [
        Series(str(level), level_label(level, "member" if kind == "member" else "branch", below), LEVEL_COLOURS[level])
        for level in LEVELS
    ]
    return (*series, Series("none", unrated, LEVEL_COLOURS[NOT_RATED], hatched=True))


def _level_values(counts: Counter[int]) -> tuple[int, ...]:
    return (*(counts.get(level, 0) for level in LEVELS), counts.get(NOT_RATED, 0))


def build_dashboard(session: Session, tenant: Tenant, today: dt.date, now: dt.datetime) -> Dashboard:
    """Every panel of the district (the committee's view: nothing here is scoped narrower)."""
    version = current_rules(session, tenant)
    rules = version_rules(version) if version is not None else None
    charts = [
        org_levels(session, rules),
        member_periods(session, rules),
        branch_years(session),
        medals(session),
        member_round_progress(session),
        branch_round_progress(session),
        *plan_progress(session, today),
    ]
    overdue = overdue_items(session, today, now)
    late_items = next((c for c in charts if c.key == "plan-items"), None)
    if late_items is not None and late_items.rows:
        overdue.append(
            OverdueItem(
                "plan-items", _("整改提升计划：逾期未完成的事项"), sum(row.values[1] for row in late_items.rows), None
            )
        )
    charts.append(
        Chart(
            "overdue",
            _("逾期事项"),
            _("事项"),
            (Series("count", _("件数"), OVERDUE_COLOUR, hatched=True),),
            tuple(ChartRow(item.label, (item.count,)) for item in overdue),
        )
    )
    return Dashboard(tuple(charts), tuple(overdue), today)


# --- levels ----------------------------------------------------------------------------------------


def org_levels(session: Session, rules: RuleSet | None) -> Chart:
    """Current branch levels under each 机关党委/党总支 directly below the committee (its whole subtree),
    and of the branches directly under the committee (two statements)."""
    orgs = list(
        session.scalars(
            select(Organisation)
            .where(Organisation.active.is_(True), Organisation.kind != OrgKind.RETIREE_BRANCH)
            .order_by(Organisation.sort_order, Organisation.code)
        )
    )
    current = current_branch_levels(session, [o.id for o in orgs if o.kind is OrgKind.BRANCH])
    levels = {bid: level_of(c) for bid, c in current.items()}
    units = {o.id: o for o in orgs if o.depth == 1 and o.kind is not OrgKind.BRANCH}
    counts: dict[int, Counter[int]] = defaultdict(Counter)
    direct: Counter[int] = Counter()
    for org in orgs:
        if org.kind is not OrgKind.BRANCH:
            continue
        level = levels.get(org.id, NOT_RATED)
        ancestors = org.ancestor_ids
        unit = ancestors[1] if len(ancestors) > 2 and ancestors[1] in units else None
        (counts[unit] if unit is not None else direct)[level] += 1
    rows = [ChartRow(units[uid].name, _level_values(counts[uid])) for uid in units if counts[uid]]
    if direct:
        rows.append(ChartRow(_("工委直属党支部"), _level_values(direct)))
    year = newest_year(current)
    note = _("各支部当前星级（%(year)s年度定星及其后调整）", year=year) if year else _("尚无已公布的支部星级")
    return Chart(
        "org-levels",
        _("各单位党支部当前星级"),
        _("单位"),
        _level_series(rules, "branch", _("未定级")),
        tuple(rows),
        note,
    )


def member_periods(session: Session, rules: RuleSet | None) -> Chart:
    """Member levels of the newest rating periods, oldest first (one statement): members whose
    branch's results are settled (on notice or reported) or whose round has closed."""
    newest = (
        select(MemberRound.id)
        .order_by(MemberRound.period_start.desc(), MemberRound.id.desc())
        .limit(PERIODS_SHOWN)
        .subquery()
    )
    level = case(
        (or_(Evaluation.rated.is_(False), Evaluation.disqualifier.is_not(None)), NOT_RATED), else_=Evaluation.level
    )
    rows: Sequence[Any] = session.execute(
        select(MemberRound.id, MemberRound.period_key, MemberRound.period_start, level.label("lv"), func.count())
        .join(Evaluation, Evaluation.round_id == MemberRound.id)
        .join(RoundBranch, RoundBranch.id == Evaluation.round_branch_id)
        .where(
            MemberRound.id.in_(select(newest.c.id)),
            Evaluation.status == EvaluationStatus.ACTIVE,
            or_(
                RoundBranch.step.in_((BranchStep.NOTICE, BranchStep.FINALISED)), MemberRound.state == RoundState.CLOSED
            ),
            or_(Evaluation.level.is_not(None), Evaluation.rated.is_(False)),
        )
        .group_by(MemberRound.id, MemberRound.period_key, MemberRound.period_start, level)
    ).all()
    periods: dict[int, tuple[dt.date, str]] = {}
    counts: dict[int, Counter[int]] = defaultdict(Counter)
    for round_id, key, start, lv, n in rows:
        periods[int(round_id)] = (start, str(key))
        counts[int(round_id)][int(lv)] += int(n)
    ordered = sorted(periods.items(), key=lambda item: (item[1][0], item[0]))
    chart_rows = tuple(ChartRow(period_label(key), _level_values(counts[rid])) for rid, (_start, key) in ordered)
    return Chart(
        "member-periods",
        _("党员星级（按评定期次）"),
        _("期次"),
        _level_series(rules, "member", _("不予评星")),
        chart_rows,
        _("只计结果已公示或已上报的支部"),
    )


def branch_years(session: Session) -> Chart:
    """Decided branch levels of the newest finalised years, oldest first (one statement)."""
    rows = session.execute(
        select(BranchRound.year, BranchRating.decided_level, func.count())
        .join(BranchRating, BranchRating.round_id == BranchRound.id)
        .where(BranchRound.state == BranchRoundState.FINALISED, BranchRating.decided_level.is_not(None))
        .group_by(BranchRound.year, BranchRating.decided_level)
    ).all()
    counts: dict[int, Counter[int]] = defaultdict(Counter)
    for year, lv, n in rows:
        counts[int(year)][int(lv or 0)] += int(n)
    years = sorted(counts)[-YEARS_SHOWN:]
    series = tuple(Series(str(lv), level_label(lv), LEVEL_COLOURS[lv]) for lv in LEVELS)
    return Chart(
        "branch-years",
        _("党支部星级（按年度）"),
        _("年度"),
        series,
        tuple(ChartRow(_("%(year)s年度", year=y), tuple(counts[y].get(lv, 0) for lv in LEVELS)) for y in years),
        _("工委定星并公布的结果"),
    )


def medals(session: Session) -> Chart:
    """Medals per indicator of the newest finalised year, as the public page computes them from the
    rule engine (branch_rounds.publication; a fixed number of statements for the round)."""
    years = published_years(session)
    medal_keys = ("gold", "silver", "bronze", "none")
    series = tuple(
        Series(key, medal_label(Medal(key)) if key != "none" else _("无星章"), MEDAL_COLOURS[key], key == "none")
        for key in medal_keys
    )
    published = published_round(session, years[0]) if years else None
    if published is None:
        return Chart("medals", _("各指标星章"), _("指标"), series, (), _("尚无已公布的年度"))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for branch in published.branches:
        for shown in branch.medals:
            counts[shown.indicator_key][shown.medal.value if shown.medal is not None else "none"] += 1
    rows = tuple(
        ChartRow(label, tuple(counts[key].get(m, 0) for m in medal_keys)) for key, label in published.indicators
    )
    return Chart(
        "medals",
        _("各指标星章"),
        _("指标"),
        series,
        rows,
        _("%(year)s年度，按评定规则由各支部得分算出", year=published.year),
    )


# --- open rounds -----------------------------------------------------------------------------------


def member_round_progress(session: Session) -> Chart:
    """Branches of each open member round by step (one statement)."""
    steps = tuple(BranchStep)
    rows = session.execute(
        select(MemberRound.id, MemberRound.period_key, RoundBranch.step, func.count())
        .join(RoundBranch, RoundBranch.round_id == MemberRound.id)
        .where(MemberRound.state == RoundState.OPEN)
        .group_by(MemberRound.id, MemberRound.period_key, RoundBranch.step)
        .order_by(MemberRound.id)
    ).all()
    keys: dict[int, str] = {}
    counts: dict[int, Counter[BranchStep]] = defaultdict(Counter)
    for rid, key, step, n in rows:
        keys[rid] = key
        counts[rid][BranchStep(step)] += int(n)
    series = tuple(Series(s.value, BRANCH_WORKFLOW.label(s), STEP_COLOURS[i]) for i, s in enumerate(steps))
    return Chart(
        "member-rounds",
        _("进行中的党员评定"),
        _("期次"),
        series,
        tuple(ChartRow(period_label(keys[rid]), tuple(counts[rid].get(s, 0) for s in steps)) for rid in keys),
        _("各支部所处步骤（支部数）"),
        whole=True,
    )


def branch_round_progress(session: Session) -> Chart:
    """Branches of each open branch rating by step (one statement)."""
    steps = tuple(RatingStep)
    rows = session.execute(
        select(BranchRound.year, BranchRating.step, func.count())
        .join(BranchRating, BranchRating.round_id == BranchRound.id)
        .where(BranchRound.state == BranchRoundState.OPEN)
        .group_by(BranchRound.year, BranchRating.step)
    ).all()
    counts: dict[int, Counter[RatingStep]] = defaultdict(Counter)
    for year, step, n in rows:
        counts[int(year)][RatingStep(step)] += int(n)
    series = tuple(Series(s.value, rating_step_label(s), STEP_COLOURS[i]) for i, s in enumerate(steps))
    return Chart(
        "branch-rounds",
        _("进行中的支部评定"),
        _("年度"),
        series,
        tuple(ChartRow(_("%(year)s年度", year=y), tuple(counts[y].get(s, 0) for s in steps)) for y in sorted(counts)),
        _("各支部所处步骤（支部数）"),
        whole=True,
    )


# --- rectification plans (整改提升计划, fivestar.improvement) -------------------------------------------


def plan_progress(session: Session, today: dt.date) -> tuple[Chart, Chart]:
    """The plans of the newest work year by programme (示范/提升/转化): their items done, overdue and
    still running, and the plans by state (two statements: the years, then `plans_of_year`)."""
    years = plan_years(session)
    plans = plans_of_year(session, years[0], today) if years else []
    programmes: dict[str, str] = {}
    items: dict[str, Counter[str]] = defaultdict(Counter)
    states: dict[str, Counter[PlanState]] = defaultdict(Counter)
    for plan in plans:
        programmes.setdefault(plan.programme_key, plan.programme_label)
        items[plan.programme_key]["done"] += plan.items_done
        items[plan.programme_key]["overdue"] += plan.items_overdue
        items[plan.programme_key]["open"] += plan.items_total - plan.items_done - plan.items_overdue
        states[plan.programme_key][plan.state] += 1
    note = _("%(year)s年度的整改提升计划（%(n)d 份）", year=years[0], n=len(plans)) if years else _("尚无整改提升计划")
    item_series = (
        Series("done", _("已完成"), "#7a0d1f"),
        Series("overdue", _("逾期未完成"), "#e0604a", hatched=True),
        Series("open", _("推进中、未到期"), "#f9d5bd"),
    )
    item_chart = Chart(
        "plan-items",
        _("整改提升计划事项进度"),
        _("类别"),
        item_series,
        tuple(ChartRow(label, tuple(items[key][s.key] for s in item_series)) for key, label in programmes.items()),
        note,
        whole=True,
    )
    state_order = (PlanState.DRAFT, PlanState.PUBLISHED, PlanState.REVIEWED)
    state_labels = {PlanState.DRAFT: _("草拟中"), PlanState.PUBLISHED: _("已公开"), PlanState.REVIEWED: _("已验收")}
    state_chart = Chart(
        "plan-states",
        _("整改提升计划状态"),
        _("类别"),
        tuple(Series(st.value, state_labels[st], STEP_COLOURS[i * 2]) for i, st in enumerate(state_order)),
        tuple(ChartRow(label, tuple(states[key][st] for st in state_order)) for key, label in programmes.items()),
        note,
        whole=True,
    )
    return item_chart, state_chart


# --- overdue ---------------------------------------------------------------------------------------


def overdue_items(session: Session, today: dt.date, now: dt.datetime) -> list[OverdueItem]:
    """What is past its deadline: member-round branches behind their step's deadline, branch ratings
    behind theirs, and members' rectification deadlines passed without a result (three statements)."""
    member_late = case(
        (and_(RoundBranch.step == BranchStep.SELF, MemberRound.self_due_at < now), 1),
        (and_(RoundBranch.step == BranchStep.JOINT, MemberRound.joint_due_at < now), 1),
        (and_(RoundBranch.step == BranchStep.REVIEW, MemberRound.review_due_at < now), 1),
        (and_(RoundBranch.step == BranchStep.NOTICE, MemberRound.report_due_at < now), 1),
        else_=0,
    )
    member_rows: list[tuple[int, int | None]] = session.execute(  # type: ignore[assignment]
        select(MemberRound.id, func.sum(member_late))
        .join(RoundBranch, RoundBranch.round_id == MemberRound.id)
        .where(MemberRound.state == RoundState.OPEN)
        .group_by(MemberRound.id)
        .order_by(MemberRound.id)
    ).all()
    branch_late = case(
        (
            and_(
                BranchRating.step.in_((RatingStep.RECOMMEND, RatingStep.DELIBERATE, RatingStep.ORG_REVIEW)),
                BranchRound.self_report_due_at < now,
            ),
            1,
        ),
        (and_(BranchRating.step == RatingStep.COMMITTEE, BranchRound.committee_due_at < now), 1),
        else_=0,
    )
    branch_rows: list[tuple[int, int | None]] = session.execute(  # type: ignore[assignment]
        select(BranchRound.id, func.sum(branch_late))
        .join(BranchRating, BranchRating.round_id == BranchRound.id)
        .where(BranchRound.state == BranchRoundState.OPEN)
        .group_by(BranchRound.id)
        .order_by(BranchRound.id)
    ).all()
    rectifications = session.scalar(
        select(func.count())
        .select_from(Rectification)
        .join(Evaluation, Evaluation.id == Rectification.evaluation_id)
        .where(
            Evaluation.status == EvaluationStatus.ACTIVE,
            Rectification.completed_on.is_(None),
            Rectification.due_on < today,
        )
    )
    items = [
        OverdueItem(
            "member-round",
            _("党员评定：超过步骤截止时间的支部"),
            int(late or 0),
            "tenant.member_round_committee.detail",
            (("round_id", int(rid)),),
        )
        for rid, late in member_rows
    ]
    items += [
        OverdueItem(
            "branch-round",
            _("支部评定：超过截止时间的支部"),
            int(late or 0),
            "tenant.branch_rating_committee.detail",
            (("branch_round_id", int(rid)),),
        )
        for rid, late in branch_rows
    ]
    items.append(
        OverdueItem(
            "rectification", _("党员限期整改：已过期限未见结果"), int(rectifications or 0), "tenant.overview.followups"
        )
    )
    return items


__all__ = [
    "CHART_KEYS",
    "Chart",
    "ChartRow",
    "Dashboard",
    "OverdueItem",
    "Series",
    "branch_round_progress",
    "branch_years",
    "build_dashboard",
    "medals",
    "member_periods",
    "member_round_progress",
    "org_levels",
    "overdue_items",
    "plan_progress",
]
