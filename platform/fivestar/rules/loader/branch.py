"""Loading ``[branch]``: indicators, star bands and gates, vetoes, the public score, quota,
promotion, the 议星 meeting and ballot (checks as in ``tenants/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from itertools import pairwise

from .._reader import Reader, fmt, join_path
from ..labels import level_label
from ..model import (
    Advanced,
    Bands,
    BranchRules,
    Criterion,
    Fact,
    Gate,
    Indicator,
    Medals,
    Meeting,
    Promotion,
    PublicCap,
    PublicScore,
    Quota,
    StarBand,
    Veto,
)
from ..registry import (
    GATE_TYPES,
    QUOTA_MODES,
    QUOTA_ROUNDING,
    VETO_EFFECTS,
    BranchContext,
)
from .ballot import _ballot
from .common import _ZERO, _level_key, _unique


def _branch(r: Reader) -> BranchRules | None:
    quarterly = r.boolean("quarterly_review", default=False)
    declared_total = r.decimal("total_max", required=False, positive=True)
    facts, facts_complete = _facts(r)
    indicators, indicators_complete = _indicators(r)
    total = sum((i.max for i in indicators), _ZERO)
    if declared_total is not None and indicators_complete and declared_total != total:
        r.error(
            "total_max",
            f"{fmt(declared_total)} 与各指标满分之和 {fmt(total)} 不一致",
            f"{fmt(declared_total)} differs from the sum of indicator maxima {fmt(total)}",
        )
    public_r = r.table("public", required=False)
    public = _public(public_r) if public_r else None
    ctx = BranchContext(
        indicators={i.key: i for i in indicators},
        facts={f.key: f for f in facts},
        has_public=public_r is not None,
        indicators_complete=indicators_complete,
        facts_complete=facts_complete,
    )
    stars_r = r.table("stars")
    stars = _bands(stars_r, attainable=total if indicators_complete else None, ctx=ctx) if stars_r else None
    vetoes = _vetoes(r)
    quota_r = r.table("quota", required=False)
    quota = _quota(quota_r) if quota_r else None
    promotion_r = r.table("promotion", required=False)
    promotion = _promotion(promotion_r, ctx) if promotion_r else None
    advanced_r = r.table("advanced", required=False)
    advanced = _advanced(advanced_r) if advanced_r else None
    meeting_r = r.table("meeting", required=False)
    meeting = _meeting(meeting_r) if meeting_r else None
    ballot_r = r.table("ballot", required=False)
    ballot = _ballot(ballot_r) if ballot_r else None
    r.finish()
    if (
        quarterly is None
        or not indicators_complete
        or not facts_complete
        or stars is None
        or vetoes is None
        or (public_r and public is None)
        or (quota_r and quota is None)
        or (promotion_r and promotion is None)
        or (advanced_r and advanced is None)
        or (meeting_r and meeting is None)
        or (ballot_r and ballot is None)
    ):
        return None
    return BranchRules(
        indicators=indicators,
        stars=stars,
        quarterly_review=quarterly,
        facts=facts,
        vetoes=vetoes,
        public=public,
        quota=quota,
        promotion=promotion,
        advanced=advanced,
        meeting=meeting,
        ballot=ballot,
    )


def _labelled(r: Reader, key: str, what_zh: str, what_en: str) -> list[tuple[str, str]] | None:
    """An array of ``{ key, label }`` tables with unique keys; ``None`` if any entry is wrong."""
    readers = r.tables(key)
    if readers is None:
        return None
    seen: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for item in readers:
        item_key = item.key()
        label = item.text("label")
        item.finish()
        unique = _unique(item, item_key, seen, what_zh, what_en)
        if item_key is not None and label is not None and unique:
            pairs.append((item_key, label))
    return pairs if len(pairs) == len(readers) else None


def _facts(r: Reader) -> tuple[tuple[Fact, ...], bool]:
    pairs = _labelled(r, "facts", "事实", "fact")
    if pairs is None:
        return (), False
    return tuple(Fact(key=k, label=v) for k, v in pairs), True


def _indicators(r: Reader) -> tuple[tuple[Indicator, ...], bool]:
    readers = r.tables("indicators", required=True, nonempty=True)
    if not readers:
        return (), False
    seen: dict[str, str] = {}
    result: list[Indicator] = []
    complete = True
    for ir in readers:
        indicator = _indicator(ir)
        raw_key = ir.data.get("key")
        unique = _unique(ir, raw_key if isinstance(raw_key, str) else None, seen, "指标", "indicator")
        if indicator is None or not unique:
            complete = False
            continue
        result.append(indicator)
    return tuple(result), complete


def _indicator(r: Reader) -> Indicator | None:
    key = r.key()
    label = r.text("label")
    maximum = r.decimal("max", positive=True)
    note = r.text("note", required=False, default="", nonempty=False)
    criteria_r = r.tables("criteria", required=True, nonempty=True)
    criteria: list[Criterion] = []
    criteria_ok = criteria_r is not None and len(criteria_r) > 0
    seen: dict[str, str] = {}
    for cr in criteria_r or []:
        ckey = cr.key()
        clabel = cr.text("label")
        points = cr.decimal("points", positive=True)
        guide = cr.text("guide", required=False, default="", nonempty=False)
        cr.finish()
        unique = _unique(cr, ckey, seen, "评分标准", "criterion")
        if ckey is None or clabel is None or points is None or guide is None or not unique:
            criteria_ok = False
            continue
        criteria.append(Criterion(key=ckey, label=clabel, points=points, guide=guide))
    if criteria_ok and maximum is not None:
        total = sum((c.points for c in criteria), _ZERO)
        if total != maximum:
            r.error(
                "criteria",
                f"评分标准分值合计 {fmt(total)} 与指标满分 max = {fmt(maximum)} 不一致",
                f"criteria points add up to {fmt(total)}, but the indicator max is {fmt(maximum)}",
            )
            criteria_ok = False
    medals_r = r.table("medals", required=False)
    medals = _medals(medals_r, maximum) if medals_r else None
    r.finish()
    if (
        key is None
        or label is None
        or maximum is None
        or note is None
        or not criteria_ok
        or (medals_r and medals is None)
    ):
        return None
    return Indicator(key=key, label=label, max=maximum, criteria=tuple(criteria), medals=medals, note=note)


def _medals(r: Reader, maximum: Decimal | None) -> Medals | None:
    values: dict[str, Decimal | None] = {}
    ok = True
    for name in ("gold", "silver", "bronze"):
        values[name] = r.decimal(name, required=False, positive=True)
        if r.has(name) and values[name] is None:
            ok = False
    illustrative = r.boolean("illustrative", default=False)
    r.finish()
    present = [(n, v) for n, v in values.items() if v is not None]
    if ok and not present:
        r.error(None, "至少设置金星、银星、铜星中的一档", "give at least one of gold, silver, bronze")
        ok = False
    names = {"gold": ("金星", "gold"), "silver": ("银星", "silver"), "bronze": ("铜星", "bronze")}
    for name, value in present:
        if maximum is not None and value > maximum:
            r.error(
                name,
                f"{fmt(value)} 高于指标满分 {fmt(maximum)}",
                f"{fmt(value)} is above the indicator maximum {fmt(maximum)}",
            )
            ok = False
    for (hi_name, hi), (lo_name, lo) in pairwise(present):
        if lo >= hi:
            word = "等于" if lo == hi else "高于"
            r.error(
                lo_name,
                f"{fmt(lo)} {word}{names[hi_name][0]}最低分 {fmt(hi)}，应更低",
                f"{fmt(lo)} is {'equal to' if lo == hi else 'above'} the {hi_name} minimum {fmt(hi)}; it must be lower",
            )
            ok = False
    if not ok or illustrative is None:
        return None
    return Medals(gold=values["gold"], silver=values["silver"], bronze=values["bronze"], illustrative=illustrative)


def _bands(r: Reader, *, attainable: Decimal | None, ctx: BranchContext | None) -> Bands | None:
    """Star bands keyed by level; ``ctx`` given ⇒ gates allowed (branch), else not (member)."""
    by_level: dict[int, StarBand] = {}
    ok = True
    for raw_key, value in r.entries():
        level = _level_key(r, raw_key, allow_zero=False)
        if level is None:
            ok = False
            continue
        if not isinstance(value, Mapping):
            r.error(raw_key, f"应为表，如 [{r.at(raw_key)}] min = 80", "must be a table with a min")
            ok = False
            continue
        br = Reader(value, r.at(raw_key), r.errors)
        minimum = br.decimal("min", minimum=_ZERO)
        gates: list[Gate] = []
        if ctx is not None:
            gates_r = br.tables("gates")
            if gates_r is None:
                ok = False
            for gr in gates_r or []:
                gate = _typed_gate(gr, ctx)
                if gate is None:
                    ok = False
                else:
                    gates.append(gate)
        br.finish()
        if minimum is None:
            ok = False
            continue
        by_level[level] = StarBand(level=level, min=minimum, gates=tuple(gates))
    if not by_level and ok:
        r.error(None, "至少需要五星一档", "at least the 5-star band is required")
        return None
    levels = sorted(by_level, reverse=True)
    if by_level and 5 not in by_level:
        r.error(None, '缺少五星档（键 "5"）', 'the 5-star band (key "5") is missing')
        ok = False
    if levels:
        for expected in range(5, levels[-1] - 1, -1):
            if expected not in by_level and expected != 5:
                r.error(
                    None,
                    f"缺少{level_label(expected)}档：星级档须从五星起连续",
                    f"band {expected} is missing: bands must run from 5 down without gaps",
                )
                ok = False
    for higher, lower in pairwise(levels):
        hi, lo = by_level[higher].min, by_level[lower].min
        if lo >= hi:
            word = "等于" if lo == hi else "高于"
            r.error(
                f"{lower}.min",
                f"{fmt(lo)} {word}{level_label(higher)}最低分 {fmt(hi)}",
                f"{fmt(lo)} is {'equal to' if lo == hi else 'above'} the {higher}-star minimum "
                f"{fmt(hi)}; bands must fall strictly with the level",
            )
            ok = False
    if attainable is not None and 5 in by_level and by_level[5].min > attainable:
        r.error(
            "5.min",
            f"{fmt(by_level[5].min)} 高于可能的最高分 {fmt(attainable)}，五星无法达到",
            f"{fmt(by_level[5].min)} is above the highest possible score {fmt(attainable)}",
        )
        ok = False
    if not ok:
        return None
    return Bands(bands=tuple(by_level[lv] for lv in levels))


def _typed_gate(r: Reader, ctx: BranchContext) -> Gate | None:
    name = r.text("type")
    if name is None:
        r.mark_all_used()
        return None
    parser = GATE_TYPES.get(name)
    if parser is None:
        listed = ", ".join(GATE_TYPES.names())
        r.error(
            "type", f"未知条件类型 '{name}'；可用类型: {listed}", f"unknown gate type '{name}'; known types: {listed}"
        )
        r.mark_all_used()
        return None
    gate = parser(r, ctx)
    r.finish()
    return gate


def _vetoes(r: Reader) -> tuple[Veto, ...] | None:
    readers = r.tables("vetoes")
    if readers is None:
        return None
    seen: dict[str, str] = {}
    vetoes: list[Veto] = []
    ok = True
    for vr in readers:
        key = vr.key()
        label = vr.text("label")
        name = vr.text("effect")
        unique = _unique(vr, key, seen, "否决事项", "veto")
        effect = None
        if name is not None:
            parser = VETO_EFFECTS.get(name)
            if parser is None:
                listed = ", ".join(VETO_EFFECTS.names())
                vr.error(
                    "effect",
                    f"未知否决效果 '{name}'；可用: {listed}",
                    f"unknown veto effect '{name}'; known effects: {listed}",
                )
                vr.mark_all_used()
            else:
                effect = parser(vr)
        vr.finish()
        if key is None or label is None or effect is None or not unique:
            ok = False
            continue
        vetoes.append(Veto(key=key, label=label, effect=effect))
    return tuple(vetoes) if ok else None


def _public(r: Reader) -> PublicScore | None:
    weight = r.share("weight")
    label = r.text("label", required=False, default="群众满意度")
    caps_r = r.tables("caps")
    caps: list[PublicCap] = []
    ok = caps_r is not None
    for cr in caps_r or []:
        below = cr.share("below")
        if below is not None and below == 0:
            cr.error("below", "必须大于 0（满意度不可能低于 0）", "must be greater than 0")
            below = None
        max_level = cr.level("max_level", maximum=4)
        default_label = f"群众满意度低于{fmt(below * 100)}%" if below is not None else ""
        cap_label = cr.text("label", required=False, default=default_label)
        cr.finish()
        if below is None or max_level is None or cap_label is None:
            ok = False
            continue
        caps.append(PublicCap(below=below, max_level=max_level, label=cap_label))
    r.finish()
    if weight is None or label is None or not ok:
        return None
    return PublicScore(weight=weight, caps=tuple(caps), label=label)


def _quota(r: Reader) -> Quota | None:
    mode = r.choice("mode", QUOTA_MODES)
    rounding = r.choice("rounding", QUOTA_ROUNDING, required=False, default="floor")
    note = r.text("note", required=False, default="", nonempty=False)
    shares_r = r.table("max_share")
    shares: list[tuple[int, Decimal]] = []
    ok = shares_r is not None
    if shares_r is not None:
        for raw_key, value in shares_r.entries():
            level = _level_key(shares_r, raw_key, allow_zero=True)
            share = shares_r.check_decimal(raw_key, value, minimum=_ZERO, maximum=Decimal(1))
            if level is None or share is None:
                ok = False
                continue
            shares.append((level, share))
        if ok and not shares:
            shares_r.error(None, "至少为一个星级设置比例上限", "give a maximum share for at least one level")
            ok = False
    r.finish()
    if mode is None or rounding is None or note is None or not ok:
        return None
    shares.sort(key=lambda pair: -pair[0])
    return Quota(
        mode="enforced" if mode == "enforced" else "advisory",
        max_share=tuple(shares),
        rounding="half_up" if rounding == "half_up" else "ceil" if rounding == "ceil" else "floor",
        note=note,
    )


def _promotion(r: Reader, ctx: BranchContext) -> Promotion | None:
    step = r.integer("max_levels_up_per_year", minimum=1, maximum=5)
    exceptions = r.text_list("exception_facts")
    ok = exceptions is not None
    for i, fact in enumerate(exceptions or ()):
        if fact not in ctx.facts and ctx.facts_complete:
            listed = ", ".join(ctx.facts) or "-"
            r.error(
                join_path("exception_facts", i),
                f"未在 branch.facts 中声明的事实 '{fact}'；已声明: {listed}",
                f"fact '{fact}' is not declared in branch.facts; declared: {listed}",
            )
            ok = False
    no_star = r.boolean("new_branch_no_star", default=False)
    r.finish()
    if step is None or exceptions is None or no_star is None or not ok:
        return None
    return Promotion(max_levels_up_per_year=step, exception_facts=exceptions, new_branch_no_star=no_star)


def _advanced(r: Reader) -> Advanced | None:
    branch_min = r.level("branch_min_level", required=False, default=5, minimum=1)
    share = r.share("org_min_share")
    share_level = r.level("org_share_min_level", required=False, default=4, minimum=1)
    illustrative = r.boolean("illustrative", default=False)
    r.finish()
    if branch_min is None or share is None or share_level is None or illustrative is None:
        return None
    return Advanced(
        branch_min_level=branch_min, org_min_share=share, org_share_min_level=share_level, illustrative=illustrative
    )


def _meeting(r: Reader) -> Meeting | None:
    share = r.share("public_representatives_min_share")
    r.finish()
    return None if share is None else Meeting(public_representatives_min_share=share)
