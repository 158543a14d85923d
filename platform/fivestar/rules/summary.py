"""A short human summary of a rule set (Chinese labels), for ``fivestar rules check`` and admin pages.

The point is that a committee member can read the summary and recognise their own scheme — every
number the engine will use appears, and illustrative values are marked as such.
"""

from __future__ import annotations

from decimal import Decimal

from ._reader import fmt
from .labels import level_label, medal_label
from .model import BallotRules, Bands, Quota, RuleSet

__all__ = ["summarize"]

_CADENCE = {"quarter": "每季度", "half_year": "每半年", "year": "每年"}
_OPENS = {"first_working_day_after_period": "周期结束后第一个工作日",
          "first_day_after_period": "周期结束后第一天"}


def _pct(value: Decimal) -> str:
    return f"{fmt(value * 100)}%"


def _bands(bands: Bands, kind: str, below: str | None) -> list[str]:
    lines = []
    for band in bands.bands:
        gates = "".join(f"，且须{g.describe()[0]}" for g in band.gates)
        lines.append(f"    {level_label(band.level)}: ≥ {fmt(band.min)}{gates}")
    lowest = bands.bands[-1]
    if lowest.min > 0:
        name = level_label(0, "member", below) if kind == "member" else level_label(0)
        lines.append(f"    {name}: < {fmt(lowest.min)}")
    return lines


def _quota(quota: Quota | None) -> list[str]:
    if quota is None:
        return []
    mode = "强制（超出即拒绝）" if quota.mode == "enforced" else "指导（超出仅提醒）"
    shares = "，".join(f"{level_label(lv)} ≤ {_pct(s)}" for lv, s in quota.max_share)
    note = f"（{quota.note}）" if quota.note else ""
    return [f"  比例限制 quota: {mode}；{shares}；取整 {quota.rounding}{note}"]


_GROUPS = {"members": "党员", "public": "群众代表", "deputies": "两代表一委员"}


def _ballot(ballot: BallotRules) -> list[str]:
    form = "每人评定一个星级" if ballot.form == "level" else "逐项指标评价（" + "、".join(
        f"{c.label}={c.value}" for c in ballot.scale) + "）"
    lines = [f"  议星测评: {form}；每个群体不少于 {ballot.min_ballots} 票才显示结果"
             + ("（示例值）" if ballot.illustrative else "")]
    if ballot.weights:
        lines.append("    权重: " + "，".join(f"{_GROUPS[g]} {_pct(w)}" for g, w in ballot.weights))
    else:
        lines.append("    不分群体加权：每张有效票同等计算")
    if ballot.satisfaction is not None:
        groups = "、".join(_GROUPS[g] for g in ballot.satisfaction.groups)
        lines.append(f"    满意率: {groups}评价不低于 {ballot.satisfaction.min_value} 的比例")
    return lines


