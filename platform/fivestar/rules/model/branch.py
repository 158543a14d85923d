"""The branch rating's part of the rule set (党支部星级评定): indicators and their criteria, star bands
and their gates, vetoes, the public score, quota, promotion, the 议星 meeting and ballot.

Criteria, star bands, the quota and the meeting are shared with the member rating (``member``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal

from ..labels import Medal, level_label
from .common import Json, _num


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
        for medal, minimum in ((Medal.GOLD, self.gold), (Medal.SILVER, self.silver), (Medal.BRONZE, self.bronze)):
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
        doc: dict[str, Json] = {
            "key": self.key,
            "label": self.label,
            "max": _num(self.max),
            "criteria": [c.to_document() for c in self.criteria],
            "note": self.note,
        }
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
        return {"weight": _num(self.weight), "label": self.label, "caps": [c.to_document() for c in self.caps]}


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
        return {
            "mode": self.mode,
            "rounding": self.rounding,
            "note": self.note,
            "max_share": {str(lv): _num(s) for lv, s in self.max_share},
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    """逐级晋升: at most ``max_levels_up_per_year`` above last year's level unless an exception fact holds."""

    max_levels_up_per_year: int
    exception_facts: tuple[str, ...] = ()
    new_branch_no_star: bool = False

    def to_document(self) -> dict[str, Json]:
        return {
            "max_levels_up_per_year": self.max_levels_up_per_year,
            "exception_facts": list(self.exception_facts),
            "new_branch_no_star": self.new_branch_no_star,
        }


@dataclass(frozen=True, slots=True)
class Advanced:
    """Who may be proposed as an advanced organisation (先进机关党组织)."""

    branch_min_level: int
    org_min_share: Decimal
    org_share_min_level: int
    illustrative: bool = False

    def to_document(self) -> dict[str, Json]:
        return {
            "branch_min_level": self.branch_min_level,
            "org_min_share": _num(self.org_min_share),
            "org_share_min_level": self.org_share_min_level,
            "illustrative": self.illustrative,
        }


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
        doc: dict[str, Json] = {
            "form": self.form,
            "min_ballots": self.min_ballots,
            "illustrative": self.illustrative,
            "note": self.note,
        }
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
        for name, part in (
            ("public", self.public),
            ("quota", self.quota),
            ("promotion", self.promotion),
            ("advanced", self.advanced),
            ("meeting", self.meeting),
            ("ballot", self.ballot),
        ):
            if part is not None:
                doc[name] = part.to_document()
        return doc
