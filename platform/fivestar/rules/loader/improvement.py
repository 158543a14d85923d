"""The ``[improvement]`` section: programmes by level, prefill, lead days, acceptance questions.

Every part is optional and defaults to the notice's (``model.improvement``); what is written is
checked, and each refusal names its field.
"""

from __future__ import annotations

from .._reader import Reader
from ..model.improvement import (
    DEFAULT_ACCEPTANCE_MONTH,
    DEFAULT_LEAD_DAYS,
    DEFAULT_PREFILL_ITEMS,
    DEFAULT_PROGRAMMES,
    DEFAULT_QUESTIONS,
    AcceptanceQuestion,
    ImprovementRules,
    Programme,
)
from .common import _unique

_ALL_LEVELS = frozenset(range(6))


def _improvement(r: Reader) -> ImprovementRules | None:
    prefill = r.integer("prefill_items", required=False, default=DEFAULT_PREFILL_ITEMS, minimum=0, maximum=20)
    leads: tuple[int, ...] | None = DEFAULT_LEAD_DAYS
    if r.has("lead_days"):
        leads = r.int_list("lead_days", minimum=0, maximum=60)
        if leads is not None and len(set(leads)) != len(leads):
            r.error("lead_days", "提醒提前天数重复", "lead days must not repeat")
            leads = None
    month = r.integer("acceptance_month", required=False, default=DEFAULT_ACCEPTANCE_MONTH, minimum=1, maximum=12)
    programmes = _programmes(r) if r.has("programmes") else DEFAULT_PROGRAMMES
    questions = _questions(r) if r.has("questions") else DEFAULT_QUESTIONS
    r.expect("lead_days", "programmes", "questions")
    r.finish()
    if prefill is None or leads is None or month is None or programmes is None or questions is None:
        return None
    return ImprovementRules(
        programmes=programmes,
        questions=questions,
        prefill_items=prefill,
        lead_days=tuple(sorted(leads, reverse=True)),
        acceptance_month=month,
    )


def _programmes(r: Reader) -> tuple[Programme, ...] | None:
    readers = r.tables("programmes", nonempty=True)
    if readers is None:
        return None
    seen: dict[str, str] = {}
    owner: dict[int, str] = {}
    result: list[Programme] = []
    ok = bool(readers)
    for pr in readers:
        key = pr.key()
        label = pr.text("label")
        focus = pr.text("focus", required=False, default="", nonempty=False)
        levels = pr.int_list("levels", minimum=0, maximum=5)
        if pr.has("levels") and levels is not None and not levels:
            pr.error("levels", "至少需要一个星级", "must name at least one level")
            levels = None
        elif not pr.has("levels"):
            pr.error("levels", "缺少必填字段", "required key is missing")
            levels = None
        if levels is not None:
            for level in levels:
                if level in owner:
                    pr.error(
                        "levels",
                        f"星级 {level} 已属于 {owner[level]}：每个星级只能属于一个工程",
                        f"level {level} already belongs to {owner[level]}; each level has one programme",
                    )
                    levels = None
                    break
                owner[level] = pr.path
        pr.finish()
        unique = _unique(pr, key, seen, "工程", "programme")
        if key is None or label is None or focus is None or levels is None or not unique:
            ok = False
            continue
        result.append(Programme(key=key, label=label, levels=tuple(levels), focus=focus))
    missing = sorted(_ALL_LEVELS - owner.keys())
    if missing:
        r.error(
            "programmes",
            "以下星级没有对应的整改提升工程：" + "、".join(str(m) for m in missing),
            "levels without a programme: " + ", ".join(str(m) for m in missing),
        )
        ok = False
    return tuple(result) if ok else None


def _questions(r: Reader) -> tuple[AcceptanceQuestion, ...] | None:
    readers = r.tables("questions", nonempty=True)
    if readers is None or not readers:
        return None
    seen: dict[str, str] = {}
    result: list[AcceptanceQuestion] = []
    ok = True
    for qr in readers:
        key = qr.key()
        label = qr.text("label")
        qr.finish()
        unique = _unique(qr, key, seen, "验收问题", "question")
        if key is None or label is None or not unique:
            ok = False
            continue
        result.append(AcceptanceQuestion(key=key, label=label))
    return tuple(result) if ok else None
