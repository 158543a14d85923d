"""Branch evaluation: band and medal edges, gates, vetoes, public weighting, promotion, inputs."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from fivestar.rules import BranchInput, InputError, Medal, RuleSet, evaluate_branch, level_label

D = Decimal
CENT = D("0.01")
SAMPLES = ("notice-illustrative", "shizhi-110", "zoucheng-public-weighted")


def full_scores(rules: RuleSet) -> dict[str, dict[str, Decimal]]:
    return {i.key: {c.key: c.points for c in i.criteria} for i in rules.branch.indicators}


@pytest.mark.parametrize("name", SAMPLES)
def test_band_edges_for_every_sample(name: str, samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples[name]
    for band in rules.branch.stars.bands:
        at = evaluate_branch(rules, h.branch_input_for(rules, band.min))
        assert at.weighted_total == band.min
        assert at.score_level == band.level, (name, band)
        assert at.level == capped_by_rate(rules, band.level, at.public_rate), (name, band)
        if band.min > 0:
            below = evaluate_branch(rules, h.branch_input_for(rules, band.min - CENT))
            expected = band.level - 1 if band.level - 1 >= rules.branch.stars.lowest_level else 0
            assert below.score_level == expected, (name, band)
            assert below.level == capped_by_rate(rules, expected, below.public_rate), (name, band)


def capped_by_rate(rules: RuleSet, level: int, rate: Decimal | None) -> int:
    """The level after the public caps (the edge inputs set rate = total / maximum)."""
    if rules.branch.public is None or rate is None:
        return level
    return min([level] + [c.max_level for c in rules.branch.public.caps if rate < c.below])


def test_decimal_precision_at_the_five_star_edge(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    scores = full_scores(rules)
    scores["leadership"]["secretary"] = D("5.99")  # 100 - 0.01 - 10 = 89.99
    scores["results"]["innovation"] = D(0)
    result = evaluate_branch(rules, BranchInput(scores=scores))
    assert result.raw_total == D("89.99")
    assert result.level == 4
    scores["results"]["innovation"] = "0.01"  # strings are read exactly too
    assert evaluate_branch(rules, BranchInput(scores=scores)).raw_total == D("90.00")
    assert evaluate_branch(rules, BranchInput(scores=scores)).level == 5


def test_decimal_sums_are_exact(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    result = evaluate_branch(rules, BranchInput(scores={"leadership": {
        "secretary": D("0.1"), "structure": D("0.2")}}))
    assert result.indicators[0].total == D("0.3")


def test_medals_at_edges(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    expected = {D(18): Medal.GOLD, D("17.99"): Medal.SILVER, D(16): Medal.SILVER,
                D("15.99"): Medal.BRONZE, D(14): Medal.BRONZE, D("13.99"): None, D(0): None}
    for total, medal in expected.items():
        scores = {"leadership": {k: v for k, v in (("secretary", min(total, D(6))),
                                                   ("structure", min(max(total - 6, D(0)), D(7))),
                                                   ("democracy", max(total - 13, D(0))))}}
        result = evaluate_branch(rules, BranchInput(scores=scores))
        assert result.indicators[0].total == total
        assert result.indicators[0].medal == medal, total
        assert result.medals["leadership"] == medal
    gold = evaluate_branch(rules, BranchInput(scores=full_scores(rules))).indicators[0]
    assert gold.medal_label == "金星"


def test_indicator_without_medals_gets_none(samples: dict[str, RuleSet]) -> None:
    rules = samples["shizhi-110"]
    result = evaluate_branch(rules, BranchInput(scores=full_scores(rules), facts={"innovation_project": True}))
    assert result.medals["bonus_items"] is None
    assert result.medals["leadership"] == Medal.GOLD


def test_five_star_gate_needs_the_innovation_project(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["shizhi-110"]
    with_project = evaluate_branch(rules, h.branch_input_for(rules, D(90)))
    assert with_project.level == 5 and not with_project.reasons
    without = evaluate_branch(rules, h.branch_input_for(rules, D(90), facts={}))
    assert (without.score_level, without.level_after_gates, without.level) == (5, 4, 4)
    (reason,) = without.reasons
    assert reason.code == "gate" and reason.reduced
    assert (reason.from_level, reason.to_level) == (5, 4)
    assert "有党建创新项目" in reason.zh and "五星" in reason.zh
    explicit_no = evaluate_branch(rules, h.branch_input_for(rules, D(110), facts={"innovation_project": False}))
    assert explicit_no.level == 4


def test_gates_step_down_one_level_at_a_time(samples: dict[str, RuleSet], doc_of: object) -> None:
    from fivestar.rules import load_rules_data

    doc = doc_of("notice-illustrative")  # type: ignore[operator]
    doc["branch"]["stars"]["5"]["gates"] = [{"type": "min_medals", "medal": "gold", "count": 5}]
    doc["branch"]["stars"]["4"]["gates"] = [{"type": "min_indicator", "indicator": "public", "min": 18}]
    rules = load_rules_data(doc)
    scores = full_scores(rules)
    scores["public"] = {"ballot": D(12), "service": D(5)}  # 17: silver, public below 18
    result = evaluate_branch(rules, BranchInput(scores=scores))
    assert result.score_level == 5
    assert [(r.from_level, r.to_level) for r in result.reasons] == [(5, 4), (4, 3)]
    assert result.level == 3


def test_veto_remove_and_cap(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["notice-illustrative"]
    removed = evaluate_branch(rules, h.branch_input_for(rules, D(95), vetoes={"serious_discipline": True}))
    assert removed.level == 0 and removed.label == "无星"
    assert removed.vetoes_triggered == ("serious_discipline",)
    assert removed.reasons[0].code == "veto" and "一票否决" in removed.reasons[0].zh
    capped = evaluate_branch(rules, h.branch_input_for(rules, D(95), vetoes={"major_incident": True}))
    assert (capped.score_level, capped.level_after_caps, capped.level) == (5, 2, 2)
    low = evaluate_branch(rules, h.branch_input_for(rules, D(50), vetoes={"major_incident": True}))
    assert low.level == 1 and low.reasons and not low.reasons[0].reduced
    not_triggered = evaluate_branch(rules, h.branch_input_for(rules, D(95), vetoes={"major_incident": False}))
    assert not_triggered.level == 5 and not not_triggered.vetoes_triggered


def test_shijingshan_veto_caps_at_three(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["zoucheng-public-weighted"]
    result = evaluate_branch(rules, h.branch_input_for(rules, D(100), vetoes={"falsification": True}))
    assert result.level == 3


def test_public_weight_and_cap_below_sixty_percent(samples: dict[str, RuleSet]) -> None:
    rules = samples["zoucheng-public-weighted"]
    scores = full_scores(rules)
    at = evaluate_branch(rules, BranchInput(scores=scores, public_rate=D("0.60")))
    assert at.weighted_total == D(88)  # 0.7 × 100 + 0.3 × 60
    assert (at.score_level, at.level) == (4, 3)  # < 84 % caps at 3, but not at 2
    below = evaluate_branch(rules, BranchInput(scores=scores, public_rate=D("0.5999")))
    assert below.weighted_total == D("87.997")
    assert (below.score_level, below.level) == (4, 2)
    assert [r.code for r in below.reasons] == ["public_cap", "public_cap"]
    assert "60%" in below.reasons[0].zh
    at84 = evaluate_branch(rules, BranchInput(scores=scores, public_rate=D("0.84")))
    assert at84.level == 5 and not at84.reasons
    below84 = evaluate_branch(rules, BranchInput(scores=scores, public_rate=D("0.8399")))
    assert below84.level == 3


def test_weighted_total_formula(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["zoucheng-public-weighted"]
    result = evaluate_branch(rules, BranchInput(scores=h.branch_scores_for(rules, D(80)), public_rate=D("0.9")))
    assert result.raw_total == D(80)
    assert result.weighted_total == D(83)  # 56 + 27
    assert result.public_rate == D("0.9")


def test_public_rate_required_or_refused(samples: dict[str, RuleSet]) -> None:
    with pytest.raises(InputError) as info:
        evaluate_branch(samples["zoucheng-public-weighted"], BranchInput())
    assert info.value.errors[0].path == "public_rate"
    with pytest.raises(InputError) as info:
        evaluate_branch(samples["notice-illustrative"], BranchInput(public_rate=D("0.9")))
    assert info.value.errors[0].path == "public_rate"
    with pytest.raises(InputError) as info:
        evaluate_branch(samples["zoucheng-public-weighted"], BranchInput(public_rate=D("1.01")))
    assert info.value.errors[0].path == "public_rate"


def test_one_level_a_year(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["zoucheng-public-weighted"]
    limited = evaluate_branch(rules, h.branch_input_for(rules, D(95), previous_level=2, facts={}))
    assert (limited.level_after_caps, limited.level) == (5, 3)
    assert limited.reasons[-1].code == "promotion_limit" and "逐级晋升" in limited.reasons[-1].zh
    honour = evaluate_branch(rules, h.branch_input_for(rules, D(95), previous_level=2,
                                                       facts={"municipal_honour": True}))
    assert honour.level == 5
    assert honour.reasons[-1].code == "promotion_exception" and not honour.reasons[-1].reduced
    one_up = evaluate_branch(rules, h.branch_input_for(rules, D(95), previous_level=4, facts={}))
    assert one_up.level == 5 and not one_up.reasons
    unknown = evaluate_branch(rules, h.branch_input_for(rules, D(95), facts={}))
    assert unknown.level == 5
    demoted = evaluate_branch(rules, h.branch_input_for(rules, D(60), previous_level=5, facts={}))
    assert demoted.level == 2


def test_new_branch_gets_no_star(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["zoucheng-public-weighted"]
    result = evaluate_branch(rules, h.branch_input_for(rules, D(95), is_new=True))
    assert result.level == 0 and result.reasons[-1].code == "new_branch"
    other = samples["notice-illustrative"]  # no promotion rules: is_new changes nothing
    assert evaluate_branch(other, h.branch_input_for(other, D(95), is_new=True)).level == 5
    with pytest.raises(InputError, match="previous_level"):
        evaluate_branch(rules, h.branch_input_for(rules, D(95), is_new=True, previous_level=3))


def test_missing_scores_count_zero(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    result = evaluate_branch(rules, BranchInput())
    assert result.raw_total == 0 and result.level == 0
    assert [i.total for i in result.indicators] == [0] * 5


def test_bad_scores_are_all_reported_with_paths(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    bad = BranchInput(
        scores={"leadership": {"secretary": D("6.01"), "structure": D(-1), "democracy": 3.5, "x": 1},
                "nope": {}},
        vetoes={"falsification": "yes", "typo": True},  # type: ignore[dict-item]
        facts={"unknown": True},
        previous_level=6,
    )
    with pytest.raises(InputError) as info:
        evaluate_branch(rules, bad)
    paths = [e.path for e in info.value.errors]
    assert paths == ["scores.leadership.secretary", "scores.leadership.structure", "scores.leadership.democracy",
                     "scores.leadership.x", "scores.nope", "vetoes.falsification", "vetoes.typo",
                     "facts.unknown", "previous_level"]
    assert isinstance(info.value, ValueError)
    messages = {e.path: e.message for e in info.value.errors}
    assert "超过满分 6" in messages["scores.leadership.secretary"]
    assert "浮点数" in messages["scores.leadership.democracy"]


def test_result_labels(samples: dict[str, RuleSet], h: SimpleNamespace) -> None:
    rules = samples["notice-illustrative"]
    result = evaluate_branch(rules, h.branch_input_for(rules, D(75)))
    assert result.label == "三星" == level_label(3)
    assert str(h.branch_input_for(rules, D(75)).scores)  # inputs are plain mappings
