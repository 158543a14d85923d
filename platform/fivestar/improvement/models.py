"""Tables of the rectification plans (整改提升计划) and their acceptance review (考核验收).

After 定星 every rated branch gets one `ImprovementPlan` per finalised branch round: the programme its
level calls for (示范/提升/转化, from the round's rules), items prefilled where the branch lost most
points, and a `state` that walks DRAFT → PUBLISHED → REVIEWED over the rounds kernel (workflow.py).
The plan's `year` is the year the work is done in: the round's rated year + 1 (a round of 2025 is
decided early in 2026; its plans run through 2026 and are reviewed at the end of 2026, and the
review feeds the 2026 round's dossier). Files (an item's evidence, the review's evidence) are rows
of `ImprovementFile`; the bytes live under `fivestar.kernel.uploads`.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
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


class PlanState(enum.StrEnum):
    DRAFT = "draft"  # the branch writes it
    PUBLISHED = "published"  # published in the unit (公开公示); items are still worked on
    REVIEWED = "reviewed"  # the committee's acceptance review is recorded


class ItemStatus(enum.StrEnum):
    NOT_STARTED = "not_started"  # 未开始
    IN_PROGRESS = "in_progress"  # 推进中
    DONE = "done"  # 已完成


class Verdict(enum.StrEnum):
    MET = "met"  # 达到
    PARTLY = "partly"  # 部分达到
    NOT_MET = "not_met"  # 未达到


class Outcome(enum.StrEnum):
    PROMOTE = "promote"  # 晋位升级 (recommended up)
    KEEP = "keep"  # 保持
    RECTIFY = "rectify"  # 限期再整改, with a deadline


class ImprovementPlan(TenantOwned, Base):
    """One branch's rectification plan after one finalised branch round."""

    __tablename__ = "improvement_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(Integer)  # the finalised branch round the plan follows
    rating_id: Mapped[int] = mapped_column(Integer)
    branch_id: Mapped[int] = mapped_column(Integer)
    year: Mapped[int] = mapped_column(Integer)  # the year of the work: the round's rated year + 1
    level: Mapped[int] = mapped_column(Integer)  # the decided level the plan starts from
    programme_key: Mapped[str] = mapped_column(String(60))
    programme_label: Mapped[str] = mapped_column(String(120))  # as the rules named it then
    goal: Mapped[str | None] = mapped_column(Text)  # 争创目标
    state: Mapped[PlanState] = mapped_column(db_enum(PlanState, "plan_state"), default=PlanState.DRAFT)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column()
    published_by: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)

    branch: Mapped[Organisation] = relationship(
        primaryjoin="ImprovementPlan.branch_id == Organisation.id",
        foreign_keys="ImprovementPlan.branch_id",
        lazy="raise_on_sql",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it from the class
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("round_id", "branch_id"),  # one plan per branch and round, whoever clicks twice
        ForeignKeyConstraint(["tenant_id", "round_id"], ["branch_rounds.tenant_id", "branch_rounds.id"]),
        ForeignKeyConstraint(["tenant_id", "rating_id"], ["branch_ratings.tenant_id", "branch_ratings.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["organisations.tenant_id", "organisations.id"]),
        Index("ix_improvement_plans_year", "tenant_id", "year"),
        Index("ix_improvement_plans_branch", "tenant_id", "branch_id"),
        CheckConstraint("level >= 0 AND level <= 5", name="level"),
    )


class PlanItem(TenantOwned, Base):
    """One line of the plan: the problem, the measure, who answers for it, by when, how far it is."""

    __tablename__ = "improvement_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    indicator_key: Mapped[str | None] = mapped_column(String(60))  # prefilled items name what lost points
    criterion_key: Mapped[str | None] = mapped_column(String(60))
    lost_points: Mapped[Decimal | None] = mapped_column(Hundredths)
    problem: Mapped[str] = mapped_column(Text)
    measure: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(120))  # 责任人 (a name: not everyone has an account)
    deadline: Mapped[dt.date | None] = mapped_column(Date)  # 完成时限 (the tenant's calendar day)
    status: Mapped[ItemStatus] = mapped_column(db_enum(ItemStatus, "plan_item_status"), default=ItemStatus.NOT_STARTED)
    completed_on: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(
            ["tenant_id", "plan_id"], ["improvement_plans.tenant_id", "improvement_plans.id"], ondelete="CASCADE"
        ),
        Index("ix_improvement_items_plan", "tenant_id", "plan_id"),
        Index("ix_improvement_items_deadline", "tenant_id", "deadline"),
    )


class AcceptanceReview(TenantOwned, Base):
    """The committee's year-end acceptance review (考核验收) of one published plan."""

    __tablename__ = "acceptance_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[Outcome] = mapped_column(db_enum(Outcome, "acceptance_outcome"))
    rectify_by: Mapped[dt.date | None] = mapped_column(Date)  # required for RECTIFY
    summary: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reviewed_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        UniqueConstraint("plan_id"),
        ForeignKeyConstraint(["tenant_id", "plan_id"], ["improvement_plans.tenant_id", "improvement_plans.id"]),
        CheckConstraint("outcome <> 'rectify' OR rectify_by IS NOT NULL", name="rectify_by"),
    )


class AcceptanceFinding(TenantOwned, Base):
    """The finding on one of the rules' acceptance questions (text and met / partly / not met)."""

    __tablename__ = "acceptance_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    question_key: Mapped[str] = mapped_column(String(60))
    question: Mapped[str] = mapped_column(Text)  # the question as the rules worded it then
    verdict: Mapped[Verdict] = mapped_column(db_enum(Verdict, "acceptance_verdict"))
    text: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("review_id", "question_key"),
        ForeignKeyConstraint(
            ["tenant_id", "review_id"], ["acceptance_reviews.tenant_id", "acceptance_reviews.id"], ondelete="CASCADE"
        ),
    )


class ImprovementFile(TenantOwned, Base):
    """A PDF or image: an item's evidence (`item_id`), or the acceptance review's (`item_id` None)."""

    __tablename__ = "improvement_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(60))  # from the content, never from the upload
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(120), unique=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "plan_id"], ["improvement_plans.tenant_id", "improvement_plans.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "item_id"], ["improvement_items.tenant_id", "improvement_items.id"], ondelete="CASCADE"
        ),
        Index("ix_improvement_files_plan", "tenant_id", "plan_id", "item_id"),
    )
