"""After the rating: the programme each level's branches follow (示范/提升/转化), how their
rectification plans (整改提升计划) are prefilled and reminded, and the committee's year-end
acceptance review (考核验收) — its questions and when it is due.

The defaults are the notice's (三、有关要求 2 and 3): a rule file without an ``[improvement]``
section gets exactly them, and its document (and so its content hash) does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import Json


@dataclass(frozen=True, slots=True)
class Programme:
    """One programme (工程) and the decided levels whose branches follow it."""

    key: str
    label: str
    levels: tuple[int, ...]
    focus: str = ""  # what it stresses (重在…)

    def to_document(self) -> dict[str, Json]:
        return {"key": self.key, "label": self.label, "levels": list(self.levels), "focus": self.focus}


@dataclass(frozen=True, slots=True)
class AcceptanceQuestion:
    """One question of the year-end acceptance review, as the committee reads it."""

    key: str
    label: str

    def to_document(self) -> dict[str, Json]:
        return {"key": self.key, "label": self.label}


DEFAULT_PROGRAMMES: tuple[Programme, ...] = (
    Programme("demonstration", "示范工程", (5, 4), "巩固提高、争创品牌"),
    Programme("improvement", "提升工程", (3, 2), "查漏补缺、比学赶超"),
    Programme("transformation", "转化工程", (1, 0), "解决问题、整顿转化"),
)

DEFAULT_QUESTIONS: tuple[AcceptanceQuestion, ...] = (
    AcceptanceQuestion("carried_out", "整改提升计划是否落实到位"),
    AcceptanceQuestion("problems_solved", "突出问题是否得到解决"),
    AcceptanceQuestion("study", "党支部的学习氛围是否更浓厚"),
    AcceptanceQuestion("service", "党支部的服务功能是否有新提升"),
    AcceptanceQuestion("innovation", "党支部的创新活力是否有新加强"),
    AcceptanceQuestion("satisfaction", "群众满意度是否有新的提高"),
)

DEFAULT_PREFILL_ITEMS = 3
DEFAULT_LEAD_DAYS: tuple[int, ...] = (7, 1)
DEFAULT_ACCEPTANCE_MONTH = 12


@dataclass(frozen=True, slots=True)
class ImprovementRules:
    """Programmes by level, prefilled items, reminder lead days, acceptance questions and month.

    ``prefill_items``: how many criteria with the most lost points a new plan starts with (0: none).
    ``lead_days``: calendar days before an item's deadline that its branch is reminded (0 = that day).
    ``acceptance_month``: the month of the plan's year from which the acceptance review is due (it
    is due by that month's end)."""

    programmes: tuple[Programme, ...] = DEFAULT_PROGRAMMES
    questions: tuple[AcceptanceQuestion, ...] = DEFAULT_QUESTIONS
    prefill_items: int = DEFAULT_PREFILL_ITEMS
    lead_days: tuple[int, ...] = DEFAULT_LEAD_DAYS
    acceptance_month: int = DEFAULT_ACCEPTANCE_MONTH
    by_level: dict[int, Programme] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_level", {lv: p for p in self.programmes for lv in p.levels})

    def programme_for(self, level: int) -> Programme:
        """The programme a branch decided at `level` follows (the loader makes every level have one)."""
        return self.by_level[level]

    @property
    def is_default(self) -> bool:
        return self == ImprovementRules()

    def to_document(self) -> dict[str, Json]:
        return {
            "prefill_items": self.prefill_items,
            "lead_days": list(self.lead_days),
            "acceptance_month": self.acceptance_month,
            "programmes": [p.to_document() for p in self.programmes],
            "questions": [q.to_document() for q in self.questions],
        }
