"""The rule engine: tenant rule sets (TOML) → validated ``RuleSet`` → pure evaluators.

Pure Python (no database, no Flask) so that it can be tested quickly and used from web views,
workers and the CLI alike.  Public API::

    from fivestar.rules import load_rules, evaluate_branch, BranchInput
    rules = load_rules(text)                    # RuleSetError(.errors) on any problem
    result = evaluate_branch(rules, BranchInput(scores={...}, facts={...}))
    result.level, result.reasons

The format is documented in ``tenants/README.md``.
"""

from .ballot import (
    DEFAULT_BALLOT,
    OVERALL,
    BallotItem,
    BallotResult,
    GroupCounts,
    GroupResult,
    ItemResult,
    ballot_items,
    ballot_rules,
    tally_ballots,
)
from .errors import InputError, RuleError, RuleSetError
from .evaluate import (
    BranchInput,
    BranchResult,
    IndicatorResult,
    MemberInput,
    MemberResult,
    Reason,
    ScoreValue,
    evaluate_branch,
    evaluate_member,
)
from .labels import (
    LEVELS,
    NOT_RATED_LABEL,
    Medal,
    level_label,
    level_label_en,
    medal_label,
    programme_for_level,
)
from .loader import load_rules, load_rules_data, load_rules_file
from .model import (
    BALLOT_GROUPS,
    AcceptanceQuestion,
    BallotChoice,
    BallotRules,
    BallotSatisfaction,
    Bands,
    BranchRules,
    Criterion,
    ImprovementRules,
    Indicator,
    LinearForm,
    MemberRules,
    Programme,
    RuleSet,
    SchemePart,
    StarBand,
)
from .quota import (
    QuotaLine,
    QuotaReport,
    advanced_branch,
    advanced_organisation,
    check_quota,
    min_member_public_representatives,
    min_public_representatives,
)
from .registry import known_types
from .schedule import (
    MemberDeadlines,
    Period,
    add_days,
    branch_deadlines,
    member_period,
    member_round_deadlines,
    member_round_opening,
    public_notice_end,
    reminder_dates,
)
from .summary import summarize

__all__ = [
    "BALLOT_GROUPS",
    "DEFAULT_BALLOT",
    "LEVELS",
    "NOT_RATED_LABEL",
    "OVERALL",
    "AcceptanceQuestion",
    "BallotChoice",
    "BallotItem",
    "BallotResult",
    "BallotRules",
    "BallotSatisfaction",
    "Bands",
    "BranchInput",
    "BranchResult",
    "BranchRules",
    "Criterion",
    "GroupCounts",
    "GroupResult",
    "ImprovementRules",
    "Indicator",
    "IndicatorResult",
    "InputError",
    "ItemResult",
    "LinearForm",
    "Medal",
    "MemberDeadlines",
    "MemberInput",
    "MemberResult",
    "MemberRules",
    "Period",
    "Programme",
    "QuotaLine",
    "QuotaReport",
    "Reason",
    "RuleError",
    "RuleSet",
    "RuleSetError",
    "SchemePart",
    "ScoreValue",
    "StarBand",
    "add_days",
    "advanced_branch",
    "advanced_organisation",
    "ballot_items",
    "ballot_rules",
    "branch_deadlines",
    "check_quota",
    "evaluate_branch",
    "evaluate_member",
    "indicator_list",
    "known_types",
    "level_label",
    "level_label_en",
    "load_rules",
    "load_rules_data",
    "load_rules_file",
    "medal_label",
    "member_parts",
    "member_period",
    "member_round_deadlines",
    "member_round_opening",
    "min_member_public_representatives",
    "min_public_representatives",
    "programme_for_level",
    "public_notice_end",
    "reminder_dates",
    "summarize",
    "tally_ballots",
]


def indicator_list(rules: RuleSet) -> tuple[Indicator, ...]:
    """Branch indicators in display order, each with ``key``, ``label``, ``max`` and ``criteria``."""
    return rules.branch.indicators


def member_parts(rules: RuleSet) -> tuple[SchemePart, ...]:
    """Member input fields (aspects, or additions/deductions) with their maximum points."""
    return rules.member.scheme.parts()
