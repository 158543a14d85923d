"""Scoring a member round set-based: every member's total, level and whether rated, in one statement.

What a member gets is decided by the rule engine (`core.evaluate` → `fivestar.rules.evaluate_member`).
For a whole round that would be 100,000 Python evaluations and as many UPDATEs, so for schemes whose
total is linear in the scores (`MemberScheme.linear_form()`: Σ aspects, base + Σ additions −
Σ deductions) the same arithmetic is written as SQL over the stored score rows, which are integer
hundredths on both databases so the sums are exact:

    UPDATE member_evaluations SET total = …, rated = …, level = CASE …, scored_at = …
    FROM (SELECT e.id, SUM(±score), SUM(bonus), COUNT(score) FROM member_evaluations e
          LEFT JOIN evaluation_scores s ON s.evaluation_id = e.id AND s.stage = 'final'
          WHERE e.round_id = :round AND e.status = 'active' GROUP BY e.id) AS agg
    WHERE member_evaluations.id = agg.id

(UPDATE … FROM needs SQLite ≥ 3.33 — Python's bundled SQLite is newer — or PostgreSQL.) Only the
rules' own part keys are counted, as the evaluator would; the bonus is capped by the rules' cap; a
disqualifier (不予评星) gives `rated = false` and no level; an evaluation with no final scores and no
disqualifier is left unscored (all four columns NULL), so re-scoring after scores were removed is
correct too. Rows whose stored result is already right are not written again, so re-scoring a
round whose branches were scored earlier (closing) only rewrites what changed (on PostgreSQL every
rewritten row is a new row version in every index). A scheme with no linear form (`named_stars`) is
scored with one SELECT of all rows, the Python evaluator, and one executemany UPDATE of the changed
rows. A property test holds both paths to `core.evaluate`.

The version column is deliberately not bumped: totals are derived from score rows, and the version
guards what people typed. Evaluations already loaded in the session have the four columns expired.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    false,
    func,
    inspect,
    literal,
    null,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.member_rounds import core
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    PartKind,
    ScoreStage,
)
from fivestar.numbers import to_hundredths
from fivestar.rules import InputError, RuleSet
from fivestar.timekeeping import clock

RESULT_COLUMNS = ("total", "rated", "level", "scored_at")


def score_round(session: Session, member_round: MemberRound, *, round_branch_ids: Iterable[int] | None = None) -> int:
    """Compute total, rated, level and scored_at of every ACTIVE evaluation of the round (or of the
    given round branches) from its FINAL scores, bonus and disqualifier. Only rows whose result
    changes are written (scored_at is when the current result was computed); returns how many.
    Flushes pending changes first; never commits.
    """
    core.ensure_open(member_round)
    branch_ids = None if round_branch_ids is None else sorted(set(round_branch_ids))
    if branch_ids is not None and not branch_ids:
        return 0
    session.flush()
    rules = core.round_rules(session, member_round)
    if rules.member.scheme.linear_form() is not None:
        count = _score_in_sql(session, member_round, rules, branch_ids)
        method = "sql"
    else:
        count = _score_in_python(session, member_round, rules, branch_ids)
        method = "python"
    _expire_loaded(session, member_round.id, branch_ids)
    audit.record(
        session,
        "member_round.score",
        member_round,
        after={"changed": count, "round_branches": branch_ids or "all", "method": method},
    )
    return count


# --- the rules as SQL ------------------------------------------------------------------------------


def _tables() -> tuple[Table, Table]:
    """The evaluation and score tables as Core tables (see `_final_scores_of` for why not entities)."""
    return cast(Table, Evaluation.__table__), cast(Table, EvaluationScore.__table__)


def _scope(e: Table, member_round: MemberRound, branch_ids: list[int] | None) -> list[ColumnElement[bool]]:
    """The active evaluations of the round (or of some of its branches), of the round's tenant."""
    scope = [
        e.c.tenant_id == member_round.tenant_id,
        e.c.round_id == member_round.id,
        e.c.status == EvaluationStatus.ACTIVE,
    ]
    if branch_ids is not None:
        scope.append(e.c.round_branch_id.in_(branch_ids))
    return scope


