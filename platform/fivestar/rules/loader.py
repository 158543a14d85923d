"""Loading and validating rule-set documents (TOML text, a file, or an already-parsed mapping).

Every check from ``tenants/README.md`` lives here.  Problems are collected, not raised one at a
time; when anything is wrong a ``RuleSetError`` lists them all, each with its path.
"""

from __future__ import annotations

import calendar
import tomllib
import zoneinfo
from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from ._reader import Reader, fmt, join_path
from .errors import RuleError, RuleSetError, bilingual
from .labels import level_label
from .model import (
    BALLOT_GROUPS,
    DEFAULT_JOINT_TOLERANCE,
    FORMAT_VERSION,
    Advanced,
    BallotChoice,
    BallotRules,
    BallotSatisfaction,
    Bands,
    Bonus,
    BonusReason,
    BranchRules,
    BranchSchedule,
    Criterion,
    Disqualifier,
    Fact,
    FollowUp,
    Gate,
    Indicator,
    Medals,
    Meeting,
    MemberRules,
    MemberSchedule,
    MemberScheme,
    Meta,
    MonthDay,
    Promotion,
    PublicCap,
    PublicNotice,
    PublicScore,
    Quota,
    Reminders,
    RuleSet,
    Schedule,
    StarBand,
    Veto,
)
from .registry import (
    CADENCES,
    GATE_TYPES,
    MEMBER_SCHEMES,
    OPENING_RULES,
    QUOTA_MODES,
    QUOTA_ROUNDING,
    VETO_EFFECTS,
    BranchContext,
)

__all__ = ["load_rules", "load_rules_data", "load_rules_file"]

_ZERO = Decimal(0)
_NINE = time(9, 0)


def load_rules(text: str) -> RuleSet:
    """Parse TOML text into a validated ``RuleSet`` or raise ``RuleSetError`` listing every problem.

    TOML floats are read straight into ``Decimal`` (``parse_float=Decimal``), so ``89.99`` stays
    exactly 89.99.
    """
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError([RuleError("", bilingual(f"不是有效的 TOML：{exc}", f"not valid TOML: {exc}"))]
                           ) from None
    return load_rules_data(data)


