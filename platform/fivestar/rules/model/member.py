"""The member rating's part of the rule set (党员星级评定): aspects, scoring schemes, bonus,
disqualifiers and follow-ups.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Literal

from .._reader import Reader
from .branch import Bands, Criterion, Meeting, Quota
from .common import Json, _num


@dataclass(frozen=True, slots=True)
class Aspect:
    """A scored member aspect (学习/敬业/…), or an addition/deduction category; ``max`` bounds input.

    ``star_min`` is used only by the ``named_stars`` scheme: the score that earns this aspect's star.
    ``criteria`` (评分标准, member aspects only, optional) split the aspect into scored items whose
    points add up exactly to ``max``; the aspect's score is then the sum of its criterion scores.
    """

    key: str
    label: str
    max: Decimal
    guide: str = ""
    star_min: Decimal | None = None
    criteria: tuple[Criterion, ...] = ()

    def criterion(self, key: str) -> Criterion | None:
        return next((c for c in self.criteria if c.key == key), None)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"key": self.key, "label": self.label, "max": _num(self.max), "guide": self.guide}
        if self.star_min is not None:
            doc["star_min"] = _num(self.star_min)
        # Only when present, so that rule sets written before criteria existed keep their hash.
        if self.criteria:
            doc["criteria"] = [c.to_document() for c in self.criteria]
        return doc


PartKindName = Literal["aspect", "addition", "deduction"]


@dataclass(frozen=True, slots=True)
class SchemePart:
    """One input field of a member scheme, for forms: which mapping it goes in, key, label, max.

    ``criteria`` are the aspect's scoring criteria (empty when the rules score the aspect as one
    number); a form then asks for one number per criterion, each 0..``points``.
    """

    kind: PartKindName
    key: str
    label: str
    max: Decimal
    criteria: tuple[Criterion, ...] = ()


@dataclass(frozen=True, slots=True)
class LinearForm:
    """A scheme total written as ``constant + Σ sign(kind) × score`` over the scheme's parts.

    This is how code that cannot run Python per member (a set-based SQL ``UPDATE`` scoring a
    whole round) computes the same total as ``MemberScheme.score``: it sums the score rows of each
    part kind with the kind's sign (+1 or −1) and adds the constant.  Kinds not listed count 0.
    Schemes whose total is not linear in the scores (``named_stars`` counts thresholds) have none.
    """

    constant: Decimal
    signs: tuple[tuple[PartKindName, int], ...]

    def sign(self, kind: str) -> int:
        """+1 or −1 for a kind the scheme adds or subtracts, 0 for a kind it does not read."""
        return next((s for k, s in self.signs if k == kind), 0)


@dataclass(frozen=True, slots=True)
class MemberInputParts:
    """The numeric parts of a member's input, already validated as Decimals (see ``MemberInput``)."""

    aspects: Mapping[str, Decimal]
    additions: Mapping[str, Decimal]
    deductions: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class SchemeScore:
    """A scheme's result before bonus: the total the bands apply to and a readable breakdown."""

    total: Decimal
    breakdown: tuple[tuple[str, Decimal], ...]
    earned_stars: tuple[str, ...] = ()


class MemberScheme(ABC):
    """How a member's score is formed; types in ``registry.MEMBER_SCHEMES``.

    A scheme must be monotone in its aspects and additions (raising one never lowers the total)."""

    __slots__ = ()
    type_name: ClassVar[str]
    #: Which input mappings the scheme reads; anything else given is an input error.
    input_kinds: ClassVar[tuple[Literal["aspect", "addition", "deduction"], ...]]
    #: Whether a bonus (加分) can be added to this scheme's total.
    allows_bonus: ClassVar[bool] = True

    @abstractmethod
    def parts(self) -> tuple[SchemePart, ...]:
        """Input fields in display order."""

    @abstractmethod
    def max_total(self) -> Decimal | None:
        """The highest total the scheme can give before bonus (``None`` if unbounded)."""

    @abstractmethod
    def score(self, parts: MemberInputParts) -> SchemeScore:
        """Compute the total; inputs are already range-checked against ``parts()``."""

    @abstractmethod
    def params(self) -> dict[str, Json]:
        """Parameters for ``to_document()``."""

    def linear_form(self) -> LinearForm | None:
        """The total as a linear form for set-based SQL, or ``None`` when it is not linear.

        A scheme that returns a form promises ``score(parts).total == constant + Σ sign × value``
        for every valid input (the property tests check it).
        """
        return None

    @classmethod
    @abstractmethod
    def parse(cls, r: Reader) -> MemberScheme | None:
        """Read the scheme's parameters from its table (errors go to the reader)."""

    def describe(self) -> tuple[str, str]:
        """Name of the scheme in Chinese and English."""
        return (self.type_name, self.type_name)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"type": self.type_name}
        doc.update(self.params())
        return doc


