"""荐星: the branch committee scores its own branch, answers the veto questions and gate facts of
the rules, writes its self-recommendation statement (自我荐星说明) and submits — and the branch's
page for the year (its dashboard) that says where the rating stands and what comes next.

A draft may be saved any number of times while the rating is at RECOMMEND (incomplete is fine);
`submit` takes the workflow's `submit_recommendation` transition once everything is scored and
answered and before the self-report deadline, storing the rule engine's proposed total and level.

Writes are set-based: a save replaces the rating's `CriterionScore` and `RatingAnswer` rows with
one DELETE and one multi-row INSERT each. Every save bumps the rating's `version` (optimistic
locking): of two people saving at once one wins and the other gets a `ConflictError` (409) with
nothing of theirs written. Services flush, never commit, and refuse with `ServiceError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from fivestar import audit
from fivestar.branch_rounds import core, workflow
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    EvidenceFile,
    QuarterlyReview,
    RatingAnswer,
    RatingStep,
)
from fivestar.branch_rounds.workflow import RatingFacts
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _, current_language, short_date
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version as check_version
from fivestar.orgs.models import Organisation
from fivestar.rules import BranchResult, InputError, RuleSet, evaluate_branch, level_label, medal_label
from fivestar.rules.model import Indicator, PublicScore
from fivestar.timekeeping import clock

TWO_PLACES = Decimal("0.01")
STATEMENT_MAX = 4000  # characters of the self-recommendation statement
NOTE_MAX = 2000  # characters of a criterion's note or an answer's explanation
PUBLIC_RATE = "public_rate"
STATEMENT = "statement"
CONFLICT_MESSAGE = "此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。"

# (indicator key, criterion key)
CriterionKey = tuple[str, str]
# (kind, key) of a veto question or a gate fact
AnswerKey = tuple[AnswerKind, str]


# --- errors --------------------------------------------------------------------------------------


class InvalidRecommendationError(ServiceError):
    """The input has mistakes (or a submission misses something); `errors` names each field."""

    def __init__(self, errors: Mapping[str, str], message: str | None = None) -> None:
        super().__init__(message or _("请按提示修改标出的内容后再保存"))
        self.errors = dict(errors)


# --- form field names ----------------------------------------------------------------------------


def score_name(indicator_key: str, criterion_key: str) -> str:
    return f"score.{indicator_key}.{criterion_key}"


def note_name(indicator_key: str, criterion_key: str) -> str:
    return f"note.{indicator_key}.{criterion_key}"


def answer_name(kind: AnswerKind, key: str) -> str:
    return f"{kind.value}.{key}"


def explanation_name(kind: AnswerKind, key: str) -> str:
    return f"{kind.value}_note.{key}"


def plain(number: Decimal | None) -> str:
    """A number as people write it: 20, 12.5 (not 20.00); "" for None."""
    if number is None:
        return ""
    if number == number.to_integral_value():
        return format(number.quantize(Decimal(1)), "f")
    return format(number.normalize(), "f")


# --- context -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingContext:
    """What every page and service of one rating needs: the round, the pinned rules, the facts."""

    round: BranchRound
    rating: BranchRating
    rules: RuleSet
    facts: RatingFacts

    @property
    def timezone(self) -> str:
        return self.facts.timezone


def context_for(session: Session, rating: BranchRating) -> RatingContext:
    """The rating's round, pinned rules and workflow facts (a few small queries; rules are cached)."""
    branch_round = core.load_round(session, rating.round_id)
    rules = core.round_rules(session, branch_round)
    return RatingContext(branch_round, rating, rules, core.facts_for(session, branch_round, rating, rules))


def edit_refusal(facts: RatingFacts) -> str | None:
    """Why the 荐星 input (scores, answers, statement, evidence files) may not change now, or None.

    Drafts are allowed whenever the rating is at RECOMMEND — also after the self-report deadline,
    so that a branch can prepare what it asks the committee to accept late; only the submission
    itself is bound to the deadline (workflow.refusal)."""
    finalised = workflow.finalised_refusal(facts.round_state)
    if finalised:
        return finalised
    if facts.step is not RatingStep.RECOMMEND:
        return _("荐星已提交，当前处于“%(step)s”环节，不能再修改", step=workflow.step_label(facts.step))
    return None


