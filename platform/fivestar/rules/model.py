"""The parsed, validated rule set: immutable dataclasses with exact ``Decimal`` numbers.

A ``RuleSet`` is only ever built by the loader (``fivestar.rules.load_rules``), after every check has
passed, so code that receives one may rely on its invariants (bands strictly descending, criteria
summing to their indicator's maximum, keys unique, …).  ``to_document()`` turns it back into the
normalised document (numbers as strings), which is what the database stores and hashes: the same
rules written differently (``80`` vs ``80.0``, other key order, comments) give the same hash.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal
from typing import ClassVar, Literal, TypeAlias

from ._reader import Reader, fmt
from .labels import Medal, level_label

__all__ = [
    "BALLOT_GROUPS",
    "DEFAULT_JOINT_TOLERANCE",
    "Advanced",
    "Aspect",
    "BallotChoice",
    "BallotFormName",
    "BallotRules",
    "BallotSatisfaction",
    "Bands",
    "Bonus",
    "BonusReason",
    "BranchRules",
    "BranchSchedule",
    "Criterion",
    "Disqualifier",
    "Fact",
    "FollowUp",
    "Gate",
    "GateContext",
    "Indicator",
    "Json",
    "LinearForm",
    "Medals",
    "Meeting",
    "MemberInputParts",
    "MemberRules",
    "MemberSchedule",
    "MemberScheme",
    "Meta",
    "MonthDay",
    "Promotion",
    "PublicCap",
    "PublicNotice",
    "PublicScore",
    "Quota",
    "Reminders",
    "RuleSet",
    "Schedule",
    "SchemePart",
    "SchemeScore",
    "StarBand",
    "Veto",
    "VetoEffect",
]

Json: TypeAlias = str | int | bool | list["Json"] | dict[str, "Json"] | None

FORMAT_VERSION = 1


def _num(value: Decimal) -> str:
    """Numbers are stored as strings in documents so JSON never turns them into floats."""
    return fmt(value)


# -- meta -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Meta:
    """Who wrote the rules and from where; ``illustrative`` marks a file that is not a real scheme."""

    format_version: int
    name: str
    description: str = ""
    sources: tuple[str, ...] = ()
    illustrative: bool = False
    notes: str = ""

    def to_document(self) -> dict[str, Json]:
        return {"format_version": self.format_version, "name": self.name,
                "description": self.description, "sources": list(self.sources),
                "illustrative": self.illustrative, "notes": self.notes}


# -- branch -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Criterion:
    """One scoring criterion (评分标准) of an indicator, scored 0..points."""

    key: str
    label: str
    points: Decimal
    guide: str = ""

    def to_document(self) -> dict[str, Json]:
        return {"key": self.key, "label": self.label, "points": _num(self.points), "guide": self.guide}


@dataclass(frozen=True, slots=True)
class Medals:
    """Inclusive minimums for 金星/银星/铜星 on one indicator; a missing medal is not awarded."""

    gold: Decimal | None = None
    silver: Decimal | None = None
    bronze: Decimal | None = None
    illustrative: bool = False

    def medal_for(self, score: Decimal) -> Medal | None:
        for medal, minimum in ((Medal.GOLD, self.gold), (Medal.SILVER, self.silver),
                               (Medal.BRONZE, self.bronze)):
            if minimum is not None and score >= minimum:
                return medal
        return None

    def bands(self) -> tuple[tuple[Medal, Decimal], ...]:
        """Present medals with their minimums, gold first."""
        pairs = ((Medal.GOLD, self.gold), (Medal.SILVER, self.silver), (Medal.BRONZE, self.bronze))
        return tuple((m, v) for m, v in pairs if v is not None)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {m.value: _num(v) for m, v in self.bands()}
        doc["illustrative"] = self.illustrative
        return doc


@dataclass(frozen=True, slots=True)
class Indicator:
    """A branch indicator (指标) scored by its criteria; ``max`` equals the criteria's points."""

    key: str
    label: str
    max: Decimal
    criteria: tuple[Criterion, ...]
    medals: Medals | None = None
    note: str = ""

    def criterion(self, key: str) -> Criterion | None:
        return next((c for c in self.criteria if c.key == key), None)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"key": self.key, "label": self.label, "max": _num(self.max),
                                "criteria": [c.to_document() for c in self.criteria],
                                "note": self.note}
        if self.medals is not None:
            doc["medals"] = self.medals.to_document()
        return doc


