"""What is already under way when the demo opens, so every page has something to show: a member round
in progress, last year's branch rating with one branch still to go, an export to the superior
committee, a round that opens by itself a minute after seeding, and what the inspectors (督查组)
should find. Demo only; called by `seed` for each new district, inside its tenant.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Account
from fivestar.branch_rounds.core import round_rules as branch_round_rules
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    RatingAnswer,
    RatingStep,
)
from fivestar.branch_rounds.opening import open_branch_round
from fivestar.config import load_settings
from fivestar.exports.services import TargetInput, create_target
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import scoring
from fivestar.member_rounds.core import FieldKey, round_rules, score_fields, write_scores
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    RoundBranch,
    RoundState,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.opening import open_round, previous_period
from fivestar.orgs.models import Organisation
from fivestar.rules import BranchInput, evaluate_branch
from fivestar.scheduling.models import DueItem, DueKind
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)


# --- a member round in progress -----------------------------------------------------------------

_PLEDGES = (
    "按承诺参加“三会一课”，带头完成本科室重点任务，主动联系服务群众。",
    "践行“立足岗位作贡献”承诺，按时完成业务学习和志愿服务。",
    "落实为民服务承诺，本季度办结群众诉求，无投诉。",
)
_SUMMARIES = (
    "本季度认真学习，履职尽责，按时交纳党费，参加组织生活。",
    "工作中注重效能，能按时完成各项任务，廉洁自律方面无问题。",
    "积极参加志愿服务，学习笔记完整，工作作风有待进一步改进。",
)


def seed_running_round(session: Session, tenant: Tenant, rng: random.Random) -> None:
    """The round for the period just past, opened now, with self-assessments from every member
    without a demo login (set-based: one INSERT of score rows, one UPDATE per text variant)."""
    opened = open_round(session, tenant)
    rules = round_rules(session, opened.round)
    fields = score_fields(rules)
    with_login = set(session.scalars(select(Account.member_id).where(Account.member_id.is_not(None))))
    evaluations = [
        (evaluation_id, member_id)
        for evaluation_id, member_id in session.execute(
            select(Evaluation.id, Evaluation.member_id).where(Evaluation.round_id == opened.round.id)
        )
        if member_id not in with_login
    ]
    values = {}
    for evaluation_id, _member_id in evaluations:
        strength = Decimal(rng.choice(("0.95", "0.9", "0.85", "0.8", "0.7")))  # most do well, a few less so
        values[evaluation_id] = {
            f.key: max(Decimal(0), min(f.max, (f.max * strength + rng.choice((-1, 0, 0, 1))).quantize(Decimal(1))))
            for f in fields
        }
    write_scores(session, [e for e, _m in evaluations], ScoreStage.SELF, values)
    now = clock.now()
    for variant, (pledge, summary) in enumerate(zip(_PLEDGES, _SUMMARIES, strict=True)):
        ids = [e for index, (e, _m) in enumerate(evaluations) if index % len(_PLEDGES) == variant]
        session.execute(
            update(Evaluation)
            .where(Evaluation.id.in_(ids))
            .values(
                self_state=SelfState.SUBMITTED,
                self_submitted_at=now,
                pledge=pledge,
                summary=summary,
                version=Evaluation.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session,
        "demo.self_assessments",
        opened.round,
        after={"submitted": len(evaluations), "left_for_demo_logins": opened.members - len(evaluations)},
    )


# --- an export to the superior committee -------------------------------------------------------------


EXPORT_ADDRESS = "zuzhibu.{slug}@example.org"


def seed_export_target(session: Session, tenant: Tenant) -> None:
    """上报上级: every finalised branch rating goes to the (demo) district Party organisation
    department by e-mail, as an Excel workbook — the finalised year at once, the next when the
    visitor finalises it; both land in the demo's mail catcher."""
    target = create_target(
        session,
        load_settings(),
        tenant.timezone,
        TargetInput(
            name="区委组织部（演示）",
            report_kind="branch_levels",
            report_format="xlsx",
            method="email",
            destination=EXPORT_ADDRESS.format(slug=tenant.slug),
            trigger="on_finalise",
        ),
    )
    # A target sends rounds finalised from its `since` on; the demo's was set up before the seeded
    # finalised year, so that year goes out on the demo's first minute.
    target.since = clock.now() - dt.timedelta(hours=1)
    session.flush()


