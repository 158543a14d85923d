"""Import every model so that `Base.metadata` is complete (for Alembic and the tests)."""

from fivestar.accounts.models import Account, AuthSession, Invitation, Operator, RoleGrant
from fivestar.audit.models import AuditChainHead, AuditEvent
from fivestar.branch_rounds.models import (
    Ballot,
    BallotBoxEntry,
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
from fivestar.exports.models import ExportDelivery, ExportTarget
from fivestar.improvement.models import (
    AcceptanceFinding,
    AcceptanceReview,
    ImprovementFile,
    ImprovementPlan,
    PlanItem,
)
from fivestar.inbox.models import Notice
from fivestar.inspection.models import SpotCheck
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
from fivestar.notify.models import Webhook
from fivestar.orgs.models import Organisation
from fivestar.outbox.models import OutboxMessage
from fivestar.people.models import Member
from fivestar.reports.jobs.models import ReportJob
from fivestar.scheduling.models import DueItem
from fivestar.standing.models import Adjustment, AdjustmentFile, LevelHistory, StandingEvent
from fivestar.tenants.models import RuleSetVersion, Tenant

__all__ = [
    "AcceptanceFinding",
    "AcceptanceReview",
    "Account",
    "Adjustment",
    "AdjustmentFile",
    "AuditChainHead",
    "AuditEvent",
    "AuthSession",
    "Ballot",
    "BallotBoxEntry",
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
    "ExportDelivery",
    "ExportTarget",
    "ImprovementFile",
    "ImprovementPlan",
    "Invitation",
    "LevelHistory",
    "Member",
    "MemberRound",
    "Mentorship",
    "Notice",
    "Objection",
    "Operator",
    "Organisation",
    "OutboxMessage",
    "PaperTally",
    "PlanItem",
    "QuarterlyReview",
    "RatingAnswer",
    "Rectification",
    "ReportJob",
    "RoleGrant",
    "RoundBranch",
    "RuleSetVersion",
    "SpotCheck",
    "StandingEvent",
    "TalkRecord",
    "Tenant",
    "Webhook",
]
