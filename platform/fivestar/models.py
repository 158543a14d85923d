"""Import every model so that `Base.metadata` is complete (for Alembic and the tests)."""

from fivestar.accounts.models import Account, AuthSession, Invitation, Operator, RoleGrant
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import (
    Ballot,
    BallotCode,
    BallotMeeting,
    BranchRating,
    BranchRound,
    CriterionScore,
    EvidenceFile,
    PaperTally,
    QuarterlyReview,
    RatingAnswer,
)
from fivestar.db import Base
from fivestar.demo.models import DemoClock
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationScore,
    MemberRound,
    Mentorship,
    Objection,
    Rectification,
    RoundBranch,
    TalkRecord,
)
from fivestar.orgs.models import Organisation
from fivestar.outbox.models import OutboxMessage
from fivestar.people.models import Member
from fivestar.scheduling.models import DueItem
from fivestar.tenants.models import RuleSetVersion, Tenant

__all__ = [
    "Account",
    "AuditEvent",
    "AuthSession",
    "Ballot",
    "BallotCode",
    "BallotMeeting",
    "Base",
    "BranchRating",
    "BranchRound",
    "CriterionScore",
    "DemoClock",
    "DueItem",
    "Evaluation",
    "EvaluationScore",
    "EvidenceFile",
    "Invitation",
    "Member",
    "MemberRound",
    "Mentorship",
    "Objection",
    "Operator",
    "Organisation",
    "OutboxMessage",
    "PaperTally",
    "QuarterlyReview",
    "RatingAnswer",
    "Rectification",
    "RoleGrant",
    "RoundBranch",
    "RuleSetVersion",
    "TalkRecord",
    "Tenant",
]
