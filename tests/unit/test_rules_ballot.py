"""`[branch.ballot]`: loading and validating the 议星 ballot rules, and counting ballots (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from fivestar.rules import (
    DEFAULT_BALLOT,
    OVERALL,
    GroupCounts,
    InputError,
    RuleSet,
    RuleSetError,
    ballot_items,
    ballot_rules,
    load_rules_data,
    summarize,
    tally_ballots,
)

D = Decimal
Doc = dict[str, Any]


def paths_of(doc: Doc) -> list[str]:
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    return [e.path for e in info.value.errors]


def level_counts(ballots: int, **per_level: int) -> GroupCounts:
    return GroupCounts(ballots=ballots, counts={OVERALL: {int(k[1:]): v for k, v in per_level.items()}})


# --- the samples -------------------------------------------------------------------------------------


def test_samples_define_their_ballots(samples: dict[str, RuleSet]) -> None:
    notice = samples["notice-illustrative"].branch.ballot
    assert notice is not None and notice.form == "level" and notice.min_ballots == 5 and notice.illustrative
    assert notice.weights == (("members", D("0.5")), ("public", D("0.3")), ("deputies", D("0.2")))
    assert [c.label for c in notice.choices()] == ["五星", "四星", "三星", "二星", "一星", "无星"]
    shizhi = samples["shizhi-110"].branch.ballot
    assert shizhi is not None and shizhi.form == "indicators"
    assert [(c.value, c.label) for c in shizhi.scale] == [(4, "好"), (3, "较好"), (2, "一般"), (1, "差")]
    assert shizhi.satisfaction is not None and shizhi.satisfaction.groups == ("public",)
    zoucheng = samples["zoucheng-public-weighted"].branch.ballot
    assert zoucheng is not None and zoucheng.weight("public") == D("0.3")
    assert [i.key for i in ballot_items(samples["shizhi-110"])] == [
        i.key for i in samples["shizhi-110"].branch.indicators]
    assert ballot_items(samples["notice-illustrative"])[0].key == OVERALL


def test_ballot_round_trips_and_rules_without_it_keep_their_hash(
    samples: dict[str, RuleSet], doc_of: Callable[[str], Doc]
) -> None:
    for rules in samples.values():
        again = load_rules_data(json.loads(rules.canonical_json()))
        assert again == rules and again.content_hash == rules.content_hash
    doc = doc_of("notice-illustrative")
    del doc["branch"]["ballot"]
    without = load_rules_data(doc)
    assert without.branch.ballot is None and "ballot" not in without.to_document()["branch"]
    assert ballot_rules(without) is DEFAULT_BALLOT and DEFAULT_BALLOT.weight("members") is None


def test_summary_mentions_the_ballot(samples: dict[str, RuleSet]) -> None:
    text = "\n".join(summarize(samples["shizhi-110"]))
    assert "议星测评: 逐项指标评价（好=4、较好=3、一般=2、差=1）" in text and "满意率" in text


# --- validation --------------------------------------------------------------------------------------


def test_form_minimum_and_unknown_keys(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["ballot"].update(form="score", min_ballots=0, minimum=3)
    assert sorted(paths_of(doc)) == ["branch.ballot.form", "branch.ballot.min_ballots", "branch.ballot.minimum"]


def test_weights_must_name_known_groups_and_add_up_to_one(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["ballot"]["weights"] = {"members": D("0.5"), "public": D("0.3")}
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    (error,) = info.value.errors
    assert error.path == "branch.ballot.weights" and "0.8" in error.message
    doc["branch"]["ballot"]["weights"] = {"members": D("0.5"), "masses": D("0.5")}
    assert paths_of(doc) == ["branch.ballot.weights.masses"]
    doc["branch"]["ballot"]["weights"] = {"members": D("1.5"), "public": D("-0.5")}
    assert sorted(paths_of(doc)) == ["branch.ballot.weights.members", "branch.ballot.weights.public"]
    doc["branch"]["ballot"]["weights"] = {"members": 1}  # one group may carry it all
    assert load_rules_data(doc).branch.ballot.weights == (("members", D(1)),)  # type: ignore[union-attr]
    del doc["branch"]["ballot"]["weights"]  # none: pooled
    assert load_rules_data(doc).branch.ballot.weights == ()  # type: ignore[union-attr]


def test_scale_rules(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["ballot"]["scale"] = [{"value": 1, "label": "好"}, {"value": 0, "label": "差"}]
    assert paths_of(doc) == ["branch.ballot.scale"]  # not with the level form
    doc = doc_of("shizhi-110")
    del doc["branch"]["ballot"]["scale"]
    assert "branch.ballot.scale" in paths_of(doc)
    doc = doc_of("shizhi-110")
    doc["branch"]["ballot"]["scale"] = [{"value": 2, "label": "好"}, {"value": 3, "label": "差"},
                                        {"value": 1, "label": "好"}, {"value": 101, "label": "?"}]
    assert paths_of(doc) == ["branch.ballot.scale[1].value", "branch.ballot.scale[2].label",
                             "branch.ballot.scale[3].value"]
    doc["branch"]["ballot"]["scale"] = [{"value": 2, "label": "好"}]
    del doc["branch"]["ballot"]["satisfaction"]
    assert paths_of(doc) == ["branch.ballot.scale"]


def test_satisfaction_rules(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("shizhi-110")
    doc["branch"]["ballot"]["satisfaction"] = {"min_value": 1, "groups": ["public", "crowd"]}
    assert sorted(paths_of(doc)) == ["branch.ballot.satisfaction.groups", "branch.ballot.satisfaction.min_value"]
    doc["branch"]["ballot"]["satisfaction"] = {"min_value": 5}
    assert paths_of(doc) == ["branch.ballot.satisfaction.min_value"]  # above the best answer (4)
    doc["branch"]["ballot"]["satisfaction"] = {"min_value": 4}
    satisfaction = load_rules_data(doc).branch.ballot.satisfaction  # type: ignore[union-attr]
    assert satisfaction is not None and satisfaction.groups == ("public",)


# --- counting ----------------------------------------------------------------------------------------


def test_hidden_below_minimum_and_left_out_of_the_weighted_result(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]  # min 5; members .5, public .3, deputies .2
    result = tally_ballots(rules, {
        "members": level_counts(10, l5=3, l4=6, l3=1),    # 15 + 24 + 3 = 42 / 10 = 4.2
        "public": level_counts(6, l4=3, l3=3),            # 21 / 6 = 3.5
        "deputies": level_counts(2, l5=2),                # hidden
    })
    members, public, deputies = result.groups
    assert (members.shown, members.mean, public.mean) == (True, D("4.20"), D("3.50"))
    assert not deputies.shown and deputies.items == () and deputies.mean is None and deputies.ballots == 2
    assert result.weighted == D("3.94")  # (0.5 × 4.2 + 0.3 × 3.5) / 0.8 = 3.9375 (tenants/README.md)
    assert result.left_out == ("deputies",) and result.used_groups == ("members", "public") and result.available
    assert result.ballots == 18
    nothing = tally_ballots(rules, {"members": level_counts(4, l5=4)})
    assert nothing.weighted is None and not nothing.available and nothing.left_out == ("members",)


def test_pooled_and_zero_weight_groups(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["ballot"]["weights"] = {"members": 1}
    weighted = load_rules_data(doc)
    result = tally_ballots(weighted, {"members": level_counts(5, l4=5), "public": level_counts(5, l0=5)})
    assert result.weighted == D("4.00") and result.group("public").shown and result.group("public").weight == 0
    assert result.used_groups == ("members",) and result.left_out == ()
    del doc["branch"]["ballot"]["weights"]
    pooled = load_rules_data(doc)
    result = tally_ballots(pooled, {"members": level_counts(5, l4=5), "public": level_counts(5, l1=5),
                                    "deputies": level_counts(1, l0=1)})
    assert result.weighted == D("2.50") and result.left_out == ("deputies",)  # (20 + 5) / 10


def test_indicator_means_and_satisfaction(samples: dict[str, RuleSet]) -> None:
    rules = samples["shizhi-110"]
    keys = [i.key for i in rules.branch.indicators]
    public = GroupCounts(ballots=5, counts={k: {4: 2, 3: 1, 1: 2} for k in keys})  # (8 + 3 + 2) / 5 = 2.6
    members = GroupCounts(ballots=5, counts={k: {4: 5} for k in keys})
    result = tally_ballots(rules, {"public": public, "members": members})
    assert result.group("public").mean == D("2.60") and result.group("members").mean == D("4.00")
    # (0.4 × 4 + 0.4 × 2.6) / 0.8 = 3.3 for every indicator
    assert all(mean == D("3.30") for _item, mean in result.items) and result.weighted == D("3.30")
    assert result.satisfaction == D("0.6000")  # public ratings ≥ 3: 3 of 5 per indicator
    item = result.group("public").items[0]
    assert item.distribution == ((4, "好", 2), (3, "较好", 1), (2, "一般", 0), (1, "差", 2)) and item.count == 5


def test_bad_counts_are_input_errors(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    with pytest.raises(InputError) as info:
        tally_ballots(rules, {"crowd": level_counts(5, l5=5), "members": GroupCounts(5, {OVERALL: {9: 1},
                                                                                       "leadership": {1: 1}})})
    assert {e.path for e in info.value.errors} == {"counts.crowd", "counts.members..9", "counts.members.leadership"}