@dataclass(frozen=True, slots=True)
class Fact:
    """A yes/no fact the committee records for a branch (e.g. ``innovation_project``: 有党建创新项目)."""

    key: str
    label: str

    def to_document(self) -> dict[str, Json]:
        return {"key": self.key, "label": self.label}


@dataclass(frozen=True, slots=True)
class GateContext:
    """What a gate may look at: indicator totals and medals, facts, and the public rate."""

    indicator_totals: Mapping[str, Decimal]
    medals: Mapping[str, Medal | None]
    facts: Mapping[str, bool]
    public_rate: Decimal | None


class Gate(ABC):
    """A condition on a star level (e.g. 五星 also needs a party-building innovation project).

    Concrete types live in ``registry.GATE_TYPES``; a gate must be *monotone*: a higher score or
    rate never turns a passing gate into a failing one (facts being equal).  The property tests
    rely on this and so does the promise "raising a score never lowers the level".
    """

    __slots__ = ()
    type_name: ClassVar[str]
    label: str

    @abstractmethod
    def passes(self, ctx: GateContext) -> bool:
        """True when the condition holds for this branch."""

    @abstractmethod
    def describe(self) -> tuple[str, str]:
        """The condition in Chinese and English (uses ``label`` when the document gave one)."""

    @abstractmethod
    def params(self) -> dict[str, Json]:
        """The type's own parameters for ``to_document()``."""

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"type": self.type_name}
        doc.update(self.params())
        doc["label"] = self.label
        return doc


@dataclass(frozen=True, slots=True)
class StarBand:
    """One star band: an inclusive minimum (``min``) and the gates the level also needs."""

    level: int
    min: Decimal
    gates: tuple[Gate, ...] = ()

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"min": _num(self.min)}
        if self.gates:
            doc["gates"] = [g.to_document() for g in self.gates]
        return doc


@dataclass(frozen=True, slots=True)
class Bands:
    """Star bands from 五星 down to the lowest level the rules define (contiguous, strictly descending)."""

    bands: tuple[StarBand, ...]

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(b.level for b in self.bands)

    @property
    def lowest_level(self) -> int:
        """The lowest level a score can earn; below its minimum the level is 0."""
        return self.bands[-1].level

    def band(self, level: int) -> StarBand | None:
        return next((b for b in self.bands if b.level == level), None)

    def minimum(self, level: int) -> Decimal | None:
        band = self.band(level)
        return None if band is None else band.min

    def level_for(self, score: Decimal) -> int:
        """The highest level whose inclusive minimum the score reaches; 0 below all bands."""
        for band in self.bands:
            if score >= band.min:
                return band.level
        return 0

    def to_document(self) -> dict[str, Json]:
        return {str(b.level): b.to_document() for b in self.bands}


class VetoEffect(ABC):
    """What a triggered veto (一票否决) does to the level; types in ``registry.VETO_EFFECTS``."""

    __slots__ = ()
    type_name: ClassVar[str]

    @abstractmethod
    def apply(self, level: int) -> int:
        """The level after the veto (never higher than ``level``)."""

    @abstractmethod
    def describe(self) -> tuple[str, str]:
        """What the effect does, in Chinese and English."""

    @abstractmethod
    def params(self) -> dict[str, Json]:
        """Parameters for ``to_document()``."""


@dataclass(frozen=True, slots=True)
class Veto:
    """A veto event the committee answers yes/no; ``effect`` removes or caps the level."""

    key: str
    label: str
    effect: VetoEffect

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"key": self.key, "label": self.label, "effect": self.effect.type_name}
        doc.update(self.effect.params())
        return doc