def load_rules_file(path: str | Path) -> RuleSet:
    """Read a UTF-8 TOML file and load it; unreadable or non-UTF-8 files raise ``RuleSetError`` too."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RuleSetError([RuleError("", bilingual(f"无法读取文件 {file}：{reason}",
                                                    f"cannot read {file}: {reason}"))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleSetError([RuleError("", bilingual(
            f"文件不是 UTF-8 编码（第 {exc.start} 字节）", f"file is not UTF-8 (byte {exc.start})"))]) from None
    return load_rules(text.removeprefix("\ufeff"))


def load_rules_data(data: Mapping[str, object]) -> RuleSet:
    """Validate an already-parsed document (TOML tables or the JSON from ``RuleSet.to_document()``)."""
    errors: list[RuleError] = []
    root = Reader(data, "", errors)
    meta_r = root.table("meta")
    branch_r = root.table("branch")
    member_r = root.table("member")
    schedule_r = root.table("schedule")
    meta = _meta(meta_r) if meta_r else None
    branch = _branch(branch_r) if branch_r else None
    member = _member(member_r) if member_r else None
    schedule = _schedule(schedule_r) if schedule_r else None
    root.finish()
    if errors or meta is None or branch is None or member is None or schedule is None:
        raise RuleSetError(errors or [RuleError("", bilingual("无效的规则文件", "invalid rule set"))])
    return RuleSet(meta=meta, branch=branch, member=member, schedule=schedule)


# -- helpers ----------------------------------------------------------------------------------
def _unique(r: Reader, key: str | None, seen: dict[str, str], what_zh: str, what_en: str) -> bool:
    """Record ``key`` of the item read by ``r``; report a duplicate naming where it was first used."""
    if key is None:
        return False
    if key in seen:
        r.error("key", f"{what_zh}键 '{key}' 重复（已用于 {seen[key]}）",
                f"duplicate {what_en} key '{key}' (already used at {seen[key]})")
        return False
    seen[key] = r.path
    return True


def _level_key(r: Reader, raw_key: str, *, allow_zero: bool) -> int | None:
    """A table key that names a level ("1".."5", or "0".."5" where ``allow_zero``)."""
    low = 0 if allow_zero else 1
    if raw_key.isdigit() and len(raw_key) == 1 and low <= int(raw_key) <= 5:
        return int(raw_key)
    if raw_key == "0" and not allow_zero:
        r.error(raw_key, "无星不设档：低于最低一档即为无星（或 below_label 所称）",
                "level 0 has no band: scores below the lowest band are level 0")
    else:
        r.error(raw_key, f"星级键须为 {low} 到 5 的数字", f"level keys must be the digits {low} to 5")
    return None


# -- meta -------------------------------------------------------------------------------------
def _meta(r: Reader) -> Meta | None:
    version = r.integer("format_version")
    if version is not None and version != FORMAT_VERSION:
        r.error("format_version", f"不支持的格式版本 {version}；当前为 {FORMAT_VERSION}",
                f"unsupported format version {version}; this engine reads {FORMAT_VERSION}")
        version = None
    name = r.text("name")
    description = r.text("description", required=False, default="", nonempty=False)
    sources = r.text_list("sources")
    if sources:
        for i, url in enumerate(sources):
            if not url.startswith(("http://", "https://")):
                r.error(join_path("sources", i), f"'{url}' 不是 http(s) 网址", "must be an http(s) URL")
    illustrative = r.boolean("illustrative", default=False)
    notes = r.text("notes", required=False, default="", nonempty=False)
    r.finish()
    if version is None or name is None or description is None or sources is None \
            or illustrative is None or notes is None:
        return None
    return Meta(format_version=version, name=name, description=description, sources=sources,
                illustrative=illustrative, notes=notes)


# -- branch -----------------------------------------------------------------------------------
def _branch(r: Reader) -> BranchRules | None:
    quarterly = r.boolean("quarterly_review", default=False)
    declared_total = r.decimal("total_max", required=False, positive=True)
    facts, facts_complete = _facts(r)
    indicators, indicators_complete = _indicators(r)
    total = sum((i.max for i in indicators), _ZERO)
    if declared_total is not None and indicators_complete and declared_total != total:
        r.error("total_max", f"{fmt(declared_total)} 与各指标满分之和 {fmt(total)} 不一致",
                f"{fmt(declared_total)} differs from the sum of indicator maxima {fmt(total)}")
    public_r = r.table("public", required=False)
    public = _public(public_r) if public_r else None
    ctx = BranchContext(indicators={i.key: i for i in indicators}, facts={f.key: f for f in facts},
                        has_public=public_r is not None, indicators_complete=indicators_complete,
                        facts_complete=facts_complete)
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
    if (quarterly is None or not indicators_complete or not facts_complete or stars is None
            or vetoes is None or (public_r and public is None) or (quota_r and quota is None)
            or (promotion_r and promotion is None) or (advanced_r and advanced is None)
            or (meeting_r and meeting is None) or (ballot_r and ballot is None)):
        return None
    return BranchRules(indicators=indicators, stars=stars, quarterly_review=quarterly, facts=facts,
                       vetoes=vetoes, public=public, quota=quota, promotion=promotion,
                       advanced=advanced, meeting=meeting, ballot=ballot)


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
            r.error("criteria", f"评分标准分值合计 {fmt(total)} 与指标满分 max = {fmt(maximum)} 不一致",
                    f"criteria points add up to {fmt(total)}, but the indicator max is {fmt(maximum)}")
            criteria_ok = False
    medals_r = r.table("medals", required=False)
    medals = _medals(medals_r, maximum) if medals_r else None
    r.finish()
    if key is None or label is None or maximum is None or note is None or not criteria_ok \
            or (medals_r and medals is None):
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
            r.error(name, f"{fmt(value)} 高于指标满分 {fmt(maximum)}",
                    f"{fmt(value)} is above the indicator maximum {fmt(maximum)}")
            ok = False
    for (hi_name, hi), (lo_name, lo) in pairwise(present):
        if lo >= hi:
            word = "等于" if lo == hi else "高于"
            r.error(lo_name, f"{fmt(lo)} {word}{names[hi_name][0]}最低分 {fmt(hi)}，应更低",
                    f"{fmt(lo)} is {'equal to' if lo == hi else 'above'} the {hi_name} minimum "
                    f"{fmt(hi)}; it must be lower")
            ok = False
    if not ok or illustrative is None:
        return None
    return Medals(gold=values["gold"], silver=values["silver"], bronze=values["bronze"],
                  illustrative=illustrative)


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
        r.error(None, "缺少五星档（键 \"5\"）", "the 5-star band (key \"5\") is missing")
        ok = False
    if levels:
        for expected in range(5, levels[-1] - 1, -1):
            if expected not in by_level and expected != 5:
                r.error(None, f"缺少{level_label(expected)}档：星级档须从五星起连续",
                        f"band {expected} is missing: bands must run from 5 down without gaps")
                ok = False
    for higher, lower in pairwise(levels):
        hi, lo = by_level[higher].min, by_level[lower].min
        if lo >= hi:
            word = "等于" if lo == hi else "高于"
            r.error(f"{lower}.min", f"{fmt(lo)} {word}{level_label(higher)}最低分 {fmt(hi)}",
                    f"{fmt(lo)} is {'equal to' if lo == hi else 'above'} the {higher}-star minimum "
                    f"{fmt(hi)}; bands must fall strictly with the level")
            ok = False
    if attainable is not None and 5 in by_level and by_level[5].min > attainable:
        r.error("5.min", f"{fmt(by_level[5].min)} 高于可能的最高分 {fmt(attainable)}，五星无法达到",
                f"{fmt(by_level[5].min)} is above the highest possible score {fmt(attainable)}")
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
        r.error("type", f"未知条件类型 '{name}'；可用类型: {listed}",
                f"unknown gate type '{name}'; known types: {listed}")
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
                vr.error("effect", f"未知否决效果 '{name}'；可用: {listed}",
                         f"unknown veto effect '{name}'; known effects: {listed}")
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
    return Quota(mode="enforced" if mode == "enforced" else "advisory", max_share=tuple(shares),
                 rounding="half_up" if rounding == "half_up" else "ceil" if rounding == "ceil" else "floor",
                 note=note)


def _promotion(r: Reader, ctx: BranchContext) -> Promotion | None:
    step = r.integer("max_levels_up_per_year", minimum=1, maximum=5)
    exceptions = r.text_list("exception_facts")
    ok = exceptions is not None
    for i, fact in enumerate(exceptions or ()):
        if fact not in ctx.facts and ctx.facts_complete:
            listed = ", ".join(ctx.facts) or "-"
            r.error(join_path("exception_facts", i), f"未在 branch.facts 中声明的事实 '{fact}'；已声明: {listed}",
                    f"fact '{fact}' is not declared in branch.facts; declared: {listed}")
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
    return Advanced(branch_min_level=branch_min, org_min_share=share, org_share_min_level=share_level,
                    illustrative=illustrative)


def _meeting(r: Reader) -> Meeting | None:
    share = r.share("public_representatives_min_share")
    r.finish()
    return None if share is None else Meeting(public_representatives_min_share=share)


_MAX_MIN_BALLOTS = 1000
_MAX_SCALE_VALUE = 100


def _ballot(r: Reader) -> BallotRules | None:
    """``[branch.ballot]``: the 议星 meeting's anonymous ballot (see tenants/README.md)."""
    form = r.choice("form", ("level", "indicators"))
    min_ballots = r.integer("min_ballots", minimum=1, maximum=_MAX_MIN_BALLOTS)
    illustrative = r.boolean("illustrative", default=False)
    note = r.text("note", required=False, default="", nonempty=False)
    weights_ok, weights = _ballot_weights(r)
    scale_ok, scale = _ballot_scale(r, form)
    satisfaction_r = r.table("satisfaction", required=False)
    satisfaction = _ballot_satisfaction(satisfaction_r, form, scale) if satisfaction_r else None
    r.finish()
    if (form is None or min_ballots is None or illustrative is None or note is None or not weights_ok
            or not scale_ok or (satisfaction_r and satisfaction is None)):
        return None
    return BallotRules(form="indicators" if form == "indicators" else "level", min_ballots=min_ballots,
                       weights=weights, scale=scale, satisfaction=satisfaction,
                       illustrative=illustrative, note=note)


