"""The parsed, validated rule set: immutable dataclasses with exact ``Decimal`` numbers.

A ``RuleSet`` is only ever built by the loader (``fivestar.rules.load_rules``), after every check has
passed, so code that receives one may rely on its invariants (bands strictly descending, criteria
summing to their indicator's maximum, keys unique, …).  ``to_document()`` turns it back into the
normalised document (numbers as strings), which is what the database stores and hashes: the same
rules written differently (``80`` vs ``80.0``, other key order, comments) give the same hash.
"""

from .branch import (
    BALLOT_GROUPS,
    Advanced,
    BallotChoice,
    BallotFormName,
    BallotRules,
    BallotSatisfaction,
    Bands,
    BranchRules,
    Criterion,
    Fact,
    Gate,
    GateContext,
    Indicator,
    Medals,
    Meeting,
    Promotion,
    PublicCap,
    PublicScore,
    Quota,
    StarBand,
    Veto,
    VetoEffect,
)
from .common import FORMAT_VERSION, Json, Meta
from .improvement import AcceptanceQuestion, ImprovementRules, Programme
from .member import (
    DEFAULT_JOINT_TOLERANCE,
    Aspect,
    Bonus,
    BonusReason,
    Disqualifier,
    FollowUp,
    LinearForm,
    MemberInputParts,
    MemberRules,
    MemberScheme,
    SchemePart,
    SchemeScore,
)
from .rule_set import RuleSet
from .schedule import DEFAULT_TIMEZONE, BranchSchedule, MemberSchedule, MonthDay, PublicNotice, Reminders, Schedule

__all__ = [
    "BALLOT_GROUPS",
    "DEFAULT_JOINT_TOLERANCE",
    "DEFAULT_TIMEZONE",
    "FORMAT_VERSION",
    "AcceptanceQuestion",
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
    "ImprovementRules",
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
    "Programme",
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