# --- a round that opens by itself ---------------------------------------------------------------


PLANTED_AFTER = dt.timedelta(seconds=90)


def plant_opening(session: Session, tenant: Tenant) -> None:
    """A due row for the member round of the period just past, 90 s from now: the worker's sweep
    opens it without anyone clicking (and the 日程 page shows it coming)."""
    version = current_rules(session, tenant)
    assert version is not None
    period = previous_period(version_rules(version), clock.today_in(tenant.timezone))
    session.add(
        DueItem(tenant_id=tenant.id, kind=DueKind.OPEN_MEMBER_ROUND, key=period.key, due_at=clock.now() + PLANTED_AFTER)
    )
    session.flush()


# --- last year's branch rating, one branch still to go --------------------------------------------


def seed_branch_round(
    session: Session,
    tenant: Tenant,
    own_branch: Organisation,
    rng: random.Random,
    *,
    year: int | None = None,
    finalise: bool = False,
) -> None:
    """Open last year's branch rating (deadlines a month and two months ahead) with every branch but
    `own_branch` (the demo secretary's) already scored, recommended and decided, so a visitor walks
    one branch from 荐星 to the public page and the committee can finalise the year.

    With `finalise`, the year before that instead: every branch decided (the demo secretary's one
    strongly, so this year's one-level-a-year cap leaves it room) and the round finalised — what the
    public page shows at first, and what the demo's export to the superior committee sends."""

    today = clock.today_in(tenant.timezone)
    opened = open_branch_round(
        session,
        tenant,
        year=year if year is not None else today.year - 1,
        self_report_due=today + dt.timedelta(days=30),
        committee_due=today + dt.timedelta(days=60),
    )
    rules = branch_round_rules(session, opened.round)
    ratings = list(session.scalars(select(BranchRating).where(BranchRating.round_id == opened.round.id)))
    score_rows: list[dict[str, object]] = []
    answer_rows: list[dict[str, object]] = []
    now = clock.now()
    for rating in ratings:
        if rating.branch_id == own_branch.id and not finalise:
            continue
        strength = Decimal(rng.choice(("0.95", "0.92", "0.88", "0.84", "0.8", "0.74", "0.68")))
        if rating.branch_id == own_branch.id:
            strength = Decimal("0.95")
        scores: dict[str, dict[str, Decimal]] = {}
        for indicator in rules.branch.indicators:
            for criterion in indicator.criteria:
                value = max(Decimal(0), min(criterion.points, (criterion.points * strength).quantize(Decimal("0.5"))))
                scores.setdefault(indicator.key, {})[criterion.key] = value
                score_rows.append(
                    {
                        "tenant_id": tenant.id,
                        "rating_id": rating.id,
                        "indicator_key": indicator.key,
                        "criterion_key": criterion.key,
                        "score": value,
                        "note": None,
                    }
                )
        answers = {veto.key: False for veto in rules.branch.vetoes}
        facts = {fact.key: rng.random() < 0.3 for fact in rules.branch.facts}
        for kind, values in ((AnswerKind.VETO, answers), (AnswerKind.FACT, facts)):
            for key, value in values.items():
                answer_rows.append(
                    {
                        "tenant_id": tenant.id,
                        "rating_id": rating.id,
                        "kind": kind,
                        "key": key,
                        "value": value,
                        "explanation": None,
                    }
                )
        public_rate = Decimal(rng.choice(("96", "92", "88", "85"))) if rules.branch.public is not None else None
        result = evaluate_branch(
            rules,
            BranchInput(
                scores=scores,
                vetoes=answers,
                facts=facts,
                public_rate=public_rate / 100 if public_rate is not None else None,
                previous_level=rating.previous_level,
            ),
        )
        rating.public_rate = public_rate
        rating.statement = "本支部全年按要求开展组织生活，完成各项重点任务。（演示数据）"
        rating.proposed_total = result.weighted_total.quantize(Decimal("0.01"))
        rating.proposed_level = result.level
        rating.recommended_at = rating.opinion_at = rating.decided_at = now
        rating.opinion_level = rating.decided_level = result.level
        rating.opinion_statement = "经议星测评，同意按自评结果定级。（演示数据）"
        rating.decided_by = "工委（演示数据）"
        with seeding():  # last year's result as data, not a walk through the steps
            rating.step = RatingStep.DECIDED
    if score_rows:
        session.execute(insert(CriterionScore), score_rows)
    if answer_rows:
        session.execute(insert(RatingAnswer), answer_rows)
    if finalise:
        with seeding():
            opened.round.state = BranchRoundState.FINALISED
        opened.round.finalised_at = now
        opened.round.decision_meeting_date = today
        opened.round.decision_participants = "工委委员（演示数据）"
    session.flush()
    audit.record(
        session,
        "demo.branch_ratings",
        opened.round,
        after={
            "decided": len(ratings) - (0 if finalise else 1),
            "finalised": finalise,
            "left_for_the_demo": None if finalise else own_branch.name,
        },
    )