def _ballot_weights(r: Reader) -> tuple[bool, tuple[tuple[str, Decimal], ...]]:
    """Group → share, summing exactly to 1; a group left out has weight 0 (shown, not weighted)."""
    t = r.table("weights", required=False)
    if t is None:
        return not r.has("weights"), ()
    found: dict[str, Decimal] = {}
    ok = True
    for raw_key, value in t.entries():
        if raw_key not in BALLOT_GROUPS:
            listed = ", ".join(BALLOT_GROUPS)
            t.error(raw_key, f"未知测评群体；可用: {listed}", f"unknown voter group; known groups: {listed}")
            ok = False
            continue
        share = t.check_decimal(raw_key, value, minimum=_ZERO, maximum=Decimal(1))
        if share is None:
            ok = False
            continue
        found[raw_key] = share
    if not ok:
        return False, ()
    total = sum(found.values(), _ZERO)
    if not found or total != 1:
        t.error(None, f"各群体权重之和为 {fmt(total)}，应恰好为 1",
                f"the group weights add up to {fmt(total)}; they must add up to exactly 1")
        return False, ()
    return True, tuple((g, found[g]) for g in BALLOT_GROUPS if g in found)


def _ballot_scale(r: Reader, form: str | None) -> tuple[bool, tuple[BallotChoice, ...]]:
    """The answers of the indicators form, best first; the level form's answers are the levels."""
    if form == "level":
        if r.has("scale"):
            r.raw("scale")
            r.error("scale", "按星级测评（form = \"level\"）时不设 scale：选项即五星至无星",
                    "the level form takes no scale: its answers are the levels 5 to 0")
            return False, ()
        return True, ()
    readers = r.tables("scale", required=form == "indicators", nonempty=True)
    if readers is None:
        return False, ()
    if form is None:
        return True, ()
    choices: list[BallotChoice] = []
    ok = len(readers) >= 2
    if not ok and readers:
        r.error("scale", "至少需要两个选项", "give at least two answers")
    seen_labels: set[str] = set()
    for cr in readers:
        value = cr.integer("value", minimum=0, maximum=_MAX_SCALE_VALUE)
        label = cr.text("label")
        cr.finish()
        if value is None or label is None:
            ok = False
            continue
        if label in seen_labels:
            cr.error("label", f"选项“{label}”重复", f"answer '{label}' is listed twice")
            ok = False
            continue
        if choices and value >= choices[-1].value:
            cr.error("value", f"{value} 不低于上一项 {choices[-1].value}：选项须从好到差、分值依次降低",
                     f"{value} is not below the previous answer's {choices[-1].value}; list answers "
                     "best first with strictly falling values")
            ok = False
            continue
        seen_labels.add(label)
        choices.append(BallotChoice(value=value, label=label))
    return ok, tuple(choices) if ok else ()


