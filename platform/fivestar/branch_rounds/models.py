"""Tables of the annual branch rating.

One `BranchRound` per tenant and rated year, pinned to the rule-set version it opened with; each rated
branch gets a `BranchRating` that walks the steps (workflow.py). Criterion scores, veto and fact
answers and evidence files hang off the rating. The 议星 meeting hands out single-use ballot codes;
a `Ballot` row holds no code, no voter and no time, and its key is random (README "The 议星 ballot").
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fivestar.db import Base, utcnow
from fivestar.enums import db_enum
from fivestar.numbers import Hundredths
from fivestar.orgs.models import Organisation
from fivestar.tenancy import TenantOwned


class BranchRoundState(enum.StrEnum):
    OPEN = "open"
    FINALISED = "finalised"  # decided in a committee meeting and published (亮星)


class RatingStep(enum.StrEnum):
    """Where one branch is in the year's rating (workflow.py has the transitions)."""

    RECOMMEND = "recommend"  # 荐星: the branch committee scores itself and proposes a level
    DELIBERATE = "deliberate"  # 议星: the meeting, its anonymous ballot, the branch's opinion
    ORG_REVIEW = "org_review"  # the 机关党委/党总支 above forwards or returns it
    COMMITTEE = "committee"  # with the working committee, awaiting 定星
    DECIDED = "decided"  # the committee recorded its level


class AnswerKind(enum.StrEnum):
    VETO = "veto"  # 一票否决 questions of the rules
    FACT = "fact"  # yes/no facts gates look at (e.g. 有党建创新项目)


class MeetingState(enum.StrEnum):
    SETUP = "setup"
    VOTING = "voting"
    CLOSED = "closed"


class VoterGroup(enum.StrEnum):
    MEMBERS = "members"  # 党员
    PUBLIC = "public"  # 群众代表
    DEPUTIES = "deputies"  # 两代表一委员


class BranchRound(TenantOwned, Base):
    __tablename__ = "branch_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)  # the year being rated
    rules_version_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[BranchRoundState] = mapped_column(
        db_enum(BranchRoundState, "branch_round_state"), default=BranchRoundState.OPEN
    )
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_by: Mapped[str] = mapped_column(String(120))
    self_report_due_at: Mapped[dt.datetime] = mapped_column()  # organisations report self-ratings by
    committee_due_at: Mapped[dt.datetime] = mapped_column()  # the committee answers by
    decision_meeting_date: Mapped[dt.date | None] = mapped_column(Date)
    decision_participants: Mapped[str | None] = mapped_column(Text)
    finalised_at: Mapped[dt.datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "year"),  # one round per year, whoever clicks twice
        ForeignKeyConstraint(
            ["tenant_id", "rules_version_id"], ["rule_set_versions.tenant_id", "rule_set_versions.id"]
        ),
    )


