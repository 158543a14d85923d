"""Quotas (advisory vs enforced), advanced organisations, meeting make-up, dates and labels."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fivestar.rules import (
    InputError,
    RuleSet,
    add_days,
    advanced_branch,
    advanced_organisation,
    branch_deadlines,
    check_quota,
    indicator_list,
    level_label,
    level_label_en,
    medal_label,
    member_parts,
    member_period,
    member_round_deadlines,
    member_round_opening,
    min_public_representatives,
    programme_for_level,
    public_notice_end,
    reminder_dates,
)
from fivestar.rules.labels import Medal
from fivestar.rules.quota import quota_allowed

D = Decimal


def levels(*counts: tuple[int, int]) -> dict[str, int]:
    result: dict[str, int] = {}
    for level, count in counts:
        for _ in range(count):
            result[f"u{len(result)}"] = level
    return result


def test_enforced_quota_refuses(samples: dict[str, RuleSet]) -> None:
    rules = samples["zoucheng-public-weighted"]
    ok = check_quota(rules, levels((5, 1), (4, 2), (3, 7)))
    assert ok.mode == "enforced" and ok.ok and not ok.is_refusal and ok.total == 10
    over = check_quota(rules, levels((5, 2), (4, 2), (3, 6)))
    assert over.is_refusal and not over.is_warning
    (line,) = over.over
    assert (line.level, line.count, line.allowed, line.share, line.max_share) == (5, 2, 1, D("0.2"), D("0.10"))
    assert "超出比例上限" in over.messages[0]


def test_advisory_quota_warns(samples: dict[str, RuleSet]) -> None:
    rules = samples["shizhi-110"]
    report = check_quota(rules, levels((5, 2), (4, 3), (3, 4), (2, 1)))
    assert report.mode == "advisory" and report.is_warning and not report.is_refusal
    assert [line.level for line in report.over] == [5]
    assert "提醒" in report.messages[0]


def test_member_quota_and_unrated_members(samples: dict[str, RuleSet]) -> None:
    rules = samples["zoucheng-public-weighted"]
    units: dict[str, int | None] = dict(levels((5, 1), (3, 19)))
    units["not_rated"] = None
    report = check_quota(rules, units, kind="member")
    assert report.total == 20 and report.ok  # 5 % of 20 = 1
    units["another"] = 5
    assert check_quota(rules, units, kind="member").is_refusal


def test_rounding_rules() -> None:
    assert quota_allowed(D("0.10"), 25, "floor") == 2
    assert quota_allowed(D("0.10"), 25, "half_up") == 3
    assert quota_allowed(D("0.10"), 21, "ceil") == 3
    assert quota_allowed(D("0.10"), 20, "floor") == 2


def test_no_quota_and_bad_levels(samples: dict[str, RuleSet]) -> None:
    report = check_quota(samples["notice-illustrative"], levels((5, 10)))
    assert report.mode == "none" and report.ok
    assert check_quota(samples["notice-illustrative"], {}).total == 0
    with pytest.raises(InputError) as info:
        check_quota(samples["notice-illustrative"], {"a": 6})
    assert info.value.errors[0].path == "levels.a"


def test_advanced_organisations(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    assert advanced_branch(rules, 5) and not advanced_branch(rules, 4)
    assert advanced_organisation(rules, [4, 4, 5, 5, 3])  # 80 % at four stars or above
    assert not advanced_organisation(rules, [4, 4, 5, 3, 3])
    assert not advanced_organisation(rules, [])
    assert not advanced_branch(samples["shizhi-110"], 5)  # no rule configured


def test_public_representatives(samples: dict[str, RuleSet]) -> None:
    assert min_public_representatives(samples["zoucheng-public-weighted"], 11) == 3
    assert min_public_representatives(samples["zoucheng-public-weighted"], 10) == 2
    assert min_public_representatives(samples["notice-illustrative"], 10) is None


def test_member_periods(samples: dict[str, RuleSet]) -> None:
    q = member_period(samples["notice-illustrative"], date(2025, 5, 20))
    assert (q.key, q.start, q.end) == ("2025Q2", date(2025, 4, 1), date(2025, 6, 30))
    hy = member_period(samples["zoucheng-public-weighted"], date(2024, 12, 31))
    assert (hy.key, hy.start, hy.end) == ("2024H2", date(2024, 7, 1), date(2024, 12, 31))
    y = member_period(samples["shizhi-110"], date(2024, 2, 29))
    assert (y.key, y.end) == ("2024", date(2024, 12, 31))


def test_round_opening_and_deadlines(samples: dict[str, RuleSet]) -> None:
    rules = samples["notice-illustrative"]
    holidays = {date(2025, 10, d) for d in range(1, 9)}

    def working(day: date) -> bool:
        return day.weekday() < 5 and day not in holidays

    opening = member_round_opening(rules, date(2025, 9, 30), working)
    assert opening == datetime(2025, 10, 9, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    deadlines = member_round_deadlines(rules, opening.date(), working)
    assert deadlines.self_assessment == date(2025, 10, 16)  # 5 working days after Thu 9 Oct
    assert deadlines.joint == date(2025, 10, 23)
    assert deadlines.review == date(2025, 10, 30)
    assert list(deadlines.as_dict()) == ["self", "joint", "review", "report"]
    assert add_days(date(2025, 1, 1), 3, working_days=False) == date(2025, 1, 4)


def test_public_notice_and_reminders(samples: dict[str, RuleSet]) -> None:
    working_notice = samples["notice-illustrative"]  # 5 working days, first day counts
    assert public_notice_end(working_notice, date(2025, 6, 2)) == date(2025, 6, 6)  # Mon..Fri
    assert public_notice_end(working_notice, date(2025, 6, 7)) == date(2025, 6, 13)  # starts Sat → Mon..Fri
    calendar_notice = samples["shizhi-110"]  # 5 calendar days
    assert public_notice_end(calendar_notice, date(2025, 6, 7)) == date(2025, 6, 11)
    assert reminder_dates(working_notice, date(2025, 6, 10)) == (date(2025, 6, 7), date(2025, 6, 9))
    assert samples["shizhi-110"].schedule.reminders.send_time == time(8, 30)


def test_branch_deadlines(samples: dict[str, RuleSet]) -> None:
    assert branch_deadlines(samples["notice-illustrative"], 2025) == {
        "self_report_due": date(2025, 1, 31), "committee_feedback_due": date(2025, 3, 31)}
    assert branch_deadlines(samples["shizhi-110"], 2023) == {
        "opens": date(2023, 7, 1), "self_report_due": date(2023, 7, 10),
        "committee_feedback_due": date(2023, 7, 31)}
    assert branch_deadlines(samples["zoucheng-public-weighted"], 2024)["committee_feedback_due"] == date(2024, 2, 29)


def test_labels_and_listings(samples: dict[str, RuleSet]) -> None:
    assert [level_label(lv) for lv in (5, 4, 3, 2, 1, 0)] == ["五星", "四星", "三星", "二星", "一星", "无星"]
    assert level_label(None) == "不予评星" and level_label_en(5) == "five stars"
    assert samples["shizhi-110"].level_label(0, "member") == "不合格"
    assert samples["shizhi-110"].level_label(0, "branch") == "无星"
    assert medal_label(Medal.BRONZE) == "铜星" and medal_label(None) == "无"
    assert [programme_for_level(lv)[0] for lv in (5, 4, 3, 2, 1, 0)] == ["示范", "示范", "提升", "提升", "转化", "转化"]
    with pytest.raises(ValueError, match=r"0\.\.5"):
        level_label(6)
    rules = samples["shizhi-110"]
    assert [(i.label, i.max) for i in indicator_list(rules)][:2] == [("领导班子", D(15)), ("骨干队伍", D(10))]
    assert [p.kind for p in member_parts(rules)].count("deduction") == 4