def guard_editable(ctx: RatingContext) -> None:
    core.ensure_open(ctx.round)
    reason = edit_refusal(ctx.facts)
    if reason is not None:
        raise ConflictError(reason)


# --- parsing the form ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecommendationInput:
    """A validated 荐星 form, ready to write."""

    scores: dict[CriterionKey, Decimal]
    notes: dict[CriterionKey, str]
    answers: dict[AnswerKey, bool]
    explanations: dict[AnswerKey, str]
    public_rate: Decimal | None
    statement: str | None


def _text(raw: Mapping[str, object], name: str) -> str:
    return str(raw.get(name, "") or "").replace("\r\n", "\n").strip()


def parse_number(text: str, maximum: Decimal, label: str) -> tuple[Decimal | None, str | None]:
    """A number from 0 to `maximum` with at most two decimal places; (None, None) when empty."""
    text = text.strip().replace("，", ".").replace("。", ".")
    if not text:
        return None, None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None, _("%(label)s须为数字", label=label)
    if not number.is_finite() or number < 0 or number > maximum:
        return None, _("%(label)s须在 0 到 %(max)s 之间", label=label, max=plain(maximum))
    if number != number.quantize(TWO_PLACES):
        return None, _("%(label)s最多保留两位小数", label=label)
    return number.quantize(TWO_PLACES) + 0, None  # + 0 turns -0 into 0


def _yes_no(text: str) -> bool | str | None:
    if text == "yes":
        return True
    if text == "no":
        return False
    if text == "":
        return None
    return "bad"


def questions(rules: RuleSet) -> list[tuple[AnswerKind, str, str]]:
    """The rules' veto questions, then their gate facts: (kind, key, label)."""
    return [(AnswerKind.VETO, v.key, v.label) for v in rules.branch.vetoes] + [
        (AnswerKind.FACT, f.key, f.label) for f in rules.branch.facts
    ]


def parse(rules: RuleSet, raw: Mapping[str, object]) -> tuple[RecommendationInput, dict[str, str]]:
    """Read a 荐星 form (by the names above) into a `RecommendationInput` and the errors per field.

    A score is 0..the criterion's points with at most two decimals; the public satisfaction rate
    is 0..100 percent. Empty fields are allowed (a draft), but nothing typed is dropped silently: a
    note without its score and an explanation without its yes/no are errors. Answering "yes" to a
    veto question or a fact needs an explanation."""
    errors: dict[str, str] = {}
    scores: dict[CriterionKey, Decimal] = {}
    notes: dict[CriterionKey, str] = {}
    for indicator in rules.branch.indicators:
        for criterion in indicator.criteria:
            key = (indicator.key, criterion.key)
            name = score_name(*key)
            value, error = parse_number(_text(raw, name), criterion.points, criterion.label)
            note = _text(raw, note_name(*key))
            if error:
                errors[name] = error
            elif value is not None:
                scores[key] = value
            elif note:
                errors[name] = _("已填写说明，请同时填写%(label)s的得分", label=criterion.label)
            if len(note) > NOTE_MAX:
                errors[note_name(*key)] = _("说明最多 %(n)d 个字（现有 %(have)d 个字）", n=NOTE_MAX, have=len(note))
            elif note:
                notes[key] = note
    answers: dict[AnswerKey, bool] = {}
    explanations: dict[AnswerKey, str] = {}
    for kind, question_key, _label in questions(rules):
        answer_field = answer_name(kind, question_key)
        explanation_field = explanation_name(kind, question_key)
        answer = _yes_no(_text(raw, answer_field))
        explanation = _text(raw, explanation_field)
        if answer == "bad":
            errors[answer_field] = _("请选择“是”或“否”")
            continue
        if len(explanation) > NOTE_MAX:
            errors[explanation_field] = _(
                "说明最多 %(n)d 个字（现有 %(have)d 个字）", n=NOTE_MAX, have=len(explanation)
            )
        if answer is None:
            if explanation:
                errors[answer_field] = _("已填写说明，请选择“是”或“否”")
            continue
        if answer is True and not explanation:
            errors[explanation_field] = _("选择“是”时请说明具体情况")
        answers[(kind, question_key)] = bool(answer)
        if explanation:
            explanations[(kind, question_key)] = explanation
    public_rate = None
    public = rules.branch.public
    if public is not None:
        public_rate, error = parse_number(_text(raw, PUBLIC_RATE), Decimal(100), public.label)
        if error:
            errors[PUBLIC_RATE] = error
    statement = _text(raw, STATEMENT)
    if len(statement) > STATEMENT_MAX:
        errors[STATEMENT] = _("最多 %(n)d 个字（现有 %(have)d 个字）", n=STATEMENT_MAX, have=len(statement))
    checked = RecommendationInput(
        scores=scores,
        notes=notes,
        answers=answers,
        explanations=explanations,
        public_rate=public_rate,
        statement=statement or None,
    )
    return checked, errors