@dataclass(frozen=True, slots=True)
class PublicCap:
    """Satisfaction strictly below ``below`` caps the level at ``max_level`` (不满 excludes the number)."""

    below: Decimal
    max_level: int
    label: str

    def to_document(self) -> dict[str, Json]:
        return {"below": _num(self.below), "max_level": self.max_level, "label": self.label}


@dataclass(frozen=True, slots=True)
class PublicScore:
    """The public satisfaction rate (群众满意度, 0..1): its weight in the total and the caps it sets.

    Weighted total = (1 − weight) × indicator total + weight × rate × indicator maximum, so the
    weighted total stays on the same scale as the star bands.
    """

    weight: Decimal
    caps: tuple[PublicCap, ...] = ()
    label: str = "群众满意度"

    def to_document(self) -> dict[str, Json]:
        return {"weight": _num(self.weight), "label": self.label,
                "caps": [c.to_document() for c in self.caps]}


QuotaMode = Literal["advisory", "enforced"]
QuotaRounding = Literal["floor", "half_up", "ceil"]


@dataclass(frozen=True, slots=True)
class Quota:
    """Maximum share of rated units per level; advisory quotas warn, enforced ones refuse."""

    mode: QuotaMode
    max_share: tuple[tuple[int, Decimal], ...]
    rounding: QuotaRounding = "floor"
    note: str = ""

    def share_for(self, level: int) -> Decimal | None:
        return next((s for lv, s in self.max_share if lv == level), None)

    def to_document(self) -> dict[str, Json]:
        return {"mode": self.mode, "rounding": self.rounding, "note": self.note,
                "max_share": {str(lv): _num(s) for lv, s in self.max_share}}


@dataclass(frozen=True, slots=True)
class Promotion:
    """逐级晋升: at most ``max_levels_up_per_year`` above last year's level unless an exception fact holds."""

    max_levels_up_per_year: int
    exception_facts: tuple[str, ...] = ()
    new_branch_no_star: bool = False

    def to_document(self) -> dict[str, Json]:
        return {"max_levels_up_per_year": self.max_levels_up_per_year,
                "exception_facts": list(self.exception_facts),
                "new_branch_no_star": self.new_branch_no_star}