def summarize(rules: RuleSet) -> list[str]:
    """Lines of text describing ``rules``."""
    m, b, mem, s = rules.meta, rules.branch, rules.member, rules.schedule
    out = [f"规则集 {m.name}（格式版本 {m.format_version}）" + ("  [示例数值 illustrative]" if m.illustrative else "")]
    if m.description:
        out.append(f"  {m.description}")
    out.extend(f"  来源 source: {url}" for url in m.sources)
    out.append(f"  内容哈希 sha256: {rules.content_hash}")
    out.append(f"党支部评定 branch rating（满分 {fmt(b.total_max)}"
               + ("，一季一小评" if b.quarterly_review else "") + "）")
    for ind in b.indicators:
        medals = ""
        if ind.medals is not None:
            medals = "；" + "，".join(f"{medal_label(md)} ≥ {fmt(v)}" for md, v in ind.medals.bands())
            if ind.medals.illustrative:
                medals += "（示例值）"
        out.append(f"  {ind.label} [{ind.key}] {fmt(ind.max)} 分，{len(ind.criteria)} 项评分标准{medals}")
    out.append("  星级 star bands:")
    out.extend(_bands(b.stars, "branch", None))
    if b.public is not None:
        out.append(f"  {b.public.label}: 权重 {_pct(b.public.weight)}")
        out.extend(f"    {c.label}: 最高{level_label(c.max_level)}" for c in b.public.caps)
    for veto in b.vetoes:
        out.append(f"  一票否决 [{veto.key}] {veto.label}: {veto.effect.describe()[0]}")
    out.extend(_quota(b.quota))
    if b.promotion is not None:
        p = b.promotion
        exc = f"；破格: {', '.join(p.exception_facts)}" if p.exception_facts else ""
        new = "；新建支部不定星" if p.new_branch_no_star else ""
        out.append(f"  逐级晋升: 每年最多升 {p.max_levels_up_per_year} 级{exc}{new}")
    if b.advanced is not None:
        a = b.advanced
        branches = level_label(a.branch_min_level) + ("" if a.branch_min_level == 5 else "及以上")
        out.append(f"  先进机关党组织: {branches}党支部；或所属支部"
                   f"{level_label(a.org_share_min_level)}以上占比 ≥ {_pct(a.org_min_share)}"
                   + ("（示例值）" if a.illustrative else ""))
    if b.meeting is not None:
        out.append(f"  议星会群众代表不少于党员人数的 {_pct(b.meeting.public_representatives_min_share)}")
    if b.ballot is not None:
        out.extend(_ballot(b.ballot))
    out.append(f"党员评定 member rating（{_CADENCE[mem.cadence]}；{mem.scheme.describe()[0]}）")
    for part in mem.scheme.parts():
        kind = {"aspect": "", "addition": "加分 ", "deduction": "减分 "}[part.kind]
        criteria = f"，{len(part.criteria)} 项评分标准" if part.criteria else ""
        out.append(f"  {kind}{part.label} [{part.key}] ≤ {fmt(part.max)}{criteria}")
        out.extend(f"    {c.label} [{c.key}] ≤ {fmt(c.points)}" for c in part.criteria)
    out.append("  星级 star bands:")
    out.extend(_bands(mem.stars, "member", mem.below_label))
    if mem.bonus is not None:
        reasons = "，".join(f"{r.label} ≤ {fmt(r.max)}" for r in mem.bonus.reasons)
        out.append(f"  加分上限 {fmt(mem.bonus.cap)}：{reasons}")
    for d in mem.disqualifiers:
        out.append(f"  取消评星 [{d.key}] {d.label}")
    f = mem.follow_up
    if f.talk_at_or_below is not None:
        out.append(f"  {level_label(f.talk_at_or_below)}及以下：谈话教育")
    if f.mentors and f.mentor_at_or_below is not None:
        out.append(f"  {level_label(f.mentor_at_or_below)}及以下：安排 {f.mentors} 名五星党员帮扶")
    if f.rectify_days is not None:
        out.append(f"  不予评星：限期 {f.rectify_days} 天整改")
    out.extend(_quota(mem.quota))
    if mem.meeting is not None:
        out.append(f"  党群联评会群众代表不少于党员人数的 {_pct(mem.meeting.public_representatives_min_share)}")
    unit = "个工作日" if s.member.working_days else "天"
    sb = s.branch
    opens = f"{sb.opens.describe()}开始，" if sb.opens else ""
    out.append(f"日程 schedule（时区 {s.timezone}）")
    out.append(f"  支部评定: {opens}{sb.self_report_due.describe()}前上报自评，"
               f"{sb.committee_feedback_due.describe()}前反馈结果"
               + (f"；{sb.open_time:%H:%M} 自动开启" if sb.auto_open else "；由工委手动开启"))
    sm = s.member
    report = f"、上报 {sm.report_days}" if sm.report_days is not None else ""
    out.append(f"  党员评定: {_OPENS[sm.opens]} {sm.open_time:%H:%M} 开始；开始后 自评 {sm.self_days}、"
               f"联评 {sm.joint_days}、审评 {sm.review_days}{report} {unit}内截止"
               + ("；自动开启" if sm.auto_open else "；由工委手动开启"))
    notice_unit = "个工作日" if s.public_notice.working_days else "天"
    out.append(f"  公示 {s.public_notice.days} {notice_unit}")
    if s.reminders.lead_days:
        leads = "、".join(str(d) for d in s.reminders.lead_days)
        out.append(f"  提醒: 截止前 {leads} 天 {s.reminders.send_time:%H:%M}")
    out.extend(_improvement(rules))
    return out


def _improvement(rules: RuleSet) -> list[str]:
    imp = rules.improvement
    out = ["整改提升 improvement（定星后各支部制定整改提升计划，年末考核验收）"]
    for p in imp.programmes:
        levels = "、".join(level_label(lv) for lv in p.levels)
        focus = f"，重在{p.focus}" if p.focus else ""
        out.append(f"  {p.label} [{p.key}]: {levels}党支部{focus}")
    prefill = f"失分最多的 {imp.prefill_items} 项评分标准" if imp.prefill_items else "不预填"
    out.append(f"  计划预填: {prefill}")
    if imp.lead_days:
        out.append("  整改事项提醒: 完成时限前 " + "、".join(str(d) for d in imp.lead_days) + " 天")
    else:
        out.append("  整改事项提醒: 不提醒")
    out.append(f"  考核验收: 计划年度 {imp.acceptance_month} 月起，当月底前完成；验收内容:")
    out.extend(f"    {i}. {q.label} [{q.key}]" for i, q in enumerate(imp.questions, 1))
    return out
