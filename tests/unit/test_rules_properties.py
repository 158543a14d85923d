"""Property tests: raising a score (criterion, aspect, addition, bonus) or the public rate never lowers
the level while vetoes, facts and last year's level stay fixed — on the sample rule sets and on
generated ones.  Also: every generated valid document loads and round-trips, and random damage to a
document only ever produces a ``RuleSetError``.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fivestar.rules import (
    BranchInput,
    MemberInput,
    RuleSet,
    RuleSetError,
    evaluate_branch,
    evaluate_member,
    load_rules_data,
    load_rules_file,
)

TENANTS = Path(__file__).resolve().parents[2] / "tenants"
NAMES = ("notice-illustrative", "shizhi-110", "zoucheng-public-weighted")
SAMPLES = {name: load_rules_file(TENANTS / f"{name}.toml") for name in NAMES}
NOTICE_DOC = tomllib.loads((TENANTS / "notice-illustrative.toml").read_text(encoding="utf-8"), parse_float=Decimal)

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D = Decimal


def money(low: Decimal | int, high: Decimal | int) -> st.SearchStrategy[Decimal]:
    """Decimals with two places between ``low`` and ``high`` (inclusive)."""
    return st.decimals(min_value=D(low), max_value=D(high), places=2, allow_nan=False, allow_infinity=False)


# -- inputs for any rule set ----------------------------------------------------------------------
@st.composite
def branch_inputs(draw: st.DrawFn, rules: RuleSet) -> BranchInput:
    scores = {i.key: {c.key: draw(money(0, c.points)) for c in i.criteria} for i in rules.branch.indicators}
    vetoes = {v.key: draw(st.booleans()) for v in rules.branch.vetoes}
    facts = {f.key: draw(st.booleans()) for f in rules.branch.facts}
    rate = draw(st.decimals(min_value=0, max_value=1, places=4)) if rules.branch.public else None
    previous = draw(st.none() | st.integers(0, 5))
    is_new = draw(st.booleans()) if previous is None else False
    return BranchInput(scores=scores, vetoes=vetoes, facts=facts, public_rate=rate, previous_level=previous,
                       is_new=is_new)


def check_branch_raise(data: st.DataObject, rules: RuleSet) -> None:
    before = data.draw(branch_inputs(rules), label="input")
    slots = [(i.key, c.key, c.points) for i in rules.branch.indicators for c in i.criteria]
    ikey, ckey, points = data.draw(st.sampled_from(slots), label="criterion")
    old = D(before.scores[ikey][ckey])
    new = data.draw(money(old, points), label="raised to")
    after = replace(before, scores={**before.scores, ikey: {**before.scores[ikey], ckey: new}})
    a, b = evaluate_branch(rules, before), evaluate_branch(rules, after)
    assert b.raw_total >= a.raw_total and b.weighted_total >= a.weighted_total
    assert b.score_level >= a.score_level
    assert b.level_after_gates >= a.level_after_gates
    assert b.level >= a.level, (a.reasons, b.reasons)


def check_rate_raise(data: st.DataObject, rules: RuleSet) -> None:
    before = data.draw(branch_inputs(rules), label="input")
    assert before.public_rate is not None
    new = data.draw(st.decimals(min_value=D(before.public_rate), max_value=1, places=4), label="rate")
    a, b = evaluate_branch(rules, before), evaluate_branch(rules, replace(before, public_rate=new))
    assert b.weighted_total >= a.weighted_total
    assert b.level >= a.level, (a.reasons, b.reasons)


@st.composite
def member_inputs(draw: st.DrawFn, rules: RuleSet) -> MemberInput:
    parts = rules.member.scheme.parts()
    values = {p.key: draw(money(0, p.max)) for p in parts}
    by_kind = {kind: {p.key: values[p.key] for p in parts if p.kind == kind}
               for kind in ("aspect", "addition", "deduction")}
    bonus = ({r.key: draw(money(0, r.max)) for r in rules.member.bonus.reasons}
             if rules.member.bonus is not None else {})
    dq = draw(st.lists(st.sampled_from([d.key for d in rules.member.disqualifiers]), max_size=1)
              if rules.member.disqualifiers else st.just([]))
    return MemberInput(aspects=by_kind["aspect"], additions=by_kind["addition"], deductions=by_kind["deduction"],
                       bonus=bonus, disqualifiers=dq)


def rank(level: int | None) -> int:
    return -1 if level is None else level


def check_member_raise(data: st.DataObject, rules: RuleSet) -> None:
    before = data.draw(member_inputs(rules), label="input")
    choices: list[tuple[str, str, Decimal]] = [(p.kind, p.key, p.max) for p in rules.member.scheme.parts()]
    if rules.member.bonus is not None:
        choices += [("bonus", r.key, r.max) for r in rules.member.bonus.reasons]
    kind, key, maximum = data.draw(st.sampled_from(choices), label="field")
    field = {"aspect": "aspects", "addition": "additions", "deduction": "deductions", "bonus": "bonus"}[kind]
    current: dict[str, Any] = dict(getattr(before, field))
    new = data.draw(money(D(current[key]), maximum), label="raised to")
    current[key] = new
    after = replace(before, **{field: current})
    a, b = evaluate_member(rules, before), evaluate_member(rules, after)
    assert a.rated == b.rated
    if kind == "deduction":  # a larger deduction never helps
        assert rank(b.level) <= rank(a.level) and b.total <= a.total
    else:
        assert rank(b.level) >= rank(a.level) and b.total >= a.total


# -- on the samples -------------------------------------------------------------------------------
@FAST
@given(name=st.sampled_from(NAMES), data=st.data())
def test_raising_a_criterion_never_lowers_the_branch_level(name: str, data: st.DataObject) -> None:
    check_branch_raise(data, SAMPLES[name])


@FAST
@given(data=st.data())
def test_raising_the_public_rate_never_lowers_the_level(data: st.DataObject) -> None:
    check_rate_raise(data, SAMPLES["zoucheng-public-weighted"])


@FAST
@given(name=st.sampled_from(NAMES), data=st.data())
def test_raising_a_member_score_never_lowers_the_member_level(name: str, data: st.DataObject) -> None:
    check_member_raise(data, SAMPLES[name])


# -- on generated rule sets -----------------------------------------------------------------------
@st.composite
def ascending_mins(draw: st.DrawFn, count: int, top: Decimal) -> list[Decimal]:
    """``count`` distinct minimums in [0, top], highest first."""
    values = draw(st.lists(money(0, top), min_size=count, max_size=count, unique=True))
    return sorted(values, reverse=True)


@st.composite
def branch_docs(draw: st.DrawFn) -> dict[str, Any]:
    indicators: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 4))):
        points = [draw(st.integers(1, 20)) for _ in range(draw(st.integers(1, 3)))]
        ind: dict[str, Any] = {"key": f"i{i}", "label": f"指标{i}", "max": sum(points),
                               "criteria": [{"key": f"c{j}", "label": f"标准{j}", "points": p}
                                            for j, p in enumerate(points)]}
        if draw(st.booleans()):
            mins = draw(ascending_mins(draw(st.integers(1, 3)), D(sum(points))))
            if all(m > 0 for m in mins):
                ind["medals"] = dict(zip(("gold", "silver", "bronze"), mins, strict=False))
        indicators.append(ind)
    total = D(sum(ind["max"] for ind in indicators))
    has_public = draw(st.booleans())
    branch: dict[str, Any] = {"indicators": indicators,
                              "facts": [{"key": "f0", "label": "事实0"}, {"key": "f1", "label": "事实1"}]}
    if has_public:
        branch["public"] = {"weight": draw(money(0, 1)), "caps": [
            {"below": draw(money(D("0.01"), 1)), "max_level": draw(st.integers(0, 4))}
            for _ in range(draw(st.integers(0, 2)))]}
    lowest = draw(st.integers(1, 5))
    mins = draw(ascending_mins(6 - lowest, total))
    stars: dict[str, Any] = {}
    for level, minimum in zip(range(5, lowest - 1, -1), mins, strict=True):
        band: dict[str, Any] = {"min": minimum}
        gates = []
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["flag", "min_indicator", "min_public_rate", "min_medals"]))
            if kind == "flag":
                gates.append({"type": "flag", "fact": draw(st.sampled_from(["f0", "f1"]))})
            elif kind == "min_indicator":
                ind = draw(st.sampled_from(indicators))
                gates.append({"type": kind, "indicator": ind["key"], "min": draw(money(D("0.01"), ind["max"]))})
            elif kind == "min_public_rate" and has_public:
                gates.append({"type": kind, "min": draw(money(0, 1))})
            elif kind == "min_medals":
                with_gold = [i for i in indicators if "gold" in i.get("medals", {})]
                if with_gold:
                    gates.append({"type": kind, "medal": "gold", "count": draw(st.integers(1, len(with_gold)))})
        if gates:
            band["gates"] = gates
        stars[str(level)] = band
    branch["stars"] = stars
    branch["vetoes"] = []
    for v in range(draw(st.integers(0, 2))):
        veto: dict[str, Any] = {"key": f"v{v}", "label": f"否决{v}",
                                "effect": draw(st.sampled_from(["remove", "cap"]))}
        if veto["effect"] == "cap":
            veto["max_level"] = draw(st.integers(0, 4))
        branch["vetoes"].append(veto)
    if draw(st.booleans()):
        branch["promotion"] = {"max_levels_up_per_year": draw(st.integers(1, 2)), "exception_facts": ["f1"],
                               "new_branch_no_star": draw(st.booleans())}
    return branch


@st.composite
def member_docs(draw: st.DrawFn) -> dict[str, Any]:
    scheme_type = draw(st.sampled_from(["sum_of_aspects", "base_plus_adjustments", "named_stars"]))

    def items(prefix: str, low: int, high: int, star: bool = False) -> list[dict[str, Any]]:
        result = []
        for i in range(draw(st.integers(low, high))):
            maximum = draw(st.integers(1, 30))
            item: dict[str, Any] = {"key": f"{prefix}{i}", "label": f"{prefix}{i}", "max": maximum}
            if star:
                item["star_min"] = draw(money(D("0.01"), maximum))
            result.append(item)
        return result

    scheme: dict[str, Any] = {"type": scheme_type}
    if scheme_type == "sum_of_aspects":
        scheme["aspects"] = items("a", 1, 5)
        top = D(sum(a["max"] for a in scheme["aspects"]))
    elif scheme_type == "named_stars":
        scheme["aspects"] = items("a", 1, 5, star=True)
        top = D(len(scheme["aspects"]))
    else:
        scheme["base"] = draw(st.integers(0, 80))
        scheme["additions"] = items("p", 1, 3)
        scheme["deductions"] = items("m", 0, 3)
        top = scheme["base"] + D(sum(a["max"] for a in scheme["additions"]))
    member: dict[str, Any] = {"cadence": "quarter", "scheme": scheme,
                              "disqualifiers": [{"key": "dq", "label": "取消"}]}
    if scheme_type != "named_stars" and draw(st.booleans()):
        cap = draw(st.integers(1, 10))
        member["bonus"] = {"cap": cap, "reasons": [{"key": "r0", "label": "表彰", "max": draw(st.integers(1, 10))}]}
        top += cap
    lowest = draw(st.integers(1, 5))
    mins = draw(ascending_mins(6 - lowest, top))
    member["stars"] = {str(level): {"min": m} for level, m in zip(range(5, lowest - 1, -1), mins, strict=True)}
    return member


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    doc = copy.deepcopy(NOTICE_DOC)
    doc["branch"] = draw(branch_docs())
    doc["member"] = draw(member_docs())
    rules = load_rules_data(doc)  # every valid document loads ...
    assert load_rules_data(rules.to_document()) == rules  # ... and round-trips
    return rules


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), data=st.data())
def test_generated_branch_rules_are_monotone(rules: RuleSet, data: st.DataObject) -> None:
    check_branch_raise(data, rules)
    if rules.branch.public is not None:
        check_rate_raise(data, rules)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rule_sets(), data=st.data())
def test_generated_member_rules_are_monotone(rules: RuleSet, data: st.DataObject) -> None:
    check_member_raise(data, rules)


# -- robustness of the loader ---------------------------------------------------------------------
def leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in leaf_paths(v, (*prefix, k))] or [prefix]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in leaf_paths(v, (*prefix, i))] or [prefix]
    return [prefix]


LEAVES = leaf_paths(NOTICE_DOC)
JUNK = st.one_of(st.integers(-5, 200), st.text(max_size=5), st.booleans(), st.just([]), st.just({}),
                 money(-1, 200), st.just("NaN"), st.lists(st.integers(0, 3), max_size=2))


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(LEAVES), value=JUNK)
def test_damaged_documents_fail_cleanly(path: tuple[Any, ...], value: Any) -> None:
    doc = copy.deepcopy(NOTICE_DOC)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        load_rules_data(doc)
    except RuleSetError as exc:
        assert exc.errors and all(e.message for e in exc.errors)
