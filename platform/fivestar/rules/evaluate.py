"""The pure evaluators: scores in, levels and reasons out.  No database, no Flask, no floats.

Order for a branch (documented in ``tenants/README.md``):

1. each indicator's total = sum of its criterion scores (missing = 0), and its medal;
2. raw total = sum of indicator totals; weighted total = (1 − w)·raw + w·rate·maximum when the rules
   weight the public satisfaction rate, else the raw total;
3. score level = highest star band whose inclusive minimum the weighted total reaches;
4. gates: while the level's gates fail, step down one level (then check that level's gates);
5. caps: public-rate caps (rate strictly below ``below``) and vetoes (remove → 0, cap → ≤ n);
6. promotion: no more than ``max_levels_up_per_year`` above last year unless an exception fact holds;
   a new branch gets no star where the rules say so.

Steps 4–6 only ever lower the level and each reduction is explained in ``reasons``.  Scores, facts and
answers are kept apart so that "raising a score never lowers the level" holds by construction: bands,
gates and caps are all monotone in the scores and the rate.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import TypeAlias

from ._reader import fmt, join_path, to_decimal
from .errors import InputError, RuleError, bilingual
from .labels import Medal, level_label, level_label_en, medal_label
from .model import GateContext, Indicator, MemberInputParts, RuleSet, SchemePart

__all__ = [
    "BranchInput",
    "BranchResult",
    "IndicatorResult",
    "MemberInput",
    "MemberResult",
    "Reason",
    "ScoreValue",
    "evaluate_branch",
    "evaluate_member",
]

#: A score as callers may pass it.  ``float`` is deliberately absent (and rejected at run time):
#: 0.1 + 0.2 != 0.3 in binary, and a band edge such as 89.99 vs 90 must never depend on that.
ScoreValue: TypeAlias = Decimal | int | str

_ZERO = Decimal(0)
_PRECISION = 50


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a level is what it is: one rule that fired, the level before and after, and the words.

    ``code`` is stable for programs: ``gate``, ``public_cap``, ``veto``, ``promotion_limit``,
    ``promotion_exception``, ``new_branch``, ``bonus_cap``, ``disqualified``, ``below_lowest``.
    """

    code: str
    rule: str
    from_level: int | None
    to_level: int | None
    zh: str
    en: str

    @property
    def reduced(self) -> bool:
        """True when this rule lowered the level (some reasons are only notes)."""
        return (self.from_level is not None and self.to_level is not None
                and self.to_level < self.from_level)

    def __str__(self) -> str:
        return bilingual(self.zh, self.en)


# -- input checking ---------------------------------------------------------------------------
def _number(value: object, path: str, errors: list[RuleError], *, maximum: Decimal | None,
            minimum: Decimal = _ZERO) -> Decimal | None:
    if isinstance(value, float):
        errors.append(RuleError(path, bilingual(
            "不接受浮点数，请用 Decimal、整数或字符串", "floats are not accepted: pass a Decimal, int or str")))
        return None
    try:
        number = to_decimal(value)
    except ValueError:
        errors.append(RuleError(path, bilingual(f"不是数字：{value!r}", f"not a number: {value!r}")))
        return None
    if number < minimum:
        errors.append(RuleError(path, bilingual(f"{fmt(number)} 小于 {fmt(minimum)}",
                                                f"{fmt(number)} is below {fmt(minimum)}")))
        return None
    if maximum is not None and number > maximum:
        errors.append(RuleError(path, bilingual(f"{fmt(number)} 超过满分 {fmt(maximum)}",
                                                f"{fmt(number)} is above the maximum {fmt(maximum)}")))
        return None
    return number


def _unknown(path: str, key: object, known: Collection[str], errors: list[RuleError]) -> None:
    listed = ", ".join(known) or "-"
    errors.append(RuleError(join_path(path, str(key)), bilingual(
        f"规则中没有此项；可用: {listed}", f"not defined by these rules; known: {listed}")))


def _answers(answers: Mapping[str, bool], path: str, known: Collection[str],
             errors: list[RuleError]) -> dict[str, bool]:
    result: dict[str, bool] = {}
    for key, value in answers.items():
        if key not in known:
            _unknown(path, key, known, errors)
        elif not isinstance(value, bool):
            errors.append(RuleError(join_path(path, key), bilingual("应为 True 或 False",
                                                                    "must be True or False")))
        else:
            result[key] = value
    return result


