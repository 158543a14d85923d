"""Helpers for the rule-engine unit tests (no database, no Flask).

Plain functions are exposed through session-scoped fixtures so hypothesis tests can use them too
(hypothesis rejects function-scoped fixtures).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fivestar.rules import BranchInput, MemberInput, RuleSet, load_rules_file

TENANTS = Path(__file__).resolve().parents[2] / "tenants"
SAMPLE_NAMES = ("notice-illustrative", "shizhi-110", "zoucheng-public-weighted")


def sample_path(name: str) -> Path:
    return TENANTS / f"{name}.toml"


def sample_doc(name: str) -> dict[str, Any]:
    """The parsed TOML of a sample, as a fresh mutable dict (numbers exact)."""
    return tomllib.loads(sample_path(name).read_text(encoding="utf-8"), parse_float=Decimal)


def spread(total: Decimal, slots: list[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Fill ``slots`` (key, max) in order until ``total`` is reached; exact decimals."""
    left = Decimal(total)
    result: dict[str, Decimal] = {}
    for key, maximum in slots:
        take = min(left, maximum)
        if take > 0:
            result[key] = take
        left -= take
    assert left == 0, f"{total} does not fit"
    return result


def branch_scores_for(rules: RuleSet, total: Decimal) -> dict[str, dict[str, Decimal]]:
    """Criterion scores whose raw total is exactly ``total``."""
    flat = [(f"{i.key}.{c.key}", c.points) for i in rules.branch.indicators for c in i.criteria]
    scores: dict[str, dict[str, Decimal]] = {}
    for path, value in spread(total, flat).items():
        ikey, ckey = path.split(".")
        scores.setdefault(ikey, {})[ckey] = value
    return scores


def branch_input_for(rules: RuleSet, total: Decimal, **kwargs: Any) -> BranchInput:
    """An input whose (weighted) total is exactly ``total``: with a weighted public rate the rate is
    set to total / maximum, so weighted = raw.  All gate facts are yes unless given."""
    total = Decimal(total)
    facts = kwargs.pop("facts", {f.key: True for f in rules.branch.facts})
    rate = kwargs.pop("public_rate", None)
    if rules.branch.public is not None and rate is None:
        rate = total / rules.branch.total_max
    return BranchInput(scores=branch_scores_for(rules, total), facts=facts, public_rate=rate, **kwargs)


def member_input_for(rules: RuleSet, total: Decimal, **kwargs: Any) -> MemberInput:
    """An input whose scheme total is exactly ``total`` (before bonus)."""
    total = Decimal(total)
    scheme = rules.member.scheme
    if scheme.type_name == "sum_of_aspects":
        return MemberInput(aspects=spread(total, [(p.key, p.max) for p in scheme.parts()]), **kwargs)
    if scheme.type_name == "base_plus_adjustments":
        base: Decimal = scheme.base  # type: ignore[attr-defined]
        if total >= base:
            adds = [(p.key, p.max) for p in scheme.parts() if p.kind == "addition"]
            return MemberInput(additions=spread(total - base, adds), **kwargs)
        deds = [(p.key, p.max) for p in scheme.parts() if p.kind == "deduction"]
        return MemberInput(deductions=spread(base - total, deds), **kwargs)
    if scheme.type_name == "named_stars":
        count = int(total)
        aspects = scheme.aspects  # type: ignore[attr-defined]
        return MemberInput(aspects={a.key: (a.star_min if i < count else a.star_min - Decimal("0.01"))
                                    for i, a in enumerate(aspects)}, **kwargs)
    raise AssertionError(scheme.type_name)


@pytest.fixture(scope="session")
def samples() -> dict[str, RuleSet]:
    return {name: load_rules_file(sample_path(name)) for name in SAMPLE_NAMES}


@pytest.fixture(scope="session")
def doc_of() -> Callable[[str], dict[str, Any]]:
    return lambda name: copy.deepcopy(sample_doc(name))


@pytest.fixture(scope="session")
def h() -> SimpleNamespace:
    """The helper functions above, for tests (``h.branch_input_for(rules, 90)``)."""
    return SimpleNamespace(spread=spread, branch_scores_for=branch_scores_for,
                           branch_input_for=branch_input_for, member_input_for=member_input_for,
                           sample_doc=sample_doc, sample_path=sample_path, tenants=TENANTS,
                           sample_names=SAMPLE_NAMES)