def _ballot_satisfaction(r: Reader, form: str | None, scale: tuple[BallotChoice, ...]
                         ) -> BallotSatisfaction | None:
    min_value = r.integer("min_value", minimum=0, maximum=_MAX_SCALE_VALUE)
    groups = r.text_list("groups")
    r.finish()
    if groups is not None:
        unknown = [g for g in groups if g not in BALLOT_GROUPS]
        if unknown:
            listed = ", ".join(BALLOT_GROUPS)
            r.error("groups", f"未知测评群体 {', '.join(unknown)}；可用: {listed}",
                    f"unknown voter group {', '.join(unknown)}; known groups: {listed}")
            groups = None
        elif len(set(groups)) != len(groups):
            r.error("groups", "测评群体重复", "a group is listed twice")
            groups = None
    if min_value is not None:
        values = tuple(c.value for c in scale) if form == "indicators" else tuple(range(6))
        if values and not min(values) < min_value <= max(values):
            low, high = min(values), max(values)
            r.error("min_value", f"{min_value} 须大于最低选项 {low} 且不高于最高选项 {high}",
                    f"{min_value} must be above the lowest answer {low} and at most the highest {high}")
            min_value = None
    if min_value is None or groups is None:
        return None
    return BallotSatisfaction(min_value=min_value, groups=groups or ("public",))


