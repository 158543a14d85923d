"""The `[improvement]` section: the notice's defaults when a rule file says nothing (documents and
hashes unchanged), what a tenant may write, and refusals that name the field."""

from __future__ import annotations

import pytest

from fivestar.rules import RuleSetError, load_rules, load_rules_file, summarize
from tests.conftest import REPO, SAMPLE_RULES

BASE = SAMPLE_RULES.read_text(encoding="utf-8")


def only_error(extra: str) -> tuple[str, str]:
    with pytest.raises(RuleSetError) as info:
        load_rules(BASE + extra)
    assert len(info.value.errors) == 1, info.value.errors
    return info.value.errors[0].path, info.value.errors[0].message


@pytest.mark.parametrize("path", sorted((REPO / "tenants").glob("*.toml")), ids=lambda p: p.name)
def test_every_tenant_file_loads_with_the_notices_defaults_and_keeps_its_hash(path) -> None:  # type: ignore[no-untyped-def]
    rules = load_rules_file(path)
    imp = rules.improvement
    assert imp.is_default and "improvement" not in rules.to_document()
    assert [(p.label, p.levels) for p in imp.programmes] == [
        ("示范工程", (5, 4)),
        ("提升工程", (3, 2)),
        ("转化工程", (1, 0)),
    ]
    assert [imp.programme_for(lv).key for lv in range(6)] == [
        "transformation",
        "transformation",
        "improvement",
        "improvement",
        "demonstration",
        "demonstration",
    ]
    assert [q.label for q in imp.questions] == [
        "整改提升计划是否落实到位",
        "突出问题是否得到解决",
        "党支部的学习氛围是否更浓厚",
        "党支部的服务功能是否有新提升",
        "党支部的创新活力是否有新加强",
        "群众满意度是否有新的提高",
    ]
    assert (imp.prefill_items, imp.lead_days, imp.acceptance_month) == (3, (7, 1), 12)


def test_a_written_section_is_read_stored_and_summarised() -> None:
    rules = load_rules(
        BASE
        + """
[improvement]
prefill_items = 5
lead_days = [1, 10, 3]
acceptance_month = 11

[[improvement.programmes]]
key = "brand"
label = "品牌工程"
levels = [5]
focus = "争创品牌"

[[improvement.programmes]]
key = "lift"
label = "提升工程"
levels = [4, 3, 2]

[[improvement.programmes]]
key = "turn"
label = "转化工程"
levels = [1, 0]

[[improvement.questions]]
key = "done"
label = "计划是否落实"
"""
    )
    imp = rules.improvement
    assert imp.lead_days == (10, 3, 1) and imp.prefill_items == 5 and imp.acceptance_month == 11
    assert imp.programme_for(4).label == "提升工程" and imp.programme_for(5).focus == "争创品牌"
    assert [q.key for q in imp.questions] == ["done"]
    document = rules.to_document()
    assert document["improvement"]["lead_days"] == [10, 3, 1]  # type: ignore[index]
    again = load_rules(BASE)
    assert again.content_hash != rules.content_hash
    text = "\n".join(summarize(rules))
    assert "品牌工程 [brand]: 五星党支部，重在争创品牌" in text and "完成时限前 10、3、1 天" in text
    assert "计划年度 11 月起" in text and "1. 计划是否落实 [done]" in text


def test_a_section_with_only_some_fields_keeps_the_other_defaults() -> None:
    imp = load_rules(BASE + "\n[improvement]\nprefill_items = 0\n").improvement
    assert imp.prefill_items == 0 and imp.lead_days == (7, 1) and len(imp.questions) == 6


@pytest.mark.parametrize(
    ("extra", "path", "words"),
    [
        ("prefill_items = 21", "improvement.prefill_items", "大于最大值 20"),
        ('prefill_items = "3"', "improvement.prefill_items", "应为整数"),
        ("lead_days = [3, 3]", "improvement.lead_days", "提醒提前天数重复"),
        ("lead_days = [61]", "improvement.lead_days[0]", "大于最大值 60"),
        ("acceptance_month = 13", "improvement.acceptance_month", "大于最大值 12"),
        ("acceptence_month = 12", "improvement.acceptence_month", "是否应为 'acceptance_month'"),
    ],
)
def test_refusals_name_the_field(extra: str, path: str, words: str) -> None:
    where, message = only_error(f"\n[improvement]\n{extra}\n")
    assert where == path and words in message


def test_every_level_needs_exactly_one_programme() -> None:
    two = """
[improvement]
[[improvement.programmes]]
key = "high"
label = "示范工程"
levels = [5, 4, 3]
[[improvement.programmes]]
key = "low"
label = "转化工程"
levels = [3, 2, 1]
"""
    with pytest.raises(RuleSetError) as info:
        load_rules(BASE + two)
    found = {(e.path, e.message.split("/")[0].strip()) for e in info.value.errors}
    paths = {p for p, _m in found}
    assert "improvement.programmes[1].levels" in paths  # 3 is already the first one's
    assert "improvement.programmes" in paths  # 0 has none
    assert any("星级 3 已属于 improvement.programmes[0]" in m for _p, m in found)
    assert any("以下星级没有对应的整改提升工程：0" in m for _p, m in found)


def test_programme_and_question_keys_are_unique_and_labels_required() -> None:
    dup = """
[improvement]
[[improvement.questions]]
key = "a"
label = "一"
[[improvement.questions]]
key = "a"
label = "二"
"""
    path, message = only_error(dup)
    assert path == "improvement.questions[1].key" and "验收问题键 'a' 重复" in message
    path, message = only_error('\n[improvement]\n[[improvement.questions]]\nkey = "a"\n')
    assert path == "improvement.questions[0].label" and "缺少必填字段" in message
    path, message = only_error("\n[improvement]\nquestions = []\n")
    assert path == "improvement.questions" and "至少需要一项" in message
