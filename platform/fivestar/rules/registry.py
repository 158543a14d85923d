"""Rule *types*: the only code that gives meaning to a rule document.

Documents pick a type by name (``type = "flag"``, ``effect = "cap"``, ``[member.scheme] type =
"base_plus_adjustments"``) and give its parameters; no tenant-supplied code ever runs on the shared
instance.  Adding a new kind of rule means adding a class here, registering it, documenting it in
``tenants/README.md`` and keeping it monotone (a higher score never makes a condition fail).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Generic, Literal, TypeVar

from ._reader import Reader, fmt
from .labels import Medal, level_label, medal_label
from .model import (
    Aspect,
    Criterion,
    Fact,
    Gate,
    GateContext,
    Indicator,
    Json,
    LinearForm,
    MemberInputParts,
    MemberScheme,
    SchemePart,
    SchemeScore,
    VetoEffect,
)

__all__ = [
    "GATE_TYPES",
    "MEMBER_SCHEMES",
    "VETO_EFFECTS",
    "BasePlusAdjustments",
    "BranchContext",
    "CapEffect",
    "FlagGate",
    "MinIndicatorGate",
    "MinMedalsGate",
    "MinPublicRateGate",
    "NamedStars",
    "Registry",
    "RemoveEffect",
    "SumOfAspects",
    "known_types",
]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named rule types of one kind; lookup failures list the known names for the error message."""

    def __init__(self, kind_zh: str, kind_en: str) -> None:
        self.kind_zh = kind_zh
        self.kind_en = kind_en
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind_en} type {name!r} registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._items))

    def __contains__(self, name: object) -> bool:
        return name in self._items


@dataclass(frozen=True)
class BranchContext:
    """What gate parsers may check parameters against (only items that parsed without error)."""

    indicators: Mapping[str, Indicator] = field(default_factory=dict)
    facts: Mapping[str, Fact] = field(default_factory=dict)
    has_public: bool = False
    indicators_complete: bool = True
    facts_complete: bool = True


# -- gates ------------------------------------------------------------------------------------
GateParser = Callable[[Reader, BranchContext], Gate | None]
GATE_TYPES: Registry[GateParser] = Registry("条件类型", "gate")


@dataclass(frozen=True, slots=True)
class FlagGate(Gate):
    """The level needs a yes/no fact to be true (e.g. 有党建创新项目 for 五星, Rule set A)."""

    type_name: ClassVar[str] = "flag"
    fact: str
    label: str

    def passes(self, ctx: GateContext) -> bool:
        return bool(ctx.facts.get(self.fact, False))

    def describe(self) -> tuple[str, str]:
        return (self.label, f"fact '{self.fact}' must be true")

    def params(self) -> dict[str, Json]:
        return {"fact": self.fact}

    @classmethod
    def parse(cls, r: Reader, ctx: BranchContext) -> Gate | None:
        fact = r.key("fact")
        label = r.text("label", required=False)
        if fact is None:
            return None
        known = ctx.facts.get(fact)
        if known is None:
            if ctx.facts_complete:
                listed = ", ".join(ctx.facts) or "-"
                r.error("fact", f"未在 branch.facts 中声明的事实 '{fact}'；已声明: {listed}",
                        f"fact '{fact}' is not declared in branch.facts; declared: {listed}")
            return None
        return cls(fact=fact, label=label or known.label)