def _final_scores_of(e: Table, s: Table) -> ColumnElement[bool]:
    """Join an evaluation to its FINAL score rows by (evaluation_id, stage) — the score index.

    Deliberately no `tenant_id` test on the score table: the evaluation is already the tenant's and
    a score row can only belong to its evaluation's tenant (composite foreign key), while an extra
    `tenant_id = ?` makes SQLite's planner walk the tenant index for every evaluation (quadratic:
    14 s for 2,000 members). That is also why these are Core tables: the ORM tenancy hook would add
    that test to every entity in the statement; the outer UPDATE (an entity) keeps it.
    """
    return and_(s.c.evaluation_id == e.c.id, s.c.stage == ScoreStage.FINAL)


def _known_keys(rules: RuleSet) -> dict[PartKind, list[str]]:
    """Part keys the evaluator accepts, by kind (score rows with other keys are not counted)."""
    keys: dict[PartKind, list[str]] = defaultdict(list)
    scheme = rules.member.scheme
    for part in scheme.parts():
        if part.kind in scheme.input_kinds:
            keys[PartKind(part.kind)].append(part.key)
    if rules.member.bonus is not None:
        keys[PartKind.BONUS] = [reason.key for reason in rules.member.bonus.reasons]
    return keys


def _minimum_hundredths(minimum: Decimal) -> int:
    """The smallest total in hundredths that reaches an inclusive band minimum (89.995 → 9000)."""
    return math.ceil(minimum * 100)


def level_expression(rules: RuleSet, total_hundredths: ColumnElement[Any]) -> ColumnElement[Any]:
    """CASE giving the member level for an integer total in hundredths; below every band: 0."""
    bands = sorted(rules.member.stars.bands, key=lambda band: band.min, reverse=True)
    return case(
        *[
            (total_hundredths >= literal(_minimum_hundredths(band.min), Integer), literal(band.level, Integer))
            for band in bands
        ],
        else_=literal(0, Integer),
    )


def _score_in_sql(session: Session, member_round: MemberRound, rules: RuleSet, branch_ids: list[int] | None) -> int:
    form = rules.member.scheme.linear_form()
    assert form is not None
    keys = _known_keys(rules)
    e, s = _tables()
    score = type_coerce(s.c.score, Integer)  # integer hundredths, untouched by the Decimal type
    zero = literal(0, Integer)

    signed = []
    for kind in (PartKind.ASPECT, PartKind.ADDITION, PartKind.DEDUCTION):
        sign = form.sign(kind.value)
        if sign and keys.get(kind):
            signed.append((and_(s.c.kind == kind, s.c.part_key.in_(keys[kind])), score if sign > 0 else -score))
    scheme_sum = func.coalesce(func.sum(case(*signed, else_=zero)), zero) if signed else zero
    bonus = rules.member.bonus
    if bonus is not None and keys.get(PartKind.BONUS):
        in_bonus = and_(s.c.kind == PartKind.BONUS, s.c.part_key.in_(keys[PartKind.BONUS]))
        bonus_sum: ColumnElement[Any] = func.coalesce(func.sum(case((in_bonus, score), else_=zero)), zero)
    else:
        bonus_sum = zero

    agg = (
        select(
            e.c.id.label("evaluation_id"),
            type_coerce(scheme_sum, Integer).label("scheme_sum"),
            type_coerce(bonus_sum, Integer).label("bonus_sum"),
            func.count(s.c.id).label("n"),
        )
        .select_from(e)
        .outerjoin(s, _final_scores_of(e, s))
        .where(*_scope(e, member_round, branch_ids))
        .group_by(e.c.id)
        .subquery("agg")
    )

    applied_bonus: ColumnElement[Any] = agg.c.bonus_sum
    if bonus is not None:
        cap = literal(to_hundredths(bonus.cap), Integer)
        applied_bonus = case((agg.c.bonus_sum > cap, cap), else_=agg.c.bonus_sum)
    total = literal(to_hundredths(form.constant), Integer) + agg.c.scheme_sum + applied_bonus
    has_result = or_(agg.c.n > 0, Evaluation.disqualifier.is_not(None))
    is_rated = and_(has_result, Evaluation.disqualifier.is_(None))
    new_total = case((has_result, total), else_=null())
    new_rated = case((is_rated, true()), (has_result, false()), else_=null())
    new_level = case((is_rated, level_expression(rules, total)), else_=null())
    now = literal(clock.now(), Evaluation.__table__.c.scored_at.type)
    statement = (
        update(Evaluation)
        .where(
            Evaluation.id == agg.c.evaluation_id,
            Evaluation.tenant_id == member_round.tenant_id,
            # Rows whose result is already right are not written again (re-scoring a round whose
            # branches were scored before rewrites only what changed).
            or_(
                type_coerce(Evaluation.total, Integer).is_distinct_from(new_total),
                Evaluation.rated.is_distinct_from(new_rated),
                Evaluation.level.is_distinct_from(new_level),
            ),
        )
        .values(
            total=new_total,
            rated=new_rated,
            level=new_level,
            scored_at=case((has_result, now), else_=null()),
        )
        .execution_options(synchronize_session=False)
    )
    result: Any = session.execute(statement)
    return int(result.rowcount or 0)


