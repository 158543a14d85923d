"""Loading rule sets: samples load, documents round-trip, and every kind of mistake names its path."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fivestar.rules import RuleSet, RuleSetError, known_types, load_rules, load_rules_data, load_rules_file

Doc = dict[str, Any]


def errors_of(doc: Doc) -> list[str]:
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    return [str(e) for e in info.value.errors]


def paths_of(doc: Doc) -> list[str]:
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    return [e.path for e in info.value.errors]


def only_error(doc: Doc) -> tuple[str, str]:
    with pytest.raises(RuleSetError) as info:
        load_rules_data(doc)
    assert len(info.value.errors) == 1, info.value.errors
    error = info.value.errors[0]
    return error.path, error.message


# -- samples --------------------------------------------------------------------------------------
def test_every_tenant_file_loads(h: SimpleNamespace) -> None:
    files = sorted(Path(h.tenants).glob("*.toml"))
    assert len(files) >= 3
    for file in files:
        rules = load_rules_file(file)
        assert rules.meta.sources, f"{file.name} must name its sources"


def test_samples_round_trip_through_the_canonical_document(samples: dict[str, RuleSet]) -> None:
    for rules in samples.values():
        document = json.loads(rules.canonical_json())
        again = load_rules_data(document)
        assert again == rules
        assert again.content_hash == rules.content_hash
        assert len(rules.content_hash) == 64


def test_hash_ignores_formatting_but_not_values(h: SimpleNamespace) -> None:
    text = Path(h.sample_path("notice-illustrative")).read_text(encoding="utf-8")
    base = load_rules(text)
    reformatted = load_rules(text.replace("min = 90                         # illustrative", "min = 90.00"))
    assert reformatted.content_hash == base.content_hash
    changed = load_rules(text.replace("min = 90                         # illustrative", "min = 91"))
    assert changed.content_hash != base.content_hash


def test_toml_decimals_are_exact() -> None:
    rules = load_rules(Path(__file__).resolve().parents[2].joinpath(
        "tenants", "shizhi-110.toml").read_text(encoding="utf-8"))
    medals = rules.branch.indicators[0].medals
    assert medals is not None
    assert medals.gold == Decimal("13.5") and isinstance(medals.gold, Decimal)
    assert rules.branch.quota is not None
    assert rules.branch.quota.share_for(5) == Decimal("0.10")


def test_numbers_may_be_strings_or_json_floats(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["stars"]["5"]["min"] = "89.5"
    doc["branch"]["advanced"]["org_min_share"] = 0.8  # a float from JSON: converted via str()
    rules = load_rules_data(doc)
    assert rules.branch.stars.minimum(5) == Decimal("89.5")
    assert rules.branch.advanced is not None
    assert rules.branch.advanced.org_min_share == Decimal("0.8")


def test_known_types_are_listed() -> None:
    types = known_types()
    assert set(types["gate"]) == {"flag", "min_indicator", "min_public_rate", "min_medals"}
    assert set(types["veto_effect"]) == {"remove", "cap"}
    assert set(types["member_scheme"]) == {"sum_of_aspects", "base_plus_adjustments", "named_stars"}


# -- one test per kind of mistake -----------------------------------------------------------------
def test_all_errors_are_collected(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["meta"]["name"]
    doc["branch"]["stars"]["4"]["min"] = 95
    doc["member"]["cadence"] = "monthly"
    doc["schedule"]["branch"]["self_report_due"]["month"] = 13
    paths = paths_of(doc)
    assert paths == ["meta.name", "branch.stars.4.min", "member.cadence",
                     "schedule.branch.self_report_due.month"]


def test_missing_required_field(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["meta"]["name"]
    assert only_error(doc) == ("meta.name", "缺少必填字段 (required key is missing)")


def test_missing_section(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["schedule"]
    assert only_error(doc)[0] == "schedule"


def test_unknown_key_is_a_typo_with_suggestion(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["stars"]["4"]["mni"] = 80
    path, message = only_error(doc)
    assert path == "branch.stars.4.mni"
    assert "'min'" in message


def test_unknown_top_level_section(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["brnach"] = {}
    path, message = only_error(doc)
    assert path == "brnach" and "branch" in message


def test_wrong_type(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["indicators"][0]["max"] = "twenty"
    doc["branch"]["quarterly_review"] = "yes"
    doc["schedule"]["public_notice"]["days"] = Decimal("5.5")
    assert paths_of(doc) == ["branch.quarterly_review", "branch.indicators[0].max",
                             "schedule.public_notice.days"]


def test_criterion_points_must_be_positive(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["indicators"][2]["criteria"][0]["points"] = 0
    path, message = only_error(doc)
    assert path == "branch.indicators[2].criteria[0].points"
    assert "必须大于 0" in message


def test_criteria_must_add_up_to_the_indicator_maximum(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["indicators"][1]["criteria"][0]["points"] = 6
    path, message = only_error(doc)
    assert path == "branch.indicators[1].criteria"
    assert "19" in message and "20" in message


def test_declared_total_must_match(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("shizhi-110")
    doc["branch"]["total_max"] = 100
    assert only_error(doc)[0] == "branch.total_max"


def test_duplicate_keys(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["vetoes"][1]["key"] = "serious_discipline"
    doc["branch"]["indicators"][1]["key"] = "leadership"
    doc["branch"]["indicators"][0]["criteria"][1]["key"] = "secretary"
    doc["member"]["scheme"]["aspects"][4]["key"] = "study"
    messages = errors_of(doc)
    assert [m.split(":")[0] for m in messages] == [
        "branch.indicators[0].criteria[1].key", "branch.indicators[1].key", "branch.vetoes[1].key",
        "member.scheme.aspects[4].key"]
    assert "branch.vetoes[0]" in messages[2]


def test_invalid_key_pattern(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["indicators"][0]["key"] = "班子"
    doc["member"]["disqualifiers"][0]["key"] = "Unpaid"
    assert paths_of(doc) == ["branch.indicators[0].key", "member.disqualifiers[0].key"]


def test_bands_must_fall_strictly(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["stars"]["4"]["min"] = 95
    path, message = only_error(doc)
    assert path == "branch.stars.4.min"
    assert message == ("95 高于五星最低分 90 (95 is above the 5-star minimum 90; "
                       "bands must fall strictly with the level)")


def test_equal_bands_are_rejected(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["member"]["stars"]["3"]["min"] = 80
    path, message = only_error(doc)
    assert path == "member.stars.3.min" and "等于四星最低分 80" in message


def test_bands_without_gap_and_with_five(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["branch"]["stars"]["3"]
    assert only_error(doc)[0] == "branch.stars"
    doc = doc_of("notice-illustrative")
    del doc["branch"]["stars"]["5"]
    path, message = only_error(doc)
    assert path == "branch.stars" and "五星" in message


def test_band_level_keys(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["stars"]["6"] = {"min": 95}
    doc["member"]["stars"]["0"] = {"min": 0}
    messages = errors_of(doc)
    assert messages[0].startswith("branch.stars.6: ")
    assert messages[1].startswith("member.stars.0: ") and "无星不设档" in messages[1]


def test_five_star_must_be_reachable(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["stars"]["5"]["min"] = 101
    path, message = only_error(doc)
    assert path == "branch.stars.5.min" and "100" in message
    doc = doc_of("notice-illustrative")  # members: 100 + bonus cap 5 = 105 is reachable, 106 is not
    doc["member"]["stars"]["5"]["min"] = 105
    load_rules_data(doc)
    doc["member"]["stars"]["5"]["min"] = 106
    assert only_error(doc)[0] == "member.stars.5.min"


def test_medal_bands(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["indicators"][0]["medals"]["gold"] = 21
    doc["branch"]["indicators"][1]["medals"]["bronze"] = 16
    doc["branch"]["indicators"][2]["medals"] = {"illustrative": True}
    messages = errors_of(doc)
    assert messages[0].startswith("branch.indicators[0].medals.gold: 21 高于指标满分 20")
    assert messages[1].startswith("branch.indicators[1].medals.bronze: 16 等于银星最低分 16")
    assert messages[2].startswith("branch.indicators[2].medals: ")


def test_cap_level_in_range(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["branch"]["vetoes"][2]["max_level"] = 5
    path, message = only_error(doc)
    assert path == "branch.vetoes[2].max_level" and "4" in message
    doc = doc_of("zoucheng-public-weighted")
    doc["branch"]["public"]["caps"][0]["max_level"] = -1
    assert only_error(doc)[0] == "branch.public.caps[0].max_level"


def test_cap_needs_level_and_remove_takes_none(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["branch"]["vetoes"][2]["max_level"]
    doc["branch"]["vetoes"][0]["max_level"] = 2
    assert paths_of(doc) == ["branch.vetoes[0].max_level", "branch.vetoes[2].max_level"]


def test_unknown_type_names_list_the_known_ones(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("shizhi-110")
    doc["branch"]["stars"]["5"]["gates"][0]["type"] = "flg"
    doc["member"]["scheme"]["type"] = "points"
    messages = errors_of(doc)
    assert messages[0].startswith("branch.stars.5.gates[0].type: 未知条件类型 'flg'")
    assert "flag, min_indicator, min_medals, min_public_rate" in messages[0]
    assert messages[1].startswith("member.scheme.type: ")
    assert "base_plus_adjustments, named_stars, sum_of_aspects" in messages[1]
    doc = doc_of("notice-illustrative")
    doc["branch"]["vetoes"][0]["effect"] = "zero"
    path, message = only_error(doc)
    assert path == "branch.vetoes[0].effect" and "cap, remove" in message


def test_gate_parameters(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("shizhi-110")
    gates = doc["branch"]["stars"]["5"]["gates"]
    gates[0]["fact"] = "innovation"
    gates.append({"type": "min_indicator", "indicator": "leadership", "min": 16})
    gates.append({"type": "min_indicator", "indicator": "nope", "min": 1})
    gates.append({"type": "min_public_rate", "min": 0.9})
    gates.append({"type": "min_medals", "medal": "gold", "count": 9})
    gates.append({"type": "min_medals", "medal": "platinum", "count": 1})
    assert paths_of(doc) == [f"branch.stars.5.gates[{i}].{k}" for i, k in
                             ((0, "fact"), (1, "min"), (2, "indicator"), (3, "type"), (4, "count"),
                              (5, "medal"))]


def test_valid_gates_of_every_type(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("zoucheng-public-weighted")
    doc["branch"]["facts"].append({"key": "innovation_project", "label": "有党建创新项目"})
    doc["branch"]["stars"]["5"]["gates"] = [
        {"type": "flag", "fact": "innovation_project"},
        {"type": "min_indicator", "indicator": "leadership", "min": 18},
        {"type": "min_public_rate", "min": 0.9},
        {"type": "min_medals", "medal": "silver", "count": 3},
    ]
    rules = load_rules_data(doc)
    band = rules.branch.stars.band(5)
    assert band is not None and len(band.gates) == 4
    assert load_rules_data(rules.to_document()) == rules


def test_shares_and_weights_within_zero_and_one(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("zoucheng-public-weighted")
    doc["branch"]["quota"]["max_share"]["5"] = Decimal("1.1")
    doc["branch"]["public"]["weight"] = Decimal("1.5")
    doc["member"]["quota"]["max_share"]["7"] = Decimal("0.1")
    doc["branch"]["meeting"]["public_representatives_min_share"] = -1
    assert paths_of(doc) == ["branch.public.weight", "branch.quota.max_share.5",
                             "branch.meeting.public_representatives_min_share",
                             "member.quota.max_share.7"]


def test_quota_mode_and_rounding(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("zoucheng-public-weighted")
    doc["branch"]["quota"]["mode"] = "strict"
    doc["branch"]["quota"]["rounding"] = "up"
    assert paths_of(doc) == ["branch.quota.mode", "branch.quota.rounding"]


def test_promotion_exception_must_be_a_declared_fact(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("zoucheng-public-weighted")
    doc["branch"]["promotion"]["exception_facts"] = ["city_honour"]
    doc["branch"]["promotion"]["max_levels_up_per_year"] = 0
    assert paths_of(doc) == ["branch.promotion.max_levels_up_per_year",
                             "branch.promotion.exception_facts[0]"]


def test_member_scheme_parameters(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("zoucheng-public-weighted")
    doc["member"]["scheme"]["aspects"][0]["star_min"] = 21
    del doc["member"]["scheme"]["aspects"][1]["star_min"]
    doc["member"]["bonus"] = {"cap": 1, "reasons": [{"key": "award", "label": "表彰", "max": 1}]}
    assert paths_of(doc) == ["member.scheme.aspects[0].star_min", "member.scheme.aspects[1].star_min",
                             "member.bonus"]
    doc = doc_of("shizhi-110")
    doc["member"]["scheme"]["additions"] = []
    doc["member"]["scheme"]["deductions"] = []
    assert only_error(doc)[0] == "member.scheme.additions"


def test_member_follow_up_and_bonus(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    del doc["member"]["follow_up"]["mentor_at_or_below"]
    doc["member"]["bonus"]["cap"] = 0
    doc["member"]["bonus"]["reasons"] = []
    assert paths_of(doc) == ["member.bonus.cap", "member.bonus.reasons",
                             "member.follow_up.mentor_at_or_below"]


def test_deadlines_are_sane(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["schedule"]["branch"]["self_report_due"] = {"month": 2, "day": 30}
    doc["schedule"]["member"]["joint_days"] = 5
    doc["schedule"]["public_notice"]["days"] = 0
    doc["schedule"]["reminders"]["lead_days"] = [3, 3]
    doc["schedule"]["reminders"]["send_time"] = "9am"
    doc["schedule"]["timezone"] = "Mars/Olympus"
    assert paths_of(doc) == ["schedule.timezone", "schedule.branch.self_report_due.day",
                             "schedule.member.joint_days", "schedule.public_notice.days",
                             "schedule.reminders.lead_days", "schedule.reminders.send_time"]


def test_feedback_not_before_self_report(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["schedule"]["branch"]["committee_feedback_due"] = {"month": 1, "day": 20}
    assert only_error(doc)[0] == "schedule.branch.committee_feedback_due"
    doc = doc_of("shizhi-110")
    doc["schedule"]["branch"]["opens"] = {"month": 8}
    assert only_error(doc)[0] == "schedule.branch.self_report_due"


def test_meta_checks(doc_of: Callable[[str], Doc]) -> None:
    doc = doc_of("notice-illustrative")
    doc["meta"]["format_version"] = 2
    doc["meta"]["sources"] = ["weilaioem.com/news/9928.html"]
    assert paths_of(doc) == ["meta.format_version", "meta.sources[0]"]


def test_not_toml() -> None:
    with pytest.raises(RuleSetError) as info:
        load_rules("[meta\nname = 1")
    assert info.value.errors[0].path == ""
    assert "TOML" in info.value.errors[0].message


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="无法读取"):
        load_rules_file(tmp_path / "missing.toml")
    bad = tmp_path / "gbk.toml"
    bad.write_bytes("[meta]\nname = \"五星\"\n".encode("gbk"))
    with pytest.raises(RuleSetError, match="UTF-8"):
        load_rules_file(bad)


def test_every_sample_medal_band_is_marked_illustrative(h: SimpleNamespace) -> None:
    """No source gives real 金星/银星/铜星 bands, so shipped samples must say theirs are examples."""
    for file in sorted(Path(h.tenants).glob("*.toml")):
        rules = load_rules_file(file)
        for indicator in rules.branch.indicators:
            if indicator.medals is not None:
                assert indicator.medals.illustrative, f"{file.name}: {indicator.key}"