@dataclass(frozen=True, slots=True)
class MinIndicatorGate(Gate):
    """The level needs one indicator's total at or above ``min`` (以上: inclusive)."""

    type_name: ClassVar[str] = "min_indicator"
    indicator: str
    min: Decimal
    label: str

    def passes(self, ctx: GateContext) -> bool:
        return ctx.indicator_totals.get(self.indicator, Decimal(0)) >= self.min

    def describe(self) -> tuple[str, str]:
        return (self.label, f"indicator '{self.indicator}' must score at least {fmt(self.min)}")

    def params(self) -> dict[str, Json]:
        return {"indicator": self.indicator, "min": fmt(self.min)}

    @classmethod
    def parse(cls, r: Reader, ctx: BranchContext) -> Gate | None:
        key = r.key("indicator")
        minimum = r.decimal("min", positive=True)
        label = r.text("label", required=False)
        if key is None or minimum is None:
            return None
        indicator = ctx.indicators.get(key)
        if indicator is None:
            if ctx.indicators_complete:
                listed = ", ".join(ctx.indicators)
                r.error("indicator", f"未知指标 '{key}'；已有指标: {listed}",
                        f"unknown indicator '{key}'; indicators: {listed}")
            return None
        if minimum > indicator.max:
            r.error("min", f"{fmt(minimum)} 高于该指标满分 {fmt(indicator.max)}",
                    f"{fmt(minimum)} is above the indicator maximum {fmt(indicator.max)}")
            return None
        return cls(indicator=key, min=minimum,
                   label=label or f"{indicator.label}不低于{fmt(minimum)}分")


@dataclass(frozen=True, slots=True)
class MinPublicRateGate(Gate):
    """The level needs the public satisfaction rate at or above ``min`` (0..1)."""

    type_name: ClassVar[str] = "min_public_rate"
    min: Decimal
    label: str

    def passes(self, ctx: GateContext) -> bool:
        return ctx.public_rate is not None and ctx.public_rate >= self.min

    def describe(self) -> tuple[str, str]:
        return (self.label, f"public satisfaction rate must be at least {fmt(self.min)}")

    def params(self) -> dict[str, Json]:
        return {"min": fmt(self.min)}

    @classmethod
    def parse(cls, r: Reader, ctx: BranchContext) -> Gate | None:
        minimum = r.share("min")
        label = r.text("label", required=False)
        if minimum is None:
            return None
        if not ctx.has_public:
            r.error("type", "使用群众满意度条件须先配置 [branch.public]",
                    "a min_public_rate gate needs a [branch.public] table (the rate must be collected)")
            return None
        percent = fmt(minimum * 100)
        return cls(min=minimum, label=label or f"群众满意度不低于{percent}%")


@dataclass(frozen=True, slots=True)
class MinMedalsGate(Gate):
    """The level needs at least ``count`` indicators with ``medal`` or better (e.g. 3 金星)."""

    type_name: ClassVar[str] = "min_medals"
    medal: Medal
    count: int
    label: str

    def passes(self, ctx: GateContext) -> bool:
        earned = sum(1 for m in ctx.medals.values() if m is not None and m.rank >= self.medal.rank)
        return earned >= self.count

    def describe(self) -> tuple[str, str]:
        return (self.label, f"at least {self.count} indicators with {self.medal.value} or better")

    def params(self) -> dict[str, Json]:
        return {"medal": self.medal.value, "count": self.count}

    @classmethod
    def parse(cls, r: Reader, ctx: BranchContext) -> Gate | None:
        name = r.choice("medal", tuple(m.value for m in Medal))
        count = r.integer("count", minimum=1)
        label = r.text("label", required=False)
        if name is None or count is None:
            return None
        medal = Medal(name)
        possible = sum(1 for i in ctx.indicators.values()
                       if i.medals is not None and any(m.rank >= medal.rank for m, _ in i.medals.bands()))
        if ctx.indicators_complete and count > possible:
            r.error("count", f"只有 {possible} 个指标可能获得{medal_label(medal)}或更高，{count} 无法达到",
                    f"only {possible} indicators can earn {medal.value} or better; {count} is unreachable")
            return None
        return cls(medal=medal, count=count, label=label or f"至少{count}项指标获得{medal_label(medal)}及以上")


for _gate in (FlagGate, MinIndicatorGate, MinPublicRateGate, MinMedalsGate):
    GATE_TYPES.add(_gate.type_name, _gate.parse)


# -- veto effects -----------------------------------------------------------------------------
EffectParser = Callable[[Reader], VetoEffect | None]
VETO_EFFECTS: Registry[EffectParser] = Registry("否决效果", "veto effect")


