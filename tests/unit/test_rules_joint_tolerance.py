"""`member.joint_tolerance`: how far a final score may be from the 党群联评 score before the
inspectors' anomaly report lists the member."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fivestar.rules import RuleSetError, load_rules, load_rules_data
from fivestar.rules.model import DEFAULT_JOINT_TOLERANCE

TENANTS = Path(__file__).resolve().parents[2] / "tenants"


def _doc(name: str = "notice-illustrative") -> dict[str, Any]:
    rules = load_rules((TENANTS / f"{name}.toml").read_text(encoding="utf-8"))
    return json.loads(rules.canonical_json())


@pytest.mark.parametrize(
    ("name", "expected"),
    [("notice-illustrative", Decimal(10)), ("shizhi-110", Decimal(8)), ("zoucheng-public-weighted", Decimal(1))],
)
def test_samples_set_their_tolerance(name: str, expected: Decimal) -> None:
    rules = load_rules((TENANTS / f"{name}.toml").read_text(encoding="utf-8"))
    assert rules.member.joint_tolerance == expected
    # The stored (canonical) form loads back equal.
    assert load_rules_data(json.loads(rules.canonical_json())) == rules


def test_default_when_absent_and_hash_unchanged() -> None:
    doc = _doc()
    doc["member"].pop("joint_tolerance", None)
    rules = load_rules_data(doc)
    assert rules.member.joint_tolerance == DEFAULT_JOINT_TOLERANCE
    assert "joint_tolerance" not in rules.to_document()["member"]


@pytest.mark.parametrize(
    ("value", "fragment"), [(-1, "小于最小值"), ("ten", "应为数字"), (500, "大于最大值")]
)
def test_bad_tolerance_names_the_field(value: Any, fragment: str) -> None:
    doc = _doc()
    doc["member"]["joint_tolerance"] = value
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    paths = [error.path for error in info.value.errors]
    assert paths == ["member.joint_tolerance"]
    assert fragment in info.value.errors[0].message