@dataclass(frozen=True, slots=True)
class Advanced:
    """Who may be proposed as an advanced organisation (先进机关党组织)."""

    branch_min_level: int
    org_min_share: Decimal
    org_share_min_level: int
    illustrative: bool = False

    def to_document(self) -> dict[str, Json]:
        return {"branch_min_level": self.branch_min_level, "org_min_share": _num(self.org_min_share),
                "org_share_min_level": self.org_share_min_level, "illustrative": self.illustrative}


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting with public representatives: at least this share of the branch's member count.

    ``branch.meeting`` is the branch rating's 议星 meeting, ``member.meeting`` the member round's
    党群联评 meeting; both are checked with ``quota.min_public_representatives``.
    """

    public_representatives_min_share: Decimal

    def to_document(self) -> dict[str, Json]:
        return {"public_representatives_min_share": _num(self.public_representatives_min_share)}


#: The voter groups of the 议星 meeting, in display order: party members (党员), public
#: representatives (群众代表), deputies (两代表一委员).
BALLOT_GROUPS: tuple[str, ...] = ("members", "public", "deputies")
BallotFormName = Literal["level", "indicators"]


@dataclass(frozen=True, slots=True)
class BallotChoice:
    """One answer a voter can give: a stored integer ``value`` and the words on the ballot."""

    value: int
    label: str

    def to_document(self) -> dict[str, Json]:
        return {"value": self.value, "label": self.label}


@dataclass(frozen=True, slots=True)
class BallotSatisfaction:
    """How a satisfaction rate (满意率) is read off the ballots: the share of the ratings given by
    ``groups`` that are at least ``min_value`` (every indicator rating counts once)."""

    min_value: int
    groups: tuple[str, ...] = ("public",)

    def to_document(self) -> dict[str, Json]:
        return {"min_value": self.min_value, "groups": list(self.groups)}


@dataclass(frozen=True, slots=True)
class BallotRules:
    """The 议星 meeting's anonymous ballot (无记名测评): what a voter answers and how it is counted.

    ``form = "level"``: each voter gives the branch one level (五星 … 无星, values 5 … 0).
    ``form = "indicators"``: each voter rates every branch indicator on ``scale`` (e.g. 好 = 4,
    较好 = 3, 一般 = 2, 差 = 1).  A group's figures are shown only from ``min_ballots`` ballots
    (electronic and paper together); ``weights`` combine the groups' means (a group absent from
    ``weights`` is shown but not weighted; none given = every shown ballot counts the same).
    """

    form: BallotFormName
    min_ballots: int
    weights: tuple[tuple[str, Decimal], ...] = ()
    scale: tuple[BallotChoice, ...] = ()
    satisfaction: BallotSatisfaction | None = None
    illustrative: bool = False
    note: str = ""

    def weight(self, group: str) -> Decimal | None:
        """The group's weight; ``None`` when the rules pool the ballots instead of weighting groups."""
        if not self.weights:
            return None
        return next((w for g, w in self.weights if g == group), Decimal(0))

    def choices(self) -> tuple[BallotChoice, ...]:
        """The answers in ballot order, best first (levels 5 … 0 for the level form)."""
        if self.form == "level":
            return tuple(BallotChoice(value=lv, label=level_label(lv)) for lv in range(5, -1, -1))
        return self.scale

    def values(self) -> tuple[int, ...]:
        return tuple(c.value for c in self.choices())

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"form": self.form, "min_ballots": self.min_ballots,
                                "illustrative": self.illustrative, "note": self.note}
        if self.weights:
            doc["weights"] = {g: _num(w) for g, w in self.weights}
        if self.scale:
            doc["scale"] = [c.to_document() for c in self.scale]
        if self.satisfaction is not None:
            doc["satisfaction"] = self.satisfaction.to_document()
        return doc


@dataclass(frozen=True, slots=True)
class BranchRules:
    """Everything about the annual branch rating (党支部星级评定)."""

    indicators: tuple[Indicator, ...]
    stars: Bands
    quarterly_review: bool = False
    facts: tuple[Fact, ...] = ()
    vetoes: tuple[Veto, ...] = ()
    public: PublicScore | None = None
    quota: Quota | None = None
    promotion: Promotion | None = None
    advanced: Advanced | None = None
    meeting: Meeting | None = None
    ballot: BallotRules | None = None

    @property
    def total_max(self) -> Decimal:
        """The highest possible indicator total (sum of indicator maxima)."""
        return sum((i.max for i in self.indicators), Decimal(0))

    def indicator(self, key: str) -> Indicator | None:
        return next((i for i in self.indicators if i.key == key), None)

    def veto(self, key: str) -> Veto | None:
        return next((v for v in self.vetoes if v.key == key), None)

    def fact(self, key: str) -> Fact | None:
        return next((f for f in self.facts if f.key == key), None)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {
            "total_max": _num(self.total_max),
            "quarterly_review": self.quarterly_review,
            "indicators": [i.to_document() for i in self.indicators],
            "stars": self.stars.to_document(),
            "facts": [f.to_document() for f in self.facts],
            "vetoes": [v.to_document() for v in self.vetoes],
        }
        for name, part in (("public", self.public), ("quota", self.quota), ("promotion", self.promotion),
                           ("advanced", self.advanced), ("meeting", self.meeting),
                           ("ballot", self.ballot)):
            if part is not None:
                doc[name] = part.to_document()
        return doc


# -- member -----------------------------------------------------------------------------------
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
        doc: dict[str, Json] = {"key": self.key, "label": self.label, "max": _num(self.max),
                                "guide": self.guide}
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


