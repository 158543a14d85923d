"""荐星: the branch committee scores its own branch, answers the veto questions and gate facts of
the rules, writes its self-recommendation statement (自我荐星说明) and submits. The pages built on it
(the 荐星 page, the branch's dashboard for the year) are in recommend_pages.py.

A draft may be saved any number of times while the rating is at RECOMMEND (incomplete is fine);
`submit` takes the workflow's `submit_recommendation` transition once everything is scored and
answered and before the self-report deadline, storing the rule engine's proposed total and level.

Writes are set-based: a save replaces the rating's `CriterionScore` and `RatingAnswer` rows with
one DELETE and one multi-row INSERT each. Every save bumps the rating's `version` (optimistic
locking): of two people saving at once one wins and the other gets a `ConflictError` (409) with
nothing of theirs written. Services flush, never commit, and refuse with `ServiceError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from fivestar import audit
from fivestar.branch_rounds import core, workflow
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    CriterionScore,
    RatingAnswer,
    RatingStep,
)
from fivestar.branch_rounds.workflow import RatingFacts
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _, current_language
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version as check_version
from fivestar.kernel.versioning import flush_or_stale
from fivestar.rules import BranchResult, InputError, RuleSet, evaluate_branch, level_label, medal_label
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
    flush_or_stale(session, message=_(CONFLICT_MESSAGE))


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


def take_step(session: Session, ctx: RatingContext, name: str, *, version: object) -> BranchResult:
    """A transition from the dashboard's buttons; only 荐星's own belongs to this page."""
    core.ensure_open(ctx.round)
    if name != "submit_recommendation":
        raise ServiceError(_("没有这项操作"))
    return submit(session, ctx, version=version)


__all__ = [
    "InvalidRecommendationError",
    "RatingContext",
    "RecommendationInput",
    "Stored",
    "context_for",
    "edit_refusal",
    "evaluate_input",
    "evaluate_stored",
    "form_values",
    "missing_fields",
    "parse",
    "preview",
    "save",
    "stored",
    "submit",
    "take_step",
]