def validate(rules: RuleSet, raw: Mapping[str, object]) -> RecommendationInput:
    checked, errors = parse(rules, raw)
    if errors:
        raise InvalidRecommendationError(errors)
    return checked


# --- reading what is stored ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """The rating's 荐星 rows as stored (two queries)."""

    scores: dict[CriterionKey, Decimal]
    notes: dict[CriterionKey, str]
    answers: dict[AnswerKey, bool]
    explanations: dict[AnswerKey, str]


def stored(session: Session, rating_id: int) -> Stored:
    scores: dict[CriterionKey, Decimal] = {}
    notes: dict[CriterionKey, str] = {}
    for indicator_key, criterion_key, score, note in session.execute(
        select(CriterionScore.indicator_key, CriterionScore.criterion_key, CriterionScore.score, CriterionScore.note)
        .where(CriterionScore.rating_id == rating_id)
    ):
        scores[(indicator_key, criterion_key)] = score
        if note:
            notes[(indicator_key, criterion_key)] = note
    answers: dict[AnswerKey, bool] = {}
    explanations: dict[AnswerKey, str] = {}
    for kind, key, value, explanation in session.execute(
        select(RatingAnswer.kind, RatingAnswer.key, RatingAnswer.value, RatingAnswer.explanation).where(
            RatingAnswer.rating_id == rating_id
        )
    ):
        answers[(kind, key)] = value
        if explanation:
            explanations[(kind, key)] = explanation
    return Stored(scores, notes, answers, explanations)


def form_values(rating: BranchRating, rows: Stored) -> dict[str, str]:
    """What the form shows for the stored rating (scores as people write them)."""
    values: dict[str, str] = {}
    for criterion_key, score in rows.scores.items():
        values[score_name(*criterion_key)] = plain(score)
    for criterion_key, note in rows.notes.items():
        values[note_name(*criterion_key)] = note
    for (kind, key), answer in rows.answers.items():
        values[answer_name(kind, key)] = "yes" if answer else "no"
    for (kind, key), explanation in rows.explanations.items():
        values[explanation_name(kind, key)] = explanation
    values[PUBLIC_RATE] = plain(rating.public_rate)
    values[STATEMENT] = rating.statement or ""
    values["version"] = str(rating.version)
    return values


def _document(rating: BranchRating, rows: Stored | RecommendationInput) -> dict[str, Any]:
    """An audit snapshot of the 荐星 input (scores, notes, answers, explanations, rate, statement)."""
    return {
        "scores": {f"{i}.{c}": str(v) for (i, c), v in sorted(rows.scores.items())},
        "notes": {f"{i}.{c}": v for (i, c), v in sorted(rows.notes.items())},
        "answers": {f"{k.value}.{key}": v for (k, key), v in sorted(rows.answers.items())},
        "explanations": {f"{k.value}.{key}": v for (k, key), v in sorted(rows.explanations.items())},
        "public_rate": rating.public_rate,
        "statement": rating.statement,
    }


# --- writing -------------------------------------------------------------------------------------