# -- member -----------------------------------------------------------------------------------
def _member(r: Reader) -> MemberRules | None:
    cadence = r.choice("cadence", CADENCES)
    scheme_r = r.table("scheme")
    scheme = _scheme(scheme_r) if scheme_r else None
    bonus_r = r.table("bonus", required=False)
    bonus = _bonus(bonus_r) if bonus_r else None
    raw_type = scheme_r.data.get("type") if scheme_r else None
    scheme_cls = MEMBER_SCHEMES.get(raw_type) if isinstance(raw_type, str) else None
    if bonus_r is not None and scheme_cls is not None and not scheme_cls.allows_bonus:
        name = scheme_cls.type_name
        bonus_r.error(None, f"评分方式 {name} 不能加分（总分是获得的星数）",
                      f"the {name} scheme takes no bonus (its total is a count of stars)")
        bonus = None
    attainable: Decimal | None = None
    if scheme is not None and (bonus_r is None or bonus is not None):
        top = scheme.max_total()
        if top is not None:
            attainable = top + (bonus.cap if bonus else _ZERO)
    stars_r = r.table("stars")
    stars = _bands(stars_r, attainable=attainable, ctx=None) if stars_r else None
    below = r.text("below_label", required=False, default="无星")
    disqualifiers = _disqualifiers(r)
    follow_r = r.table("follow_up", required=False)
    follow = _follow_up(follow_r) if follow_r else FollowUp()
    quota_r = r.table("quota", required=False)
    quota = _quota(quota_r) if quota_r else None
    meeting_r = r.table("meeting", required=False)
    meeting = _meeting(meeting_r) if meeting_r else None
    tolerance = r.decimal("joint_tolerance", required=False, default=DEFAULT_JOINT_TOLERANCE,
                          minimum=_ZERO, maximum=attainable)
    r.finish()
    if (cadence is None or scheme is None or stars is None or below is None or disqualifiers is None
            or follow is None or (bonus_r and bonus is None) or (quota_r and quota is None)
            or (meeting_r and meeting is None) or tolerance is None):
        return None
    return MemberRules(cadence="quarter" if cadence == "quarter" else
                       "half_year" if cadence == "half_year" else "year",
                       scheme=scheme, stars=stars, below_label=below, bonus=bonus,
                       disqualifiers=disqualifiers, follow_up=follow, quota=quota, meeting=meeting,
                       joint_tolerance=tolerance)


def _scheme(r: Reader) -> MemberScheme | None:
    name = r.text("type")
    if name is None:
        r.mark_all_used()
        return None
    scheme_cls = MEMBER_SCHEMES.get(name)
    if scheme_cls is None:
        listed = ", ".join(MEMBER_SCHEMES.names())
        r.error("type", f"未知评分方式 '{name}'；可用: {listed}",
                f"unknown member scheme '{name}'; known schemes: {listed}")
        r.mark_all_used()
        return None
    scheme = scheme_cls.parse(r)
    r.finish()
    return scheme