@dataclass(frozen=True, slots=True)
class RemoveEffect(VetoEffect):
    """The veto removes the rating: level 0 (无星)."""

    type_name: ClassVar[str] = "remove"

    def apply(self, level: int) -> int:
        return 0

    def describe(self) -> tuple[str, str]:
        return ("取消星级（无星）", "removes the rating (no star)")

    def params(self) -> dict[str, Json]:
        return {}

    @classmethod
    def parse(cls, r: Reader) -> VetoEffect | None:
        return cls()


@dataclass(frozen=True, slots=True)
class CapEffect(VetoEffect):
    """The veto caps the rating at ``max_level`` (石景山: vetoed organisations at most 三星)."""

    type_name: ClassVar[str] = "cap"
    max_level: int

    def apply(self, level: int) -> int:
        return min(level, self.max_level)

    def describe(self) -> tuple[str, str]:
        return (f"最高评为{level_label(self.max_level)}", f"caps the rating at level {self.max_level}")

    def params(self) -> dict[str, Json]:
        return {"max_level": self.max_level}

    @classmethod
    def parse(cls, r: Reader) -> VetoEffect | None:
        level = r.level("max_level", maximum=4)
        return None if level is None else cls(max_level=level)


VETO_EFFECTS.add(RemoveEffect.type_name, RemoveEffect.parse)
VETO_EFFECTS.add(CapEffect.type_name, CapEffect.parse)


# -- member schemes ---------------------------------------------------------------------------
MEMBER_SCHEMES: Registry[type[MemberScheme]] = Registry("党员评分方式", "member scheme")


def _parse_criteria(r: Reader, maximum: Decimal | None) -> tuple[Criterion, ...] | None:
    """An aspect's optional ``criteria`` (评分标准): unique keys, points > 0 adding up to ``max``.

    Same checks and messages as a branch indicator's criteria, so a committee reads one kind of
    error for both.  ``()`` when the aspect has none; ``None`` after recording an error.
    """
    readers = r.tables("criteria")
    if readers is None:
        return None
    if not readers:
        if r.has("criteria"):
            r.error("criteria", "至少需要一项；不分评分标准时请删除 criteria",
                    "must have at least one entry (leave criteria out to score the aspect as one number)")
            return None
        return ()
    seen: dict[str, str] = {}
    criteria: list[Criterion] = []
    ok = True
    for cr in readers:
        ckey = cr.key()
        clabel = cr.text("label")
        points = cr.decimal("points", positive=True)
        guide = cr.text("guide", required=False, default="", nonempty=False)
        cr.finish()
        if ckey is not None and ckey in seen:
            cr.error("key", f"评分标准键 '{ckey}' 重复（已用于 {seen[ckey]}）",
                     f"duplicate criterion key '{ckey}' (already used at {seen[ckey]})")
            ok = False
            continue
        if ckey is None or clabel is None or points is None or guide is None:
            ok = False
            continue
        seen[ckey] = cr.path
        criteria.append(Criterion(key=ckey, label=clabel, points=points, guide=guide))
    if len(criteria) != len(readers):
        ok = False
    if ok and maximum is not None:
        total = sum((c.points for c in criteria), Decimal(0))
        if total != maximum:
            r.error("criteria", f"评分标准分值合计 {fmt(total)} 与满分 max = {fmt(maximum)} 不一致",
                    f"criteria points add up to {fmt(total)}, but the max is {fmt(maximum)}")
            ok = False
    return tuple(criteria) if ok else None