class BranchRating(TenantOwned, Base):
    """One branch in one year's round: its self-rating, the meeting's opinion, the decision."""

    __tablename__ = "branch_ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(Integer)
    branch_id: Mapped[int] = mapped_column(Integer)
    step: Mapped[RatingStep] = mapped_column(db_enum(RatingStep, "rating_step"), default=RatingStep.RECOMMEND)
    previous_level: Mapped[int | None] = mapped_column(Integer)  # last year's decided level, if any
    is_new: Mapped[bool] = mapped_column(default=False)  # founded during the rated year
    # 荐星
    public_rate: Mapped[Decimal | None] = mapped_column(Hundredths)  # 群众满意度 in percent, 0..100
    statement: Mapped[str | None] = mapped_column(Text)  # 自我荐星说明
    proposed_total: Mapped[Decimal | None] = mapped_column(Hundredths)
    proposed_level: Mapped[int | None] = mapped_column(Integer)  # by the rule engine
    recommended_at: Mapped[dt.datetime | None] = mapped_column()
    # 议星 → the branch's opinion
    opinion_level: Mapped[int | None] = mapped_column(Integer)
    opinion_statement: Mapped[str | None] = mapped_column(Text)
    opinion_at: Mapped[dt.datetime | None] = mapped_column()
    # the middle level (机关党委/党总支)
    org_comment: Mapped[str | None] = mapped_column(Text)
    forwarded_at: Mapped[dt.datetime | None] = mapped_column()
    forwarded_by: Mapped[str | None] = mapped_column(String(120))
    returned_at: Mapped[dt.datetime | None] = mapped_column()
    return_reason: Mapped[str | None] = mapped_column(Text)
    # 定星
    decided_level: Mapped[int | None] = mapped_column(Integer)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)

    branch: Mapped[Organisation] = relationship(
        primaryjoin="BranchRating.branch_id == Organisation.id",
        foreign_keys="BranchRating.branch_id",
        lazy="raise_on_sql",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("round_id", "branch_id"),
        ForeignKeyConstraint(["tenant_id", "round_id"], ["branch_rounds.tenant_id", "branch_rounds.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        Index("ix_branch_ratings_branch", "tenant_id", "branch_id"),
        CheckConstraint("decided_level IS NULL OR (decided_level >= 0 AND decided_level <= 5)", name="decided"),
        CheckConstraint("opinion_level IS NULL OR (opinion_level >= 0 AND opinion_level <= 5)", name="opinion"),
    )


class CriterionScore(TenantOwned, Base):
    """The branch's own score for one criterion (评分标准) of one indicator, with its note."""

    __tablename__ = "criterion_scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(Integer)
    indicator_key: Mapped[str] = mapped_column(String(60))
    criterion_key: Mapped[str] = mapped_column(String(60))
    score: Mapped[Decimal] = mapped_column(Hundredths)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("rating_id", "indicator_key", "criterion_key"),
        ForeignKeyConstraint(
            ["tenant_id", "rating_id"], ["branch_ratings.tenant_id", "branch_ratings.id"], ondelete="CASCADE"
        ),
    )


class RatingAnswer(TenantOwned, Base):
    """A yes/no answer to one of the rules' veto questions or gate facts, with its explanation."""

    __tablename__ = "rating_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[AnswerKind] = mapped_column(db_enum(AnswerKind, "answer_kind"))
    key: Mapped[str] = mapped_column(String(60))
    value: Mapped[bool] = mapped_column()
    explanation: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("rating_id", "kind", "key"),
        ForeignKeyConstraint(
            ["tenant_id", "rating_id"], ["branch_ratings.tenant_id", "branch_ratings.id"], ondelete="CASCADE"
        ),
    )


class EvidenceFile(TenantOwned, Base):
    """A PDF or image backing one criterion's score; the bytes live in the tenant's folder."""

    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(Integer)
    indicator_key: Mapped[str] = mapped_column(String(60))
    criterion_key: Mapped[str] = mapped_column(String(60))
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(60))  # from the content, never from the upload
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(120), unique=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "rating_id"], ["branch_ratings.tenant_id", "branch_ratings.id"]),
        Index("ix_evidence_files_rating", "rating_id", "indicator_key", "criterion_key"),
    )


class BallotMeeting(TenantOwned, Base):
    """The 议星 meeting of one branch: when, where, how many attendees of each group, and its ballot."""

    __tablename__ = "ballot_meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(Integer)
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(200))
    members_count: Mapped[int] = mapped_column(Integer, default=0)
    public_count: Mapped[int] = mapped_column(Integer, default=0)
    deputies_count: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[MeetingState] = mapped_column(db_enum(MeetingState, "meeting_state"), default=MeetingState.SETUP)
    slips_issued_at: Mapped[dt.datetime | None] = mapped_column()
    voting_closed_at: Mapped[dt.datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("rating_id"),
        ForeignKeyConstraint(["tenant_id", "rating_id"], ["branch_ratings.tenant_id", "branch_ratings.id"]),
        CheckConstraint("members_count >= 0 AND public_count >= 0 AND deputies_count >= 0", name="counts"),
    )