def _bonus(r: Reader) -> Bonus | None:
    cap = r.decimal("cap", positive=True)
    readers = r.tables("reasons", required=True, nonempty=True)
    reasons: list[BonusReason] = []
    ok = bool(readers)
    seen: dict[str, str] = {}
    for br in readers or []:
        key = br.key()
        label = br.text("label")
        maximum = br.decimal("max", positive=True)
        br.finish()
        unique = _unique(br, key, seen, "加分事由", "bonus reason")
        if key is None or label is None or maximum is None or not unique:
            ok = False
            continue
        reasons.append(BonusReason(key=key, label=label, max=maximum))
    r.finish()
    if cap is None or not ok:
        return None
    return Bonus(cap=cap, reasons=tuple(reasons))


def _disqualifiers(r: Reader) -> tuple[Disqualifier, ...] | None:
    pairs = _labelled(r, "disqualifiers", "取消评星情形", "disqualifier")
    return None if pairs is None else tuple(Disqualifier(key=k, label=v) for k, v in pairs)


def _follow_up(r: Reader) -> FollowUp | None:
    talk = r.level("talk_at_or_below", required=False)
    mentors = r.integer("mentors", required=False, default=0, minimum=0, maximum=20)
    mentor_level = r.level("mentor_at_or_below", required=False)
    rectify = r.integer("rectify_days", required=False, minimum=1, maximum=3660)
    review = r.integer("review_after_days", required=False, minimum=1, maximum=3660)
    r.finish()
    bad = any(r.has(k) and v is None for k, v in (("talk_at_or_below", talk),
                                                   ("mentor_at_or_below", mentor_level),
                                                   ("rectify_days", rectify),
                                                   ("review_after_days", review)))
    if mentors is None or bad:
        return None
    if mentors > 0 and mentor_level is None:
        r.error("mentor_at_or_below", "设置了帮扶指导员人数时必须给出适用的星级上限",
                "required when mentors > 0: the level at or below which mentors are assigned")
        return None
    return FollowUp(talk_at_or_below=talk, mentors=mentors, mentor_at_or_below=mentor_level,
                    rectify_days=rectify, review_after_days=review)


# -- schedule ---------------------------------------------------------------------------------
def _schedule(r: Reader) -> Schedule | None:
    tz = r.text("timezone", required=False, default="Asia/Shanghai")
    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            r.error("timezone", f"未知时区 '{tz}'（应如 Asia/Shanghai）",
                    f"unknown time zone '{tz}' (use an IANA name such as Asia/Shanghai)")
            tz = None
    branch_r = r.table("branch")
    branch = _branch_schedule(branch_r) if branch_r else None
    member_r = r.table("member")
    member = _member_schedule(member_r) if member_r else None
    notice_r = r.table("public_notice")
    notice: PublicNotice | None = None
    if notice_r is not None:
        days = notice_r.integer("days", minimum=1, maximum=60)
        working = notice_r.boolean("working_days")
        notice_r.finish()
        if days is not None and working is not None:
            notice = PublicNotice(days=days, working_days=working)
    reminders_r = r.table("reminders", required=False)
    reminders: Reminders | None = Reminders()
    if reminders_r is not None:
        reminders = _reminders(reminders_r)
    r.finish()
    if tz is None or branch is None or member is None or notice is None or reminders is None:
        return None
    return Schedule(timezone=tz, branch=branch, member=member, public_notice=notice, reminders=reminders)