def _level_input(value: object, path: str, errors: list[RuleError]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        errors.append(RuleError(path, bilingual("星级应为 0 到 5 的整数", "a level is an integer 0..5")))
        return None
    return value


# -- branch -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BranchInput:
    """What the committee knows about one branch for one year.

    ``scores`` maps indicator key → criterion key → score (missing = 0).  ``vetoes`` and ``facts``
    map keys declared by the rules to True/False (missing = False).  ``public_rate`` (0..1) is
    required exactly when the rules have a ``[branch.public]`` table.  ``previous_level`` is last
    year's level (``None`` if unknown); ``is_new`` marks a newly founded branch.
    """

    scores: Mapping[str, Mapping[str, ScoreValue]] = field(default_factory=dict)
    vetoes: Mapping[str, bool] = field(default_factory=dict)
    facts: Mapping[str, bool] = field(default_factory=dict)
    public_rate: ScoreValue | None = None
    previous_level: int | None = None
    is_new: bool = False


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    """One indicator's total (sum of its criteria) and medal (金星/银星/铜星 or none)."""

    key: str
    label: str
    max: Decimal
    total: Decimal
    medal: Medal | None
    criteria: tuple[tuple[str, Decimal], ...]

    @property
    def medal_label(self) -> str:
        return medal_label(self.medal)


@dataclass(frozen=True, slots=True)
class BranchResult:
    """The outcome for a branch, with every intermediate level so pages can show the reasoning."""

    indicators: tuple[IndicatorResult, ...]
    raw_total: Decimal
    public_rate: Decimal | None
    weighted_total: Decimal
    score_level: int
    level_after_gates: int
    level_after_caps: int
    level: int
    reasons: tuple[Reason, ...]
    vetoes_triggered: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``五星`` … ``无星``."""
        return level_label(self.level)

    @property
    def medals(self) -> dict[str, Medal | None]:
        return {i.key: i.medal for i in self.indicators}

    @property
    def reductions(self) -> tuple[Reason, ...]:
        """Only the reasons that lowered the level."""
        return tuple(r for r in self.reasons if r.reduced)


def _branch_scores(rules: RuleSet, inp: BranchInput, errors: list[RuleError]
                   ) -> dict[str, dict[str, Decimal]]:
    branch = rules.branch
    scores: dict[str, dict[str, Decimal]] = {i.key: {} for i in branch.indicators}
    known = [i.key for i in branch.indicators]
    for ikey, criteria in inp.scores.items():
        indicator = branch.indicator(ikey)
        if indicator is None:
            _unknown("scores", ikey, known, errors)
            continue
        if not isinstance(criteria, Mapping):
            errors.append(RuleError(join_path("scores", ikey), bilingual(
                "应为“评分标准键 → 得分”的映射", "must map criterion keys to scores")))
            continue
        for ckey, value in criteria.items():
            criterion = indicator.criterion(ckey)
            path = join_path(join_path("scores", ikey), str(ckey))
            if criterion is None:
                _unknown(join_path("scores", ikey), ckey, [c.key for c in indicator.criteria], errors)
                continue
            number = _number(value, path, errors, maximum=criterion.points)
            if number is not None:
                scores[ikey][ckey] = number
    return scores


def evaluate_branch(rules: RuleSet, inp: BranchInput) -> BranchResult:
    """Rate one branch.  Raises ``InputError`` (a ``ValueError``) listing every bad input field."""
    branch = rules.branch
    errors: list[RuleError] = []
    scores = _branch_scores(rules, inp, errors)
    vetoes = _answers(inp.vetoes, "vetoes", [v.key for v in branch.vetoes], errors)
    facts = _answers(inp.facts, "facts", [f.key for f in branch.facts], errors)
    rate: Decimal | None = None
    if branch.public is not None:
        if inp.public_rate is None:
            errors.append(RuleError("public_rate", bilingual(
                "本规则计入群众满意度，必须提供（0 到 1）", "these rules use the public rate: give it (0..1)")))
        else:
            rate = _number(inp.public_rate, "public_rate", errors, maximum=Decimal(1))
    elif inp.public_rate is not None:
        errors.append(RuleError("public_rate", bilingual(
            "本规则未配置 [branch.public]，不使用群众满意度", "these rules do not use a public rate")))
    previous = _level_input(inp.previous_level, "previous_level", errors)
    if inp.is_new and inp.previous_level is not None:
        errors.append(RuleError("previous_level", bilingual(
            "新建支部没有上年星级", "a new branch (is_new) has no previous level")))
    if errors:
        raise InputError(errors)

    with localcontext() as ctx:
        ctx.prec = _PRECISION
        results = tuple(_indicator_result(i, scores[i.key]) for i in branch.indicators)
        raw = sum((r.total for r in results), _ZERO)
        weighted = raw
        if branch.public is not None and rate is not None and branch.public.weight:
            w = branch.public.weight
            weighted = _tidy((1 - w) * raw + w * rate * branch.total_max)

    reasons: list[Reason] = []
    score_level = branch.stars.level_for(weighted)
    gate_ctx = GateContext(indicator_totals={r.key: r.total for r in results},
                           medals={r.key: r.medal for r in results}, facts=facts, public_rate=rate)
    level = score_level
    while level > 0:
        band = branch.stars.band(level)
        failed = [g for g in band.gates if not g.passes(gate_ctx)] if band else []
        if not failed:
            break
        lower = level - 1 if level - 1 >= branch.stars.lowest_level else 0
        zh = "；".join(g.describe()[0] for g in failed)
        en = "; ".join(g.describe()[1] for g in failed)
        reasons.append(Reason("gate", f"branch.stars.{level}.gates", level, lower,
                              f"未满足{level_label(level)}条件（{zh}），降为{level_label(lower)}",
                              f"{level_label_en(level)} also requires: {en}; lowered to "
                              f"{level_label_en(lower)}"))
        level = lower
    after_gates = level

    if branch.public is not None and rate is not None:
        for i, cap in enumerate(branch.public.caps):
            if rate < cap.below:
                new = min(level, cap.max_level)
                reasons.append(Reason(
                    "public_cap", f"branch.public.caps[{i}]", level, new,
                    f"{cap.label}（{fmt(rate * 100)}% 低于 {fmt(cap.below * 100)}%），最高{level_label(cap.max_level)}",
                    f"public satisfaction {fmt(rate * 100)}% is below {fmt(cap.below * 100)}%: "
                    f"at most {level_label_en(cap.max_level)}"))
                level = new
    triggered: list[str] = []
    for veto in branch.vetoes:
        if vetoes.get(veto.key, False):
            triggered.append(veto.key)
            new = veto.effect.apply(level)
            zh_effect, en_effect = veto.effect.describe()
            reasons.append(Reason("veto", f"branch.vetoes.{veto.key}", level, new,
                                  f"一票否决：{veto.label}，{zh_effect}",
                                  f"veto '{veto.key}': {en_effect}"))
            level = new
    after_caps = level

    promotion = branch.promotion
    if promotion is not None:
        if inp.is_new and promotion.new_branch_no_star:
            if level > 0:
                reasons.append(Reason("new_branch", "branch.promotion.new_branch_no_star", level, 0,
                                      "新建党组织当年只自评、不定星", "a new branch self-assesses but gets no star"))
            level = 0
        elif previous is not None and level > previous + promotion.max_levels_up_per_year:
            limit = previous + promotion.max_levels_up_per_year
            exceptions = [f for f in promotion.exception_facts if facts.get(f, False)]
            if exceptions:
                labels = "、".join(_fact_label(rules, f) for f in exceptions)
                reasons.append(Reason("promotion_exception", "branch.promotion.exception_facts", level, level,
                                      f"破格晋升（{labels}），不受逐级晋升限制",
                                      f"exception ({', '.join(exceptions)}): the one-step limit does not apply"))
            else:
                reasons.append(Reason(
                    "promotion_limit", "branch.promotion.max_levels_up_per_year", level, limit,
                    f"逐级晋升：上年{level_label(previous)}，每年最多升{promotion.max_levels_up_per_year}级，"
                    f"定为{level_label(limit)}",
                    f"one step a year: last year {level_label_en(previous)}, so at most "
                    f"{level_label_en(limit)}"))
                level = limit

    return BranchResult(indicators=results, raw_total=raw, public_rate=rate, weighted_total=weighted,
                        score_level=score_level, level_after_gates=after_gates,
                        level_after_caps=after_caps, level=level, reasons=tuple(reasons),
                        vetoes_triggered=tuple(triggered))


def _tidy(value: Decimal) -> Decimal:
    """Drop trailing zeros that multiplication adds (94.9000 → 94.9) without exponent notation."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _fact_label(rules: RuleSet, key: str) -> str:
    fact = rules.branch.fact(key)
    return fact.label if fact is not None else key


def _indicator_result(indicator: Indicator, given: Mapping[str, Decimal]) -> IndicatorResult:
    per = tuple((c.key, given.get(c.key, _ZERO)) for c in indicator.criteria)
    total = sum((v for _, v in per), _ZERO)
    medal = indicator.medals.medal_for(total) if indicator.medals is not None else None
    return IndicatorResult(key=indicator.key, label=indicator.label, max=indicator.max, total=total,
                           medal=medal, criteria=per)


# -- member -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberInput:
    """One member's round: the mappings the scheme reads (missing = 0), bonus, disqualifiers.

    ``sum_of_aspects``/``named_stars`` read ``aspects``; ``base_plus_adjustments`` reads
    ``additions`` and ``deductions`` (deductions are positive numbers that are subtracted).
    An aspect that has criteria may be given either as its total or per criterion
    (``{"study": {"theory": 8, "practice": 6}}``, each within its points; missing criteria = 0).
    ``bonus`` maps bonus-reason keys to points; ``disqualifiers`` lists keys that apply.
    """

    aspects: Mapping[str, ScoreValue | Mapping[str, ScoreValue]] = field(default_factory=dict)
    additions: Mapping[str, ScoreValue] = field(default_factory=dict)
    deductions: Mapping[str, ScoreValue] = field(default_factory=dict)
    bonus: Mapping[str, ScoreValue] = field(default_factory=dict)
    disqualifiers: Collection[str] = ()


@dataclass(frozen=True, slots=True)
class MemberResult:
    """A member's outcome.  ``level`` is ``None`` when not rated (不予评星)."""

    rated: bool
    level: int | None
    label: str
    scheme_total: Decimal
    bonus_requested: Decimal
    bonus_applied: Decimal
    total: Decimal
    breakdown: tuple[tuple[str, Decimal], ...]
    reasons: tuple[Reason, ...]
    earned_stars: tuple[str, ...] = ()
    disqualifiers: tuple[str, ...] = ()
    talk_due: bool = False
    mentors_due: int = 0
    rectify_days: int | None = None

    @property
    def bonus_capped(self) -> bool:
        """True when the bonus asked for was cut to the rules' cap."""
        return self.bonus_applied < self.bonus_requested


def _criteria_total(part: SchemePart, given: Mapping[str, ScoreValue], path: str,
                    errors: list[RuleError]) -> Decimal | None:
    """An aspect given per criterion (``{"criterion": score}``): each within its points, summed."""
    if not part.criteria:
        errors.append(RuleError(path, bilingual("此项未设评分标准，请给出一个分数",
                                                "this aspect has no criteria: give one number")))
        return None
    total = _ZERO
    ok = True
    for ckey, value in given.items():
        criterion = next((c for c in part.criteria if c.key == ckey), None)
        if criterion is None:
            _unknown(path, ckey, [c.key for c in part.criteria], errors)
            ok = False
            continue
        number = _number(value, join_path(path, str(ckey)), errors, maximum=criterion.points)
        if number is None:
            ok = False
        else:
            total += number
    return total if ok else None


def evaluate_member(rules: RuleSet, inp: MemberInput) -> MemberResult:
    """Rate one member for one round.  Raises ``InputError`` listing every bad input field."""
    member = rules.member
    scheme = member.scheme
    errors: list[RuleError] = []
    parts_by_kind: dict[str, dict[str, Decimal]] = {"aspect": {}, "addition": {}, "deduction": {}}
    for kind, path, given in (("aspect", "aspects", inp.aspects), ("addition", "additions", inp.additions),
                              ("deduction", "deductions", inp.deductions)):
        known = {p.key: p for p in scheme.parts() if p.kind == kind}
        if given and kind not in scheme.input_kinds:
            errors.append(RuleError(path, bilingual(f"评分方式 {scheme.type_name} 不使用此项",
                                                    f"the {scheme.type_name} scheme does not use {path}")))
            continue
        for key, value in given.items():
            part = known.get(key)
            if part is None:
                _unknown(path, key, list(known), errors)
                continue
            if isinstance(value, Mapping):
                number = _criteria_total(part, value, join_path(path, key), errors)
            else:
                number = _number(value, join_path(path, key), errors, maximum=part.max)
            if number is not None:
                parts_by_kind[kind][key] = number
    requested = _ZERO
    if inp.bonus and member.bonus is None:
        errors.append(RuleError("bonus", bilingual("本规则不设加分", "these rules have no bonus")))
    elif member.bonus is not None:
        for key, value in inp.bonus.items():
            reason = member.bonus.reason(key)
            if reason is None:
                _unknown("bonus", key, [r.key for r in member.bonus.reasons], errors)
                continue
            number = _number(value, join_path("bonus", key), errors, maximum=reason.max)
            if number is not None:
                requested += number
    if isinstance(inp.disqualifiers, str):
        errors.append(RuleError("disqualifiers", bilingual("应为键的列表", "must be a collection of keys")))
        dq: list[str] = []
    else:
        dq = []
        for key in inp.disqualifiers:
            if member.disqualifier(key) is None:
                _unknown("disqualifiers", key, [d.key for d in member.disqualifiers], errors)
            elif key not in dq:
                dq.append(key)
    if errors:
        raise InputError(errors)

    with localcontext() as ctx:
        ctx.prec = _PRECISION
        scored = scheme.score(MemberInputParts(aspects=parts_by_kind["aspect"],
                                               additions=parts_by_kind["addition"],
                                               deductions=parts_by_kind["deduction"]))
        applied = min(requested, member.bonus.cap) if member.bonus is not None else _ZERO
        total = scored.total + applied
    reasons: list[Reason] = []
    if applied < requested and member.bonus is not None:
        reasons.append(Reason("bonus_cap", "member.bonus.cap", None, None,
                              f"加分 {fmt(requested)} 超过上限，按 {fmt(member.bonus.cap)} 计",
                              f"bonus {fmt(requested)} is above the cap; counted as {fmt(member.bonus.cap)}"))
    follow = member.follow_up
    if dq:
        for key in dq:
            d = member.disqualifier(key)
            reasons.append(Reason("disqualified", f"member.disqualifiers.{key}", None, None,
                                  f"取消评星资格：{d.label if d else key}，不予评星",
                                  f"disqualified ({key}): not rated this round"))
        return MemberResult(rated=False, level=None, label=level_label(None), scheme_total=scored.total,
                            bonus_requested=requested, bonus_applied=applied, total=total,
                            breakdown=scored.breakdown, reasons=tuple(reasons),
                            earned_stars=scored.earned_stars, disqualifiers=tuple(dq),
                            rectify_days=follow.rectify_days)
    level = member.stars.level_for(total)
    if level == 0:
        lowest = member.stars.bands[-1]
        reasons.append(Reason("below_lowest", f"member.stars.{lowest.level}.min", None, 0,
                              f"总分 {fmt(total)} 低于{level_label(lowest.level)}最低分 {fmt(lowest.min)}，"
                              f"评为{member.below_label}",
                              f"total {fmt(total)} is below the lowest band minimum {fmt(lowest.min)}"))
    talk = follow.talk_at_or_below is not None and level <= follow.talk_at_or_below
    mentors = follow.mentors if (follow.mentor_at_or_below is not None
                                 and level <= follow.mentor_at_or_below) else 0
    return MemberResult(rated=True, level=level, label=level_label(level, "member", member.below_label),
                        scheme_total=scored.total, bonus_requested=requested, bonus_applied=applied,
                        total=total, breakdown=scored.breakdown, reasons=tuple(reasons),
                        earned_stars=scored.earned_stars, talk_due=talk, mentors_due=mentors)