class BallotCode(TenantOwned, Base):
    """A single-use ballot code of one group. Only its hash is stored, and nothing links it to the
    ballot it was used for or to the person it was handed to."""

    __tablename__ = "ballot_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(Integer)
    group: Mapped[VoterGroup] = mapped_column(db_enum(VoterGroup, "voter_group"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "meeting_id"], ["ballot_meetings.tenant_id", "ballot_meetings.id"]),
        Index("ix_ballot_codes_meeting", "meeting_id", "group", "used"),
    )


class BallotBoxEntry(TenantOwned, Base):
    """A ballot cast while voting is open, sealed, waiting for the close (README "The 议星 ballot").

    It is written in the same transaction that uses the code, so on PostgreSQL the two rows share a
    transaction id; that is why it never stays: closing the meeting opens the box, copies the ballots
    to `ballots` in random order and empties the box with TRUNCATE (a new, empty file) on
    PostgreSQL, or with `secure_delete` on SQLite. The content is sealed (AES-GCM, a key derived from
    the instance's secret key, the tenant and meeting bound in): someone holding only the database
    — a copy, the WAL archive, a statement log — while voting is open sees that a code was used, not
    what was voted."""

    __tablename__ = "ballot_box"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random (secrets.token_hex(16))
    meeting_id: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # version ‖ nonce ‖ AES-GCM(group, level, ratings)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "meeting_id"], ["ballot_meetings.tenant_id", "ballot_meetings.id"]),
        Index("ix_ballot_box_meeting", "meeting_id"),
    )


class Ballot(TenantOwned, Base):
    """One anonymous ballot as counted: a random key, the meeting, the voter's group and the rating —
    no code, no voter, no time (README "The 议星 ballot"). Rows arrive only when voting closes, all in one
    transaction and in random order (see `BallotBoxEntry`)."""

    __tablename__ = "ballots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random (secrets.token_hex(16))
    meeting_id: Mapped[int] = mapped_column(Integer)
    group: Mapped[VoterGroup] = mapped_column(db_enum(VoterGroup, "voter_group"))
    level: Mapped[int | None] = mapped_column(Integer)  # the rules' "level" form
    ratings: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the "per indicator" form

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "meeting_id"], ["ballot_meetings.tenant_id", "ballot_meetings.id"]),
        Index("ix_ballots_meeting", "meeting_id", "group"),
        CheckConstraint("level IS NULL OR (level >= 0 AND level <= 5)", name="level"),
    )


class PaperTally(TenantOwned, Base):
    """Paper ballots counted by hand: how many of a group gave `value` (overall, or for one indicator)."""

    __tablename__ = "paper_tallies"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(Integer)
    group: Mapped[VoterGroup] = mapped_column(db_enum(VoterGroup, "voter_group"))
    indicator_key: Mapped[str] = mapped_column(String(60), default="")  # "" = the overall level
    value: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("meeting_id", "group", "indicator_key", "value"),
        ForeignKeyConstraint(["tenant_id", "meeting_id"], ["ballot_meetings.tenant_id", "ballot_meetings.id"]),
        CheckConstraint("count >= 0", name="count"),
    )


class QuarterlyReview(TenantOwned, Base):
    """一季一小评: a branch's short quarterly self-check against the indicators, and the committee's comment."""

    __tablename__ = "quarterly_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(Integer)
    year: Mapped[int] = mapped_column(Integer)
    quarter: Mapped[int] = mapped_column(Integer)
    checks: Mapped[dict[str, Any]] = mapped_column(JSON)  # indicator key → the branch's self-check text
    summary: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime | None] = mapped_column()
    submitted_by: Mapped[str | None] = mapped_column(String(120))
    committee_comment: Mapped[str | None] = mapped_column(Text)
    commented_at: Mapped[dt.datetime | None] = mapped_column()
    commented_by: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)

    branch: Mapped[Organisation] = relationship(
        primaryjoin="QuarterlyReview.branch_id == Organisation.id",
        foreign_keys="QuarterlyReview.branch_id",
        lazy="raise_on_sql",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("branch_id", "year", "quarter"),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        CheckConstraint("quarter >= 1 AND quarter <= 4", name="quarter"),
    )