def _month_day(r: Reader, key: str, *, required: bool) -> tuple[bool, MonthDay | None]:
    """(ok, value): a ``{month, day?}`` table; day omitted = end of month (x月底)."""
    t = r.table(key, required=required)
    if t is None:
        return (not required and not r.has(key)), None
    month = t.integer("month", minimum=1, maximum=12)
    day = t.integer("day", required=False, minimum=1, maximum=31)
    t.finish()
    if month is None or (t.has("day") and day is None):
        return False, None
    if day is not None:
        last = 29 if month == 2 else calendar.monthrange(2001, month)[1]
        if day > last:
            t.error("day", f"{month}月没有{day}日（最多 {last} 日）",
                    f"month {month} has no day {day} (at most {last})")
            return False, None
    return True, MonthDay(month=month, day=day)


def _branch_schedule(r: Reader) -> BranchSchedule | None:
    ok_open, opens = _month_day(r, "opens", required=False)
    ok_self, self_due = _month_day(r, "self_report_due", required=True)
    ok_back, back_due = _month_day(r, "committee_feedback_due", required=True)
    auto_open = r.boolean("auto_open", default=False)
    open_time = r.clock("open_time", default=_NINE)
    r.finish()
    if not (ok_open and ok_self and ok_back) or self_due is None or back_due is None:
        return None
    if auto_open is None or open_time is None:
        return None
    if auto_open and opens is None:
        r.error("auto_open", "自动开启须同时填写开始日期 opens",
                "opening by itself needs the date: set `opens`")
        return None
    if opens is not None and opens.sort_key() > self_due.sort_key():
        r.error("self_report_due", f"{self_due.describe()} 早于开始日期 {opens.describe()}",
                f"due before the round opens ({opens.describe()})")
        return None
    if back_due.sort_key() < self_due.sort_key():
        r.error("committee_feedback_due",
                f"{back_due.describe()} 早于支部自评上报截止 {self_due.describe()}",
                "the committee's answer is due before the branches report")
        return None
    return BranchSchedule(self_report_due=self_due, committee_feedback_due=back_due, opens=opens,
                          auto_open=auto_open, open_time=open_time)


def _member_schedule(r: Reader) -> MemberSchedule | None:
    opens = r.choice("opens", OPENING_RULES)
    open_time = r.clock("open_time", default=_NINE)
    working = r.boolean("working_days")
    steps: list[tuple[str, int | None]] = []
    for key in ("self_days", "joint_days", "review_days"):
        steps.append((key, r.integer(key, minimum=1, maximum=365)))
    report = r.integer("report_days", required=False, minimum=1, maximum=365)
    auto_open = r.boolean("auto_open", default=False)
    r.finish()
    ok = True
    ordered = [(k, v) for k, v in steps if v is not None]
    if report is not None:
        ordered.append(("report_days", report))
    for (prev_key, prev), (key, value) in pairwise(ordered):
        if value <= prev:
            r.error(key, f"{value} 不晚于 {prev_key} = {prev}：各步骤截止须依次推后",
                    f"{value} is not after {prev_key} = {prev}; step deadlines must increase")
            ok = False
    self_days, joint_days, review_days = (v for _, v in steps)
    if (not ok or opens is None or open_time is None or working is None or self_days is None
            or joint_days is None or review_days is None or (r.has("report_days") and report is None)
            or auto_open is None):
        return None
    return MemberSchedule(opens="first_day_after_period" if opens == "first_day_after_period"
                          else "first_working_day_after_period", open_time=open_time,
                          working_days=working, self_days=self_days, joint_days=joint_days,
                          review_days=review_days, report_days=report, auto_open=auto_open)


def _reminders(r: Reader) -> Reminders | None:
    leads = r.int_list("lead_days", minimum=0, maximum=60)
    if leads is not None and len(set(leads)) != len(leads):
        r.error("lead_days", "提醒提前天数重复", "lead days must not repeat")
        leads = None
    send = r.clock("send_time", default=_NINE)
    r.finish()
    if leads is None or send is None:
        return None
    return Reminders(lead_days=tuple(sorted(leads, reverse=True)), send_time=send)