# -- schedule ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MonthDay:
    """A yearly date; ``day = None`` means the end of the month (x月底)."""

    month: int
    day: int | None = None

    def sort_key(self) -> tuple[int, int]:
        return (self.month, 32 if self.day is None else self.day)

    def describe(self) -> str:
        return f"{self.month}月底" if self.day is None else f"{self.month}月{self.day}日"

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"month": self.month}
        if self.day is not None:
            doc["day"] = self.day
        return doc


@dataclass(frozen=True, slots=True)
class BranchSchedule:
    """Branch round dates within the year: self-ratings reported up, committee answers back."""

    self_report_due: MonthDay
    committee_feedback_due: MonthDay
    opens: MonthDay | None = None
    #: The workers open the round by themselves on `opens` (first working day from it) at `open_time`.
    auto_open: bool = False
    open_time: time = time(9, 0)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"self_report_due": self.self_report_due.to_document(),
                                "committee_feedback_due": self.committee_feedback_due.to_document()}
        if self.opens is not None:
            doc["opens"] = self.opens.to_document()
        if self.auto_open:
            doc["auto_open"] = True
            doc["open_time"] = self.open_time.strftime("%H:%M")
        return doc


OpeningRule = Literal["first_working_day_after_period", "first_day_after_period"]


@dataclass(frozen=True, slots=True)
class MemberSchedule:
    """Member round: when it opens and the step deadlines, counted in (working) days after opening."""

    opens: OpeningRule
    open_time: time
    working_days: bool
    self_days: int
    joint_days: int
    review_days: int
    report_days: int | None = None
    #: The workers open each period's round by themselves at the opening instant.
    auto_open: bool = False

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"opens": self.opens, "open_time": self.open_time.strftime("%H:%M"),
                                "working_days": self.working_days, "self_days": self.self_days,
                                "joint_days": self.joint_days, "review_days": self.review_days}
        if self.report_days is not None:
            doc["report_days"] = self.report_days
        if self.auto_open:
            doc["auto_open"] = True
        return doc


@dataclass(frozen=True, slots=True)
class PublicNotice:
    """公示: how long results are posted for objections."""

    days: int
    working_days: bool

    def to_document(self) -> dict[str, Json]:
        return {"days": self.days, "working_days": self.working_days}


@dataclass(frozen=True, slots=True)
class Reminders:
    """Reminders sent ``lead_days`` calendar days before each deadline, at ``send_time`` tenant time."""

    lead_days: tuple[int, ...] = ()
    send_time: time = time(9, 0)

    def to_document(self) -> dict[str, Json]:
        return {"lead_days": list(self.lead_days), "send_time": self.send_time.strftime("%H:%M")}


@dataclass(frozen=True, slots=True)
class Schedule:
    """All dates and periods of a tenant, in its time zone."""

    timezone: str
    branch: BranchSchedule
    member: MemberSchedule
    public_notice: PublicNotice
    reminders: Reminders = field(default_factory=Reminders)

    def to_document(self) -> dict[str, Json]:
        return {"timezone": self.timezone, "branch": self.branch.to_document(),
                "member": self.member.to_document(),
                "public_notice": self.public_notice.to_document(),
                "reminders": self.reminders.to_document()}


# -- the whole rule set -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RuleSet:
    """A tenant's validated rules.  Build with ``load_rules``; store ``canonical_json()``."""

    meta: Meta
    branch: BranchRules
    member: MemberRules
    schedule: Schedule

    def to_document(self) -> dict[str, Json]:
        """The normalised document (every default filled in, numbers as strings); loads back equal."""
        return {"meta": self.meta.to_document(), "branch": self.branch.to_document(),
                "member": self.member.to_document(), "schedule": self.schedule.to_document()}

    def canonical_json(self) -> str:
        """Stable JSON for storage and hashing: sorted keys, no spaces, UTF-8 text kept readable."""
        return json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON: equal rules, equal hash (a round pins this version)."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def level_label(self, level: int | None, kind: Literal["branch", "member"] = "branch") -> str:
        """Level name using this rule set's name for members below the lowest band."""
        return level_label(level, kind, self.member.below_label if kind == "member" else None)