# --- what the inspectors (督查组) should find ----------------------------------------------------------


def seed_inspection_examples(
    session: Session, tenant: Tenant, branches: list[Organisation], rng: random.Random
) -> None:
    """Give `inspector` something to look at: two branches of the running member round taken on to
    党群联评 and 支部审评 (one member's final score far from the joint one, one branch where everybody
    got the same score, an objection dismissed without an answer), a branch rating decided two levels
    below its 荐星, and a decision changed after the committee's deadline of the finalised year.
    Every change is written to the audit trail as the services would (the demo secretary's branch,
    `branches[0]`, is left alone)."""
    now = clock.now()
    member_round = session.scalar(select(MemberRound).where(MemberRound.state == RoundState.OPEN))
    if member_round is None or len(branches) < 3:
        return
    rules = round_rules(session, member_round)
    fields = score_fields(rules)
    gap_branch, same_branch = branches[1], branches[2]
    round_branches = {
        rb.branch_id: rb
        for rb in session.scalars(
            select(RoundBranch).where(
                RoundBranch.round_id == member_round.id, RoundBranch.branch_id.in_([gap_branch.id, same_branch.id])
            )
        )
    }
    evaluations = [
        (evaluation_id, branch_id)
        for evaluation_id, branch_id in session.execute(
            select(Evaluation.id, Evaluation.branch_id)
            .where(
                Evaluation.round_id == member_round.id,
                Evaluation.branch_id.in_(list(round_branches)),
                Evaluation.status == EvaluationStatus.ACTIVE,
            )
            .order_by(Evaluation.id)
        )
    ]
    if len(round_branches) < 2 or not evaluations:
        return
    same = {f.key: (f.max * Decimal("0.9")).quantize(Decimal(1)) for f in fields}
    joint: dict[int, dict[FieldKey, Decimal]] = {}
    final: dict[int, dict[FieldKey, Decimal]] = {}
    lowered: int | None = None
    for evaluation_id, branch_id in evaluations:
        if branch_id == same_branch.id:
            joint[evaluation_id] = dict(same)
            final[evaluation_id] = dict(same)
            continue
        strength = Decimal(rng.choice(("0.95", "0.9", "0.85", "0.8")))
        values = {f.key: (f.max * strength).quantize(Decimal(1)) for f in fields}
        joint[evaluation_id] = values
        final[evaluation_id] = dict(values)
        if lowered is None:  # the branch committee took 20 points off one member after the meeting
            lowered, missing = evaluation_id, Decimal(20)
            for f in fields:
                cut = min(missing, final[evaluation_id][f.key])
                final[evaluation_id][f.key] -= cut
                missing -= cut
    ids = [evaluation_id for evaluation_id, _branch in evaluations]
    write_scores(session, ids, ScoreStage.JOINT, joint)
    write_scores(session, ids, ScoreStage.FINAL, final)
    audit.record_many(
        session,
        "evaluation.joint",
        Evaluation.__tablename__,
        [(i, None, {"scores": {"total": str(sum(joint[i].values()))}}) for i in ids],
    )
    audit.record_many(
        session,
        "evaluation.review",
        Evaluation.__tablename__,
        [
            (i, {"scores": {"total": str(sum(joint[i].values()))}}, {"scores": {"total": str(sum(final[i].values()))}})
            for i in ids
        ],
    )
    scoring.score_round(session, member_round, round_branch_ids=[rb.id for rb in round_branches.values()])
    for branch_id, rb in round_branches.items():
        before = {"step": rb.step.value}
        rb.meeting_date = clock.today_in(tenant.timezone)
        rb.members_present = sum(1 for _e, b in evaluations if b == branch_id)
        rb.public_present = max(1, rb.members_present // 4)
        with seeding():  # the demo fast-forwards branches (their audit event is written below)
            rb.step = BranchStep.NOTICE if branch_id == gap_branch.id else BranchStep.REVIEW
        if branch_id == gap_branch.id:
            name = "submit_notice"
            rb.notice_token = secrets.token_urlsafe(24)
            rb.notice_started_at = now
            rb.notice_ends_at = now + dt.timedelta(days=7)
        else:
            name = "start_review"
        audit.record(session, f"round_branch.{name}", rb, before=before, after={"step": rb.step.value})
    objection = Objection(
        round_branch_id=round_branches[gap_branch.id].id,
        evaluation_id=lowered,
        text="该同志平时表现突出，审评扣分过多，请复核。（演示数据）",
        filer_name="群众代表",
        state=ObjectionState.DISMISSED,
        answered_at=now,
        answered_by="支部（演示数据）",
    )
    session.add(objection)
    session.flush()
    audit.record(
        session, "objection.answer", objection, before={"state": "open"}, after={"state": "dismissed", "answer": None}
    )

    # Branch ratings: last year's, one decided two levels below its 荐星; the year before, finalised,
    # given the due dates such a year had, and one decision changed afterwards.
    rounds = list(session.scalars(select(BranchRound).order_by(BranchRound.year)))
    for branch_round in rounds:
        rating = session.scalar(
            select(BranchRating)
            .where(
                BranchRating.round_id == branch_round.id,
                BranchRating.branch_id != branches[0].id,
                BranchRating.decided_level.is_not(None),
                BranchRating.decided_level >= 2,
            )
            .order_by(BranchRating.id)
            .limit(1)
        )
        if rating is None or rating.decided_level is None:
            continue
        before = {"decided_level": rating.decided_level}
        if branch_round.state is BranchRoundState.FINALISED:
            branch_round.self_report_due_at = dt.datetime(branch_round.year + 1, 1, 31, 16, tzinfo=dt.UTC)
            branch_round.committee_due_at = dt.datetime(branch_round.year + 1, 3, 31, 16, tzinfo=dt.UTC)
            rating.decided_level -= 1
            reason = "公布后根据群众反映调整。（演示数据）"
        else:
            rating.proposed_level = min(5, rating.decided_level + 2)
            rating.decided_level = rating.proposed_level - 2
            reason = "核查后较自评下调两级。（演示数据）"
        rating.decision_reason = reason
        audit.record(
            session,
            "branch_rating.decide",
            rating,
            before=before,
            after={"decided_level": rating.decided_level},
            reason=reason,
        )
    session.flush()