def _flush(session: Session) -> None:
    """Flush, turning a lost optimistic-locking race (someone saved in between) into a 409."""
    try:
        session.flush()
    except StaleDataError:
        raise ConflictError(_(CONFLICT_MESSAGE)) from None


def save(session: Session, ctx: RatingContext, raw: Mapping[str, object], *, version: object) -> BranchRating:
    """Save the 荐星 form as a draft (incomplete is fine). Refuses, writing nothing: a rating past
    RECOMMEND or a finalised round (ConflictError), a form opened on an older version
    (ConflictError), bad input (InvalidRecommendationError naming every field)."""
    guard_editable(ctx)
    check_version(ctx.rating, version)
    checked = validate(ctx.rules, raw)
    _write(session, ctx, checked)
    return ctx.rating


def _write(session: Session, ctx: RatingContext, checked: RecommendationInput) -> None:
    rating = ctx.rating
    before = _document(rating, stored(session, rating.id))
    rating.public_rate = checked.public_rate
    rating.statement = checked.statement
    # Always an UPDATE (and so a new version), even when nothing of the row itself changed: the
    # scores may have, and a second person holding the old version must be told.
    flag_modified(rating, "statement")
    _flush(session)
    tenant_id = rating.tenant_id
    session.execute(
        delete(CriterionScore)
        .where(CriterionScore.tenant_id == tenant_id, CriterionScore.rating_id == rating.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(RatingAnswer)
        .where(RatingAnswer.tenant_id == tenant_id, RatingAnswer.rating_id == rating.id)
        .execution_options(synchronize_session=False)
    )
    score_rows = [
        {
            "tenant_id": tenant_id,
            "rating_id": rating.id,
            "indicator_key": indicator_key,
            "criterion_key": criterion_key,
            "score": score,
            "note": checked.notes.get((indicator_key, criterion_key)),
        }
        for (indicator_key, criterion_key), score in checked.scores.items()
    ]
    if score_rows:
        session.execute(insert(CriterionScore), score_rows)
    answer_rows = [
        {
            "tenant_id": tenant_id,
            "rating_id": rating.id,
            "kind": kind,
            "key": key,
            "value": value,
            "explanation": checked.explanations.get((kind, key)),
        }
        for (kind, key), value in checked.answers.items()
    ]
    if answer_rows:
        session.execute(insert(RatingAnswer), answer_rows)
    audit.record(session, "branch_rating.save_recommendation", rating, before=before, after=_document(rating, checked))


def missing_fields(rules: RuleSet, rating: BranchRating, rows: Stored) -> dict[str, str]:
    """What a submission still lacks, per form field."""
    missing: dict[str, str] = {}
    for indicator in rules.branch.indicators:
        for criterion in indicator.criteria:
            if (indicator.key, criterion.key) not in rows.scores:
                missing[score_name(indicator.key, criterion.key)] = _("请填写%(label)s的得分", label=criterion.label)
    for kind, key, _label in questions(rules):
        if (kind, key) not in rows.answers:
            missing[answer_name(kind, key)] = _("请选择“是”或“否”")
    if rules.branch.public is not None and rating.public_rate is None:
        missing[PUBLIC_RATE] = _("请填写%(label)s", label=rules.branch.public.label)
    if not (rating.statement or "").strip():
        missing[STATEMENT] = _("请填写自我荐星说明")
    return missing


def submit(
    session: Session, ctx: RatingContext, *, version: object, raw: Mapping[str, object] | None = None
) -> BranchResult:
    """Take `submit_recommendation`: with `raw`, save the form first (in the same transaction);
    then, if the workflow allows it now, move the rating to 议星 and store the rule engine's
    proposed total and level. A refusal writes nothing (the view rolls back): incomplete input is
    an `InvalidRecommendationError` (400) naming what is missing, any other refusal of the workflow
    (deadline passed, wrong step) a `ConflictError` (409)."""
    core.ensure_open(ctx.round)
    rating = ctx.rating
    if raw is not None:
        save(session, ctx, raw, version=version)
    else:
        guard_editable(ctx)
        check_version(rating, version)
    facts = core.facts_for(session, ctx.round, rating, ctx.rules)
    rows = stored(session, rating.id)
    reason = workflow.refusal("submit_recommendation", facts)
    missing = missing_fields(ctx.rules, rating, rows)
    if missing:
        raise InvalidRecommendationError(missing, reason or next(iter(missing.values())))
    if reason is not None:
        raise ConflictError(reason)
    result = evaluate_stored(session, ctx)
    if result is None:  # pragma: no cover - missing_fields asks for the public rate first
        raise InvalidRecommendationError({PUBLIC_RATE: _("请填写群众满意度")})
    fields = ("step", "proposed_total", "proposed_level", "recommended_at")

    def proposed() -> None:
        rating.proposed_total = result.weighted_total.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
        rating.proposed_level = result.level
        rating.recommended_at = clock.now()

    rounds.apply(
        session, workflow.RATING_WORKFLOW, "submit_recommendation", rating, refusal=None, changes=proposed,
        before=audit.snapshot(rating, fields),
        after=lambda: {
            **audit.snapshot(rating, fields),
            "weighted_total": str(result.weighted_total),
            "medals": {key: medal.value if medal else None for key, medal in result.medals.items()},
            "vetoes_triggered": list(result.vetoes_triggered),
            "reasons": [reason.zh for reason in result.reasons],
        },
    )
    return result


# --- the rule engine's view ------------------------------------------------------------------------


def evaluate_stored(session: Session, ctx: RatingContext) -> BranchResult | None:
    """The rule engine's result for the rating as stored; None while the public rate is missing."""
    try:
        return core.evaluate(session, ctx.rules, ctx.rating)
    except InputError as error:  # rows written under these pinned rules are valid; stay readable anyway
        raise ServiceError(str(error)) from None


def evaluate_input(rules: RuleSet, rating: BranchRating, checked: RecommendationInput) -> BranchResult | None:
    """The rule engine's result for typed (validated) input; None while the public rate is missing."""
    if rules.branch.public is not None and checked.public_rate is None:
        return None
    scores: dict[str, dict[str, Decimal]] = {}
    for (indicator_key, criterion_key), score in checked.scores.items():
        scores.setdefault(indicator_key, {})[criterion_key] = score
    answers: dict[AnswerKind, dict[str, bool]] = {AnswerKind.VETO: {}, AnswerKind.FACT: {}}
    for (kind, key), value in checked.answers.items():
        answers[kind][key] = value
    # A transient row (never added to the session) carries the typed rate with the stored history.
    shadow = BranchRating(public_rate=checked.public_rate, previous_level=rating.previous_level, is_new=rating.is_new)
    return evaluate_branch(rules, core.branch_input(rules, shadow, scores, answers))


def reason_text(reason: Any) -> str:
    return str(reason.en if current_language() == "en" else reason.zh)


def preview(rules: RuleSet, rating: BranchRating, raw: Mapping[str, object]) -> dict[str, Any]:
    """The engine's result for what is typed now (JSON for recommend.js; nothing is saved). Fields
    with mistakes are left out and reported in `errors`."""
    checked, errors = parse(rules, raw)
    try:
        result = evaluate_input(rules, rating, checked)
    except InputError as error:
        return {"ok": False, "errors": errors, "message": str(error)}
    if result is None:
        label = rules.branch.public.label if rules.branch.public else ""
        return {"ok": False, "errors": errors, "message": _("填写%(label)s后显示星级", label=label)}
    return {"ok": True, "errors": errors, **result_document(result)}


def result_document(result: BranchResult) -> dict[str, Any]:
    return {
        "level": result.level,
        "label": level_label(result.level),
        "score_level_label": level_label(result.score_level),
        "raw_total": plain(result.raw_total),
        "total": plain(result.weighted_total),
        "indicators": [
            {
                "key": item.key,
                "label": item.label,
                "total": plain(item.total),
                "max": plain(item.max),
                "medal": item.medal.value if item.medal else None,
                "medal_label": medal_label(item.medal),
            }
            for item in result.indicators
        ],
        "reasons": [reason_text(reason) for reason in result.reasons],
    }


# --- the 荐星 page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionRow:
    indicator_key: str
    key: str
    label: str
    points: Decimal
    guide: str
    score_name: str
    note_name: str
    anchor: str
    files: list[EvidenceFile] = field(default_factory=list)


@dataclass(frozen=True)
class IndicatorBlock:
    indicator: Indicator
    criteria: list[CriterionRow]
    medal_bands: list[tuple[str, Decimal]]


@dataclass(frozen=True)
class QuestionRow:
    kind: AnswerKind
    key: str
    label: str
    effect: str  # what a veto does (取消星级, 最高二星 …); "" for a fact
    name: str
    explanation_name: str


@dataclass(frozen=True)
class LevelRule:
    """One star band as the rules set it: the minimum total and the further conditions (gates)."""

    level: int
    label: str
    minimum: Decimal
    gates: list[str]


@dataclass(frozen=True)
class RecommendPage:
    ctx: RatingContext
    indicators: list[IndicatorBlock]
    vetoes: list[QuestionRow]
    facts: list[QuestionRow]
    public: PublicScore | None
    levels: list[LevelRule]
    result: BranchResult | None
    scored: int
    criteria: int
    edit_refusal: str | None
    submit_refusal: str | None


def anchor(indicator_key: str, criterion_key: str) -> str:
    return f"c-{indicator_key}-{criterion_key}"


def evaluate_rows(ctx: RatingContext, rows: Stored) -> BranchResult | None:
    """The rule engine's result for rows already read (as `evaluate_stored`, without reading again)."""
    rules = ctx.rules
    if rules.branch.public is not None and ctx.rating.public_rate is None:
        return None
    scores: dict[str, dict[str, Decimal]] = {}
    for (indicator_key, criterion_key), score in rows.scores.items():
        scores.setdefault(indicator_key, {})[criterion_key] = score
    answers: dict[AnswerKind, dict[str, bool]] = {AnswerKind.VETO: {}, AnswerKind.FACT: {}}
    for (kind, key), value in rows.answers.items():
        answers[kind][key] = value
    try:
        return evaluate_branch(rules, core.branch_input(rules, ctx.rating, scores, answers))
    except InputError as error:  # rows written under these pinned rules are valid; stay readable anyway
        raise ServiceError(str(error)) from None


def recommend_page(session: Session, ctx: RatingContext, rows: Stored | None = None) -> RecommendPage:
    """Everything the 荐星 page shows besides the form's values (one query beyond the context and
    the stored rows, which the caller may pass when it has read them already)."""
    from fivestar.branch_rounds import evidence

    rules = ctx.rules
    rows = rows if rows is not None else stored(session, ctx.rating.id)
    files = evidence.files_by_criterion(session, ctx.rating.id)
    blocks = []
    for indicator in rules.branch.indicators:
        criterion_rows = [
            CriterionRow(
                indicator_key=indicator.key,
                key=criterion.key,
                label=criterion.label,
                points=criterion.points,
                guide=criterion.guide,
                score_name=score_name(indicator.key, criterion.key),
                note_name=note_name(indicator.key, criterion.key),
                anchor=anchor(indicator.key, criterion.key),
                files=files.get((indicator.key, criterion.key), []),
            )
            for criterion in indicator.criteria
        ]
        bands = [(medal_label(m), v) for m, v in indicator.medals.bands()] if indicator.medals else []
        blocks.append(IndicatorBlock(indicator, criterion_rows, bands))

    def rows_of(kind: AnswerKind) -> list[QuestionRow]:
        result = []
        for k, key, label in questions(rules):
            if k is not kind:
                continue
            effect = ""
            if kind is AnswerKind.VETO:
                veto = rules.branch.veto(key)
                effect = veto.effect.describe()[0 if current_language() == "zh" else 1] if veto else ""
            result.append(QuestionRow(kind, key, label, effect, answer_name(kind, key), explanation_name(kind, key)))
        return result

    levels = [
        LevelRule(
            band.level,
            level_label(band.level),
            band.min,
            [gate.describe()[0 if current_language() == "zh" else 1] for gate in band.gates],
        )
        for band in rules.branch.stars.bands
    ]
    facts = ctx.facts
    total_criteria = sum(len(indicator.criteria) for indicator in rules.branch.indicators)
    return RecommendPage(
        ctx=ctx,
        indicators=blocks,
        vetoes=rows_of(AnswerKind.VETO),
        facts=rows_of(AnswerKind.FACT),
        public=rules.branch.public,
        levels=levels,
        result=evaluate_rows(ctx, rows),
        scored=total_criteria - facts.unscored_criteria,
        criteria=total_criteria,
        edit_refusal=edit_refusal(facts),
        submit_refusal=workflow.refusal("submit_recommendation", facts),
    )


# --- the dashboard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepItem:
    label: str
    state: str  # "done", "current" or "todo"


@dataclass(frozen=True)
class CheckItem:
    label: str
    done: bool
    optional: bool = False


@dataclass(frozen=True)
class StepAction:
    name: str
    label: str
    refusal: str | None


@dataclass(frozen=True)
class Dashboard:
    ctx: RatingContext
    step_label: str
    steps: list[StepItem]
    checklist: list[CheckItem]
    next_text: str
    actions: list[StepAction]
    middle: Organisation | None
    previous_label: str | None
    proposed_label: str | None
    opinion_label: str | None
    decided_label: str | None
    evidence_files: int
    quarterly: list[QuarterlyReview]


STEP_ORDER = (
    RatingStep.RECOMMEND,
    RatingStep.DELIBERATE,
    RatingStep.ORG_REVIEW,
    RatingStep.COMMITTEE,
    RatingStep.DECIDED,
)


def local_day(moment: dt.datetime, timezone: str) -> str:
    return short_date(moment.astimezone(ZoneInfo(timezone)))


def dashboard(session: Session, ctx: RatingContext) -> Dashboard:
    """The branch's page for the year: where it stands, what is done, what comes next (four small
    queries beyond the context)."""
    rating, facts, rules = ctx.rating, ctx.facts, ctx.rules
    middle = core.middle_organisation(session, rating)
    position = STEP_ORDER.index(rating.step)
    finalised = ctx.round.state is BranchRoundState.FINALISED
    steps = []
    for step in STEP_ORDER[:-1]:
        if step is RatingStep.ORG_REVIEW and middle is None:
            continue  # a branch directly under the committee has no middle level
        index = STEP_ORDER.index(step)
        state = "done" if index < position else ("current" if index == position else "todo")
        steps.append(StepItem(workflow.step_label(step), state))
    publish_state = "done" if finalised else ("current" if rating.step is RatingStep.DECIDED else "todo")
    steps.append(StepItem(_("亮星（公布）"), publish_state))

    checklist: list[CheckItem] = []
    evidence_count = int(
        session.scalar(select(func.count()).select_from(EvidenceFile).where(EvidenceFile.rating_id == rating.id)) or 0
    )
    if rating.step is RatingStep.RECOMMEND:
        total_criteria = sum(len(indicator.criteria) for indicator in rules.branch.indicators)
        scored = total_criteria - facts.unscored_criteria
        checklist.append(
            CheckItem(
                _("评分标准已打分 %(n)d / %(total)d 项", n=scored, total=total_criteria), not facts.unscored_criteria
            )
        )
        if rules.branch.vetoes:
            answered = len(rules.branch.vetoes) - facts.unanswered_vetoes
            checklist.append(
                CheckItem(
                    _("一票否决事项已回答 %(n)d / %(total)d 项", n=answered, total=len(rules.branch.vetoes)),
                    not facts.unanswered_vetoes,
                )
            )
        if rules.branch.facts:
            answered = len(rules.branch.facts) - facts.unanswered_facts
            checklist.append(
                CheckItem(
                    _("相关情况已填写 %(n)d / %(total)d 项", n=answered, total=len(rules.branch.facts)),
                    not facts.unanswered_facts,
                )
            )
        if rules.branch.public is not None:
            checklist.append(
                CheckItem(_("已填写%(label)s", label=rules.branch.public.label), rating.public_rate is not None)
            )
        checklist.append(CheckItem(_("已填写自我荐星说明"), facts.has_statement))
        checklist.append(CheckItem(_("已上传证明材料 %(n)d 份", n=evidence_count), evidence_count > 0, optional=True))

    due = local_day(ctx.round.self_report_due_at, ctx.timezone)
    committee_due = local_day(ctx.round.committee_due_at, ctx.timezone)
    if rating.step is RatingStep.RECOMMEND:
        next_text = _("对照评分标准逐项打分，回答一票否决事项，填写自我荐星说明，于 %(day)s 前提交荐星。", day=due)
    elif rating.step is RatingStep.DELIBERATE:
        next_text = _(
            "召开议星会议，组织党员、群众代表和“两代表一委员”无记名测评，形成支部意见后于 %(day)s 前上报。", day=due
        )
    elif rating.step is RatingStep.ORG_REVIEW:
        next_text = _("等待%(org)s审核后报送工委。", org=middle.name if middle else _("上级党组织"))
    elif rating.step is RatingStep.COMMITTEE:
        next_text = _("等待工委定星，工委于 %(day)s 前反馈结果。", day=committee_due)
    elif finalised:
        next_text = _("评定结果已公布。")
    else:
        next_text = _("工委已定星，待工委统一公布。")

    actions = []
    if rating.step is RatingStep.RECOMMEND:
        actions.append(
            StepAction("submit_recommendation", _("提交荐星"), workflow.refusal("submit_recommendation", facts))
        )
    quarterly = list(
        session.scalars(
            select(QuarterlyReview)
            .where(QuarterlyReview.branch_id == rating.branch_id, QuarterlyReview.year == ctx.round.year)
            .order_by(QuarterlyReview.quarter)
        )
    )
    return Dashboard(
        ctx=ctx,
        step_label=workflow.step_label(rating.step),
        steps=steps,
        checklist=checklist,
        next_text=next_text,
        actions=actions,
        middle=middle,
        previous_label=level_label(rating.previous_level) if rating.previous_level is not None else None,
        proposed_label=level_label(rating.proposed_level) if rating.proposed_level is not None else None,
        opinion_label=level_label(rating.opinion_level) if rating.opinion_level is not None else None,
        decided_label=level_label(rating.decided_level) if rating.decided_level is not None else None,
        evidence_files=evidence_count,
        quarterly=quarterly,
    )


def take_step(session: Session, ctx: RatingContext, name: str, *, version: object) -> BranchResult:
    """A transition from the dashboard's buttons; only 荐星's own belongs to this page."""
    core.ensure_open(ctx.round)
    if name != "submit_recommendation":
        raise ServiceError(_("没有这项操作"))
    return submit(session, ctx, version=version)


# --- the home page's "本支部星级评定" ----------------------------------------------------------------


@dataclass(frozen=True)
class OpenRating:
    rating_id: int
    branch: str
    year: int
    step: RatingStep


def open_ratings(session: Session, branch_ids: Sequence[int]) -> list[OpenRating]:
    """The ratings of open rounds for these branches, newest year first (one query)."""
    if not branch_ids:
        return []
    rows = session.execute(
        select(BranchRating.id, Organisation.name, BranchRound.year, BranchRating.step)
        .join(BranchRound, BranchRating.round_id == BranchRound.id)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .where(BranchRating.branch_id.in_(list(branch_ids)), BranchRound.state == BranchRoundState.OPEN)
        .order_by(BranchRound.year.desc(), Organisation.path)
    )
    return [OpenRating(rating_id, name, year, step) for rating_id, name, year, step in rows]


__all__ = [
    "CheckItem",
    "CriterionRow",
    "Dashboard",
    "IndicatorBlock",
    "InvalidRecommendationError",
    "OpenRating",
    "RatingContext",
    "RecommendPage",
    "RecommendationInput",
    "StepAction",
    "Stored",
    "context_for",
    "dashboard",
    "edit_refusal",
    "evaluate_input",
    "evaluate_stored",
    "form_values",
    "missing_fields",
    "open_ratings",
    "parse",
    "preview",
    "recommend_page",
    "save",
    "stored",
    "submit",
    "take_step",
]