@dataclass(frozen=True, slots=True)
class BonusReason:
    """A reason for bonus points (加分), e.g. commended by a higher body; ``max`` per round."""

    key: str
    label: str
    max: Decimal

    def to_document(self) -> dict[str, Json]:
        return {"key": self.key, "label": self.label, "max": _num(self.max)}


@dataclass(frozen=True, slots=True)
class Bonus:
    """Bonus points added to a member's total, capped in total at ``cap`` (capping is reported)."""

    cap: Decimal
    reasons: tuple[BonusReason, ...]

    def reason(self, key: str) -> BonusReason | None:
        return next((r for r in self.reasons if r.key == key), None)

    def to_document(self) -> dict[str, Json]:
        return {"cap": _num(self.cap), "reasons": [r.to_document() for r in self.reasons]}


@dataclass(frozen=True, slots=True)
class Disqualifier:
    """A reason a member is not rated this round (取消评星资格 → 不予评星)."""

    key: str
    label: str

    def to_document(self) -> dict[str, Json]:
        return {"key": self.key, "label": self.label}


@dataclass(frozen=True, slots=True)
class FollowUp:
    """Support for low-rated and unrated members; the software only flags, people decide."""

    talk_at_or_below: int | None = None
    mentors: int = 0
    mentor_at_or_below: int | None = None
    rectify_days: int | None = None
    review_after_days: int | None = None

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"mentors": self.mentors}
        for name in ("talk_at_or_below", "mentor_at_or_below", "rectify_days", "review_after_days"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc


Cadence = Literal["quarter", "half_year", "year"]
#: The platform's default for ``member.joint_tolerance`` (points), not a sourced value.
DEFAULT_JOINT_TOLERANCE = Decimal(10)


@dataclass(frozen=True, slots=True)
class MemberRules:
    """Everything about the member rating (党员星级评定).

    ``meeting`` is the 党群联评 meeting's make-up (public representatives as a minimum share of the
    branch's members), checked when a secretary records the meeting.
    """

    cadence: Cadence
    scheme: MemberScheme
    stars: Bands
    below_label: str = "无星"
    bonus: Bonus | None = None
    disqualifiers: tuple[Disqualifier, ...] = ()
    follow_up: FollowUp = field(default_factory=FollowUp)
    quota: Quota | None = None
    meeting: Meeting | None = None
    #: Points a member's final score may differ from the 党群联评 score before the inspectors'
    #: anomaly report (督查组 异常情况) lists the member; the scheme's total, bonus left out.
    joint_tolerance: Decimal = DEFAULT_JOINT_TOLERANCE

    @property
    def lowest_level(self) -> int:
        return self.stars.lowest_level

    def disqualifier(self, key: str) -> Disqualifier | None:
        return next((d for d in self.disqualifiers if d.key == key), None)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {
            "cadence": self.cadence,
            "scheme": self.scheme.to_document(),
            "stars": self.stars.to_document(),
            "below_label": self.below_label,
            "disqualifiers": [d.to_document() for d in self.disqualifiers],
            "follow_up": self.follow_up.to_document(),
        }
        if self.bonus is not None:
            doc["bonus"] = self.bonus.to_document()
        if self.quota is not None:
            doc["quota"] = self.quota.to_document()
        if self.meeting is not None:
            doc["meeting"] = self.meeting.to_document()
        if self.joint_tolerance != DEFAULT_JOINT_TOLERANCE:
            # Only when set: documents stored before the parameter existed keep their content hash.
            doc["joint_tolerance"] = str(self.joint_tolerance)
        return doc
