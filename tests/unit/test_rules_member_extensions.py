"""Member-rule extensions used by the member round: criteria of member aspects (评分标准), the
党群联评 meeting's public-representative share, and the linear form a set-based SQL scorer relies on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fivestar.rules import (
    InputError,
    MemberInput,
    RuleSet,
    RuleSetError,
    evaluate_member,
    load_rules_data,
    min_member_public_representatives,
    min_public_representatives,
    summarize,
)
from fivestar.rules.model import MemberInputParts

D = Decimal
Doc = dict[str, Any]
SAMPLES = ("notice-illustrative", "shizhi-110", "zoucheng-public-weighted")


def only_error(doc: Doc) -> tuple[str, str]:
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    assert len(info.value.errors) == 1, info.value.errors
    return info.value.errors[0].path, info.value.errors[0].message


# -- criteria -----------------------------------------------------------------------------------
def test_notice_aspects_have_criteria_adding_up_to_their_maximum(samples: dict[str, RuleSet]) -> None:
    parts = samples["notice-illustrative"].member.scheme.parts()
    assert [p.key for p in parts] == ["study", "dedication", "efficiency", "service", "integrity"]
    for part in parts:
        assert 2 <= len(part.criteria) <= 3, part.key
        assert sum(c.points for c in part.criteria) == part.max
        assert all(c.key and c.label and c.points > 0 for c in part.criteria)
    assert [c.key for c in parts[0].criteria] == ["theory", "professional", "applied"]


@pytest.mark.parametrize("name", ["shizhi-110", "zoucheng-public-weighted"])
def test_other_samples_score_parts_as_one_number(samples: dict[str, RuleSet], name: str) -> None:
    assert all(part.criteria == () for part in samples[name].member.scheme.parts())


def test_criteria_must_add_up_to_the_aspect_maximum(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["member"]["scheme"]["aspects"][1]["criteria"][0]["points"] = 9
    path, message = only_error(doc)
    assert path == "member.scheme.aspects[1].criteria"
    assert "评分标准分值合计 19 与满分 max = 20 不一致" in message


def test_criteria_keys_unique_and_fields_checked(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    criteria = doc["member"]["scheme"]["aspects"][0]["criteria"]
    criteria[1]["key"] = "theory"
    path, message = only_error(doc)
    assert path == "member.scheme.aspects[0].criteria[1].key" and "重复" in message

    doc = doc_of("notice-illustrative")
    crit = doc["member"]["scheme"]["aspects"][2]["criteria"][0]
    crit["pionts"] = crit.pop("points")
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    paths = [e.path for e in info.value.errors]
    assert "member.scheme.aspects[2].criteria[0].points" in paths  # required, missing
    assert "member.scheme.aspects[2].criteria[0].pionts" in paths  # unknown, with a suggestion

    doc = doc_of("notice-illustrative")
    doc["member"]["scheme"]["aspects"][3]["criteria"] = []
    assert only_error(doc)[0] == "member.scheme.aspects[3].criteria"

    doc = doc_of("notice-illustrative")
    doc["member"]["scheme"]["aspects"][4]["criteria"][1]["points"] = 0
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    assert "member.scheme.aspects[4].criteria[1].points" in [e.path for e in info.value.errors]


def test_additions_and_deductions_take_no_criteria(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("shizhi-110")
    doc["member"]["scheme"]["additions"][0]["criteria"] = [{"key": "a", "label": "甲", "points": 30}]
    path, message = only_error(doc)
    assert path == "member.scheme.additions[0].criteria" and "未知字段" in message


def test_named_stars_aspects_may_have_criteria(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("zoucheng-public-weighted")
    doc["member"]["scheme"]["aspects"][0]["criteria"] = [
        {"key": "theory", "label": "理论", "points": 12}, {"key": "practice", "label": "实践", "points": 8}]
    rules = load_rules_data(doc)
    assert [c.key for c in rules.member.scheme.parts()[0].criteria] == ["theory", "practice"]
    result = evaluate_member(rules, MemberInput(aspects={"study": {"theory": 12, "practice": 4}}))
    assert result.earned_stars == ("study",)


def test_criteria_round_trip_and_old_documents_keep_their_hash(samples: dict[str, RuleSet]) -> None:
    notice = samples["notice-illustrative"]
    again = load_rules_data(json.loads(notice.canonical_json()))
    assert again == notice and again.content_hash == notice.content_hash
    # A rule set without criteria writes no "criteria" key, so hashes stored before criteria existed
    # still match the same rules.
    for name in ("shizhi-110", "zoucheng-public-weighted"):
        assert '"criteria":[{' not in json.dumps(samples[name].to_document()["member"])


def test_evaluator_accepts_an_aspect_per_criterion(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    per_criterion = evaluate_member(rules, MemberInput(aspects={
        "study": {"theory": 8, "professional": D("5.5"), "applied": 6},
        "dedication": {"duty": 10},
        "efficiency": 20, "service": 20, "integrity": {"discipline": 10, "clean": D("10")},
    }))
    as_totals = evaluate_member(rules, MemberInput(aspects={
        "study": D("19.5"), "dedication": 10, "efficiency": 20, "service": 20, "integrity": 20}))
    assert per_criterion.total == as_totals.total == D("89.5")
    assert per_criterion.level == as_totals.level == 4
    assert dict(per_criterion.breakdown)["study"] == D("19.5")


def test_criterion_input_is_checked_against_its_points(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    with pytest.raises(InputError) as info:
        evaluate_member(rules, MemberInput(aspects={"study": {"theory": D("8.01"), "nonsense": 1}}))
    assert sorted(e.path for e in info.value.errors) == ["aspects.study.nonsense", "aspects.study.theory"]
    with pytest.raises(InputError) as info:
        evaluate_member(samples["zoucheng-public-weighted"], MemberInput(aspects={"study": {"a": 1}}))
    assert info.value.errors[0].path == "aspects.study"


def test_summary_lists_member_criteria_and_the_meeting(samples: dict[str, RuleSet]) -> None:
    text = "\n".join(summarize(samples["notice-illustrative"]))
    assert "学习方面 [study] ≤ 20，3 项评分标准" in text
    assert "政治理论学习 [theory] ≤ 8" in text
    assert "党群联评会群众代表不少于党员人数的 20%" in text


# -- the 党群联评 meeting --------------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_asks_for_a_fifth_public_representatives(samples: dict[str, RuleSet], name: str) -> None:
    rules = samples[name]
    assert rules.member.meeting is not None
    assert rules.member.meeting.public_representatives_min_share == D("0.2")
    assert min_member_public_representatives(rules, 10) == 2
    assert min_member_public_representatives(rules, 11) == 3  # 不少于: rounded up
    assert min_public_representatives(rules, 11, "member") == 3
    assert min_member_public_representatives(rules, 0) == 0


def test_member_meeting_is_optional_and_checked(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["member"]["meeting"]
    rules = load_rules_data(doc)
    assert rules.member.meeting is None and min_member_public_representatives(rules, 10) is None
    assert "meeting" not in rules.to_document()["member"]

    doc = doc_of("notice-illustrative")
    doc["member"]["meeting"]["public_representatives_min_share"] = D("1.2")
    assert only_error(doc)[0] == "member.meeting.public_representatives_min_share"
    doc = doc_of("notice-illustrative")
    doc["member"]["meeting"] = {"public_representatives_min_shares": D("0.2")}
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    assert {e.path for e in info.value.errors} == {"member.meeting.public_representatives_min_share",
                                                   "member.meeting.public_representatives_min_shares"}


def test_branch_meeting_helper_unchanged(samples: dict[str, RuleSet]) -> None:
    assert min_public_representatives(samples["zoucheng-public-weighted"], 11) == 3
    assert min_public_representatives(samples["notice-illustrative"], 10) is None


# -- linear forms -------------------------------------------------------------------------------
def test_linear_forms_of_the_schemes(samples: dict[str, RuleSet]) -> None:
    notice = samples["notice-illustrative"].member.scheme.linear_form()
    assert notice is not None and notice.constant == 0
    assert (notice.sign("aspect"), notice.sign("addition"), notice.sign("deduction")) == (1, 0, 0)
    shizhi = samples["shizhi-110"].member.scheme.linear_form()
    assert shizhi is not None and shizhi.constant == 60
    assert (shizhi.sign("aspect"), shizhi.sign("addition"), shizhi.sign("deduction")) == (0, 1, -1)
    assert samples["zoucheng-public-weighted"].member.scheme.linear_form() is None


def _money(maximum: Decimal) -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=0, max_value=int(maximum * 100)).map(lambda n: D(n) / 100)


@pytest.mark.parametrize("name", ["notice-illustrative", "shizhi-110"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_linear_form_equals_the_scheme_total(samples: dict[str, RuleSet], name: str, data: st.DataObject) -> None:
    scheme = samples[name].member.scheme
    form = scheme.linear_form()
    assert form is not None
    given_parts: dict[str, dict[str, Decimal]] = {"aspect": {}, "addition": {}, "deduction": {}}
    for part in scheme.parts():
        if data.draw(st.booleans()):
            given_parts[part.kind][part.key] = data.draw(_money(part.max))
    total = scheme.score(MemberInputParts(aspects=given_parts["aspect"], additions=given_parts["addition"],
                                          deductions=given_parts["deduction"])).total
    linear = form.constant + sum((form.sign(kind) * value for kind, values in given_parts.items()
                                  for value in values.values()), D(0))
    assert total == linear
