"""Member evaluation: band edges per scheme, lowest level, bonus cap, disqualifiers, follow-up."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from fivestar.rules import InputError, MemberInput, RuleSet, evaluate_member

D = Decimal
CENT = D("0.01")
SAMPLES = ("notice-illustrative", "shizhi-110", "zoucheng-public-weighted")


@pytest.mark.parametrize("name", SAMPLES)
def test_member_band_edges_for_every_sample(name: str, samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples[name]
    named = rules.member.scheme.type_name == "named_stars"
    for band in rules.member.stars.bands:
        at = evaluate_member(rules, h.member_input_for(rules, band.min))
        assert at.total == band.min and at.level == band.level, (name, band)
        if band.min > 0 and not named:
            below = evaluate_member(rules, h.member_input_for(rules, band.min - CENT))
            expected = band.level - 1 if band.level - 1 >= rules.member.lowest_level else 0
            assert below.level == expected, (name, band)


def test_notice_has_four_member_levels_with_two_stars_lowest(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["notice-illustrative"]
    assert rules.member.stars.levels == (5, 4, 3, 2)
    assert evaluate_member(rules, MemberInput()).level == 2
    assert evaluate_member(rules, h.member_input_for(rules, D("69.99"))).label == "二星"


def test_base_plus_adjustments_and_below_sixty(samples: dict[str, RuleSet]) -> None:
    rules = samples["shizhi-110"]
    base_only = evaluate_member(rules, MemberInput())
    assert (base_only.total, base_only.level, base_only.label) == (D(60), 1, "一星")
    below = evaluate_member(rules, MemberInput(deductions={"dues": CENT}))
    assert (below.total, below.level, below.label) == (D("59.99"), 0, "不合格")
    assert below.rated and below.reasons[0].code == "below_lowest"
    top = evaluate_member(rules, MemberInput(additions={"exemplary_work": 30, "study": "6"},
                                             deductions={"dues": D(0)}))
    assert (top.total, top.level) == (D(96), 5)
    assert dict(top.breakdown)["base"] == D(60)
    almost = evaluate_member(rules, MemberInput(additions={"exemplary_work": 30, "study": D("5.99")}))
    assert (almost.total, almost.level) == (D("95.99"), 4)


def test_named_stars_count_the_stars_earned(samples: dict[str, RuleSet]) -> None:
    rules = samples["zoucheng-public-weighted"]
    result = evaluate_member(rules, MemberInput(aspects={"study": 16, "civility": D("15.99"), "service": 20}))
    assert result.earned_stars == ("study", "service")
    assert (result.total, result.level) == (D(2), 2)
    everything = evaluate_member(rules, MemberInput(aspects={k: 16 for k in
                                                             ("study", "civility", "service", "dedication",
                                                              "integrity")}))
    assert everything.level == 5 and everything.label == "五星"
    assert evaluate_member(rules, MemberInput()).label == "无星"


def test_bonus_is_capped_and_reported(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["notice-illustrative"]
    result = evaluate_member(rules, h.member_input_for(rules, D(85), bonus={"district_commendation": 2,
                                                                           "city_commendation": 5}))
    assert result.bonus_requested == D(7) and result.bonus_applied == D(5) and result.bonus_capped
    assert result.total == D(90) and result.level == 5
    assert result.reasons[0].code == "bonus_cap" and "上限" in result.reasons[0].zh
    uncapped = evaluate_member(rules, h.member_input_for(rules, D(85), bonus={"district_commendation": 2}))
    assert not uncapped.bonus_capped and uncapped.total == D(87) and uncapped.level == 4


def test_bonus_reason_maximum_and_unknown(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    with pytest.raises(InputError) as info:
        evaluate_member(rules, MemberInput(bonus={"district_commendation": D("2.01"), "other": 1}))
    assert [e.path for e in info.value.errors] == ["bonus.district_commendation", "bonus.other"]
    with pytest.raises(InputError, match="bonus"):
        evaluate_member(samples["shizhi-110"], MemberInput(bonus={"x": 1}))


def test_disqualified_member_is_not_rated(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["notice-illustrative"]
    result = evaluate_member(rules, h.member_input_for(rules, D(100), disqualifiers=["unpaid_dues"]))
    assert not result.rated and result.level is None and result.label == "不予评星"
    assert result.disqualifiers == ("unpaid_dues",)
    assert result.reasons[-1].code == "disqualified" and "不按时足额交纳党费" in result.reasons[-1].zh
    assert result.rectify_days == 90
    with pytest.raises(InputError) as info:
        evaluate_member(rules, MemberInput(disqualifiers=["sick"]))
    assert info.value.errors[0].path == "disqualifiers.sick"
    with pytest.raises(InputError):
        evaluate_member(rules, MemberInput(disqualifiers="unpaid_dues"))


def test_follow_up_for_low_levels(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["notice-illustrative"]
    low = evaluate_member(rules, h.member_input_for(rules, D("69.99")))
    assert low.level == 2 and low.talk_due and low.mentors_due == 1
    ok = evaluate_member(rules, h.member_input_for(rules, D(70)))
    assert ok.level == 3 and not ok.talk_due and ok.mentors_due == 0


def test_inputs_outside_the_scheme_are_refused(samples: dict[str, RuleSet]) -> None:
    with pytest.raises(InputError) as info:
        evaluate_member(samples["notice-illustrative"],
                        MemberInput(aspects={"study": D("20.01"), "sport": 1}, additions={"x": 1}))
    assert [e.path for e in info.value.errors] == ["aspects.study", "aspects.sport", "additions"]
    with pytest.raises(InputError) as info:
        evaluate_member(samples["shizhi-110"], MemberInput(deductions={"dues": -1}, aspects={"study": 1}))
    assert [e.path for e in info.value.errors] == ["aspects", "deductions.dues"]


def test_member_precision_edge(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    aspects = {"study": D(20), "dedication": D(20), "efficiency": D(20), "service": D(20), "integrity": D("9.99")}
    assert evaluate_member(rules, MemberInput(aspects=aspects)).level == 4
    aspects["integrity"] = D("10.00")
    assert evaluate_member(rules, MemberInput(aspects=aspects)).level == 5
    with pytest.raises(InputError, match="浮点数"):
        evaluate_member(rules, MemberInput(aspects={"study": 10.0}))  # type: ignore[dict-item]