# --- schemes without a linear form -----------------------------------------------------------------


def _score_in_python(
    session: Session, member_round: MemberRound, rules: RuleSet, branch_ids: list[int] | None
) -> int:
    keys = {(kind, key) for kind, listed in _known_keys(rules).items() for key in listed}
    e, s = _tables()
    statement = (
        select(e.c.id, e.c.disqualifier, e.c.total, e.c.rated, e.c.level,
               s.c.kind, s.c.part_key, s.c.criterion_key, s.c.score)
        .select_from(e)
        .outerjoin(s, _final_scores_of(e, s))
        .where(*_scope(e, member_round, branch_ids))
    )
    scores: dict[int, dict[core.FieldKey, Decimal]] = {}
    disqualifiers: dict[int, str | None] = {}
    stored: dict[int, tuple[Any, ...]] = {}
    counted: dict[int, int] = defaultdict(int)
    record: Any
    for record in session.execute(statement):
        evaluation_id, disqualifier, total, rated, level, kind, part_key, criterion_key, value = record
        scores.setdefault(evaluation_id, {})
        disqualifiers[evaluation_id] = disqualifier
        stored[evaluation_id] = (total, rated, level)
        if kind is None:
            continue
        counted[evaluation_id] += 1
        if (kind, part_key) in keys:
            scores[evaluation_id][(kind, part_key, criterion_key)] = value

    now = clock.now()
    rows: list[dict[str, Any]] = []
    for evaluation_id, given in scores.items():
        disqualifier = disqualifiers[evaluation_id]
        row: dict[str, Any] = {"b_id": evaluation_id, "b_total": None, "b_rated": None, "b_level": None,
                               "b_scored_at": None}
        if counted[evaluation_id] or disqualifier:
            try:
                result = core.evaluate(rules, given, disqualifier)
            except InputError as exc:
                raise ServiceError(
                    _("评定记录 %(id)s 的分数不符合本轮规则：%(error)s", id=evaluation_id, error=str(exc))
                ) from None
            row.update(b_total=result.total, b_rated=result.rated, b_level=result.level, b_scored_at=now)
        if (row["b_total"], row["b_rated"], row["b_level"]) != stored[evaluation_id]:
            rows.append(row)
    _update_rows(session, member_round.tenant_id, rows)
    return len(rows)


def _update_rows(session: Session, tenant_id: int, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany UPDATE by primary key (Core: the tenant is filtered here, by hand)."""
    if not rows:
        return
    table = cast(Table, Evaluation.__table__)
    statement = (
        table.update()
        .where(table.c.id == bindparam("b_id"), table.c.tenant_id == literal(tenant_id, Integer))
        .values(
            total=bindparam("b_total", type_=table.c.total.type),
            rated=bindparam("b_rated", type_=table.c.rated.type),
            level=bindparam("b_level", type_=table.c.level.type),
            scored_at=bindparam("b_scored_at", type_=table.c.scored_at.type),
        )
    )
    session.connection().execute(statement, list(rows))


def _expire_loaded(session: Session, round_id: int, branch_ids: list[int] | None) -> None:
    """Make evaluations already in the session reload their result columns on next access."""
    wanted = None if branch_ids is None else set(branch_ids)
    for obj in list(session.identity_map.values()):
        if not isinstance(obj, Evaluation):
            continue
        loaded = inspect(obj).dict
        if loaded.get("round_id") != round_id:
            continue
        if wanted is not None and loaded.get("round_branch_id") not in wanted:
            continue
        session.expire(obj, list(RESULT_COLUMNS))


__all__ = ["RESULT_COLUMNS", "level_expression", "score_round"]