def _parse_items(r: Reader, key: str, *, nonempty: bool, star_min: bool = False,
                 seen: dict[str, str] | None = None, criteria: bool = False) -> tuple[Aspect, ...] | None:
    """Parse a list of ``{key, label, max[, guide][, star_min][, criteria]}`` tables with unique keys.

    ``criteria`` allows member aspects to be split into scoring criteria (additions and deductions
    are not: they are counted, not graded).
    """
    readers = r.tables(key, required=nonempty, nonempty=nonempty)
    if readers is None:
        return None
    seen = {} if seen is None else seen
    items: list[Aspect] = []
    ok = True
    for ir in readers:
        item_key = ir.key()
        label = ir.text("label")
        maximum = ir.decimal("max", positive=True)
        guide = ir.text("guide", required=False, default="", nonempty=False)
        minimum = ir.decimal("star_min", positive=True) if star_min else None
        parsed_criteria = _parse_criteria(ir, maximum) if criteria else ()
        ir.finish()
        if parsed_criteria is None:
            ok = False
        if item_key is not None:
            if item_key in seen:
                ir.error("key", f"键 '{item_key}' 重复（已用于 {seen[item_key]}）",
                         f"duplicate key '{item_key}' (already used at {seen[item_key]})")
                ok = False
            else:
                seen[item_key] = ir.path
        if minimum is not None and maximum is not None and minimum > maximum:
            ir.error("star_min", f"{fmt(minimum)} 高于满分 {fmt(maximum)}",
                     f"{fmt(minimum)} is above the maximum {fmt(maximum)}")
            ok = False
        if item_key is None or label is None or maximum is None or guide is None or (
                star_min and minimum is None):
            ok = False
            continue
        items.append(Aspect(key=item_key, label=label, max=maximum, guide=guide, star_min=minimum,
                            criteria=parsed_criteria or ()))
    return tuple(items) if ok else None


@dataclass(frozen=True, slots=True)
class SumOfAspects(MemberScheme):
    """Total = sum of the aspect scores (the notice: 学习/敬业/效能/服务/廉洁)."""

    type_name: ClassVar[str] = "sum_of_aspects"
    input_kinds: ClassVar[tuple[Literal["aspect", "addition", "deduction"], ...]] = ("aspect",)
    aspects: tuple[Aspect, ...]

    def parts(self) -> tuple[SchemePart, ...]:
        return tuple(SchemePart("aspect", a.key, a.label, a.max, a.criteria) for a in self.aspects)

    def max_total(self) -> Decimal | None:
        return sum((a.max for a in self.aspects), Decimal(0))

    def linear_form(self) -> LinearForm | None:
        return LinearForm(constant=Decimal(0), signs=(("aspect", 1),))

    def score(self, parts: MemberInputParts) -> SchemeScore:
        breakdown = tuple((a.key, parts.aspects.get(a.key, Decimal(0))) for a in self.aspects)
        return SchemeScore(total=sum((v for _, v in breakdown), Decimal(0)), breakdown=breakdown)

    def describe(self) -> tuple[str, str]:
        return ("各方面得分之和", "sum of aspect scores")

    def params(self) -> dict[str, Json]:
        return {"aspects": [a.to_document() for a in self.aspects]}

    @classmethod
    def parse(cls, r: Reader) -> MemberScheme | None:
        aspects = _parse_items(r, "aspects", nonempty=True, criteria=True)
        return None if aspects is None else cls(aspects=aspects)


@dataclass(frozen=True, slots=True)
class BasePlusAdjustments(MemberScheme):
    """Total = base + additions − deductions (华宁: base 60, each branch's 加减分细则)."""

    type_name: ClassVar[str] = "base_plus_adjustments"
    input_kinds: ClassVar[tuple[Literal["aspect", "addition", "deduction"], ...]] = (
        "addition", "deduction")
    base: Decimal
    additions: tuple[Aspect, ...]
    deductions: tuple[Aspect, ...]

    def parts(self) -> tuple[SchemePart, ...]:
        return (tuple(SchemePart("addition", a.key, a.label, a.max) for a in self.additions)
                + tuple(SchemePart("deduction", d.key, d.label, d.max) for d in self.deductions))

    def max_total(self) -> Decimal | None:
        return self.base + sum((a.max for a in self.additions), Decimal(0))

    def linear_form(self) -> LinearForm | None:
        return LinearForm(constant=self.base, signs=(("addition", 1), ("deduction", -1)))

    def score(self, parts: MemberInputParts) -> SchemeScore:
        adds = tuple((a.key, parts.additions.get(a.key, Decimal(0))) for a in self.additions)
        deds = tuple((d.key, -parts.deductions.get(d.key, Decimal(0))) for d in self.deductions)
        total = self.base + sum((v for _, v in adds + deds), Decimal(0))
        return SchemeScore(total=total, breakdown=(("base", self.base), *adds, *deds))

    def describe(self) -> tuple[str, str]:
        return (f"基础分{fmt(self.base)}加减分", f"base {fmt(self.base)} plus additions minus deductions")

    def params(self) -> dict[str, Json]:
        return {"base": fmt(self.base), "additions": [a.to_document() for a in self.additions],
                "deductions": [d.to_document() for d in self.deductions]}

    @classmethod
    def parse(cls, r: Reader) -> MemberScheme | None:
        base = r.decimal("base", minimum=Decimal(0))
        seen: dict[str, str] = {}
        additions = _parse_items(r, "additions", nonempty=False, seen=seen)
        deductions = _parse_items(r, "deductions", nonempty=False, seen=seen)
        if base is None or additions is None or deductions is None:
            return None
        if not additions and not deductions:
            r.error("additions", "加分项和减分项至少配置一项", "give at least one addition or deduction")
            return None
        return cls(base=base, additions=additions, deductions=deductions)


@dataclass(frozen=True, slots=True)
class NamedStars(MemberScheme):
    """Each aspect at or above its ``star_min`` earns its named star; total = number of stars.

    Rule set D: 学习提高星, 文明和谐星, 服务奉献星, 爱岗敬业星, 廉洁自律星 every half year.  The star
    bands then read "5 stars earned → 五星" etc.  Bonus points do not apply (they would add to a count).
    """

    type_name: ClassVar[str] = "named_stars"
    input_kinds: ClassVar[tuple[Literal["aspect", "addition", "deduction"], ...]] = ("aspect",)
    allows_bonus: ClassVar[bool] = False
    aspects: tuple[Aspect, ...]

    def parts(self) -> tuple[SchemePart, ...]:
        return tuple(SchemePart("aspect", a.key, a.label, a.max, a.criteria) for a in self.aspects)

    def max_total(self) -> Decimal | None:
        return Decimal(len(self.aspects))

    def score(self, parts: MemberInputParts) -> SchemeScore:
        breakdown = tuple((a.key, parts.aspects.get(a.key, Decimal(0))) for a in self.aspects)
        earned = tuple(a.key for a, (_, v) in zip(self.aspects, breakdown, strict=True)
                       if a.star_min is not None and v >= a.star_min)
        return SchemeScore(total=Decimal(len(earned)), breakdown=breakdown, earned_stars=earned)

    def describe(self) -> tuple[str, str]:
        return ("按获得的单项星数计", "number of named stars earned")

    def params(self) -> dict[str, Json]:
        return {"aspects": [a.to_document() for a in self.aspects]}

    @classmethod
    def parse(cls, r: Reader) -> MemberScheme | None:
        aspects = _parse_items(r, "aspects", nonempty=True, star_min=True, criteria=True)
        return None if aspects is None else cls(aspects=aspects)


for _scheme in (SumOfAspects, BasePlusAdjustments, NamedStars):
    MEMBER_SCHEMES.add(_scheme.type_name, _scheme)

QUOTA_MODES: tuple[str, ...] = ("advisory", "enforced")
QUOTA_ROUNDING: tuple[str, ...] = ("floor", "half_up", "ceil")
CADENCES: tuple[str, ...] = ("quarter", "half_year", "year")
OPENING_RULES: tuple[str, ...] = ("first_working_day_after_period", "first_day_after_period")


def known_types() -> dict[str, tuple[str, ...]]:
    """Every registered type name by kind (for documentation, the CLI and error messages)."""
    return {"gate": GATE_TYPES.names(), "veto_effect": VETO_EFFECTS.names(),
            "member_scheme": MEMBER_SCHEMES.names(), "quota_mode": QUOTA_MODES,
            "quota_rounding": QUOTA_ROUNDING, "cadence": CADENCES, "opening_rule": OPENING_RULES}
