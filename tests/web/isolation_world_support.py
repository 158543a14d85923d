"""District B of the isolation walk (tests/web/test_isolation_walk.py, test_isolation_cookie.py):
`two_tenants` with B's names made distinctive (so a page that showed B would be caught) and one object
of B for every kind of URL parameter the walk fills in (isolation_support.B_OBJECTS) — rounds, evidence,
reviews, reports, robots, notices, exports, spot checks, 增星摘星 and 整改提升.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Invitation
from fivestar.accounts.sessions import hash_token, new_token
from fivestar.branch_rounds.models import BranchRating, EvidenceFile, QuarterlyReview
from fivestar.db import utcnow
from fivestar.enums import OrgKind
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import MemberRound, RoundBranch
from fivestar.orgs.models import Organisation
from fivestar.outbox.models import Channel, OutboxMessage
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import RuleSetVersion

# District B's names, all different from A's (two_tenants gives both the same names; the codes and
# member numbers stay overlapping on purpose).
B_NAMES = {
    "party": "乙区审计局机关党委",
    "branch": "乙区审计第一党支部",
    "retirees": "乙区审计离退休支部",
}
B_MEMBER_NAMES = ["乙区党员欧阳甲", "乙区党员欧阳乙", "乙区党员欧阳丙"]

# B's group robot and export target are named distinctively too.
B_WEBHOOK_NAME = "乙区审计通知群"
B_EXPORT_NAME = "乙区报市委组织部"


def make_districts(two_tenants: dict[str, Any], session: Session) -> dict[str, Any]:
    """two_tenants, with B's organisations and members renamed so that B's names are distinctive, and
    one object of B of every kind the walk puts into a URL (what the `districts` fixtures return)."""
    a, b = two_tenants["a"], dict(two_tenants["b"])
    with tenant_context(b["tenant"].id):
        for key, name in B_NAMES.items():
            b[key].name = name
        for member, name in zip(b["members"], B_MEMBER_NAMES, strict=True):
            member.name = name
        b["secretary"].display_name = B_MEMBER_NAMES[0]
        b["root"] = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
        b["root"].name = "乙区直属机关工作委员会"
        session.flush()
        # objects other features address by something else than an id of ours
        b["outbox"] = OutboxMessage(
            channel=Channel.EMAIL,
            recipient="b-secretary@example.test",
            subject="乙区邀请",
            body_text="乙区邀请",
            dedupe_key="isolation-walk",
        )
        session.add(b["outbox"])
        # an import run (the import pages address their runs by audit event id)
        b["import_event"] = audit.record(
            session, "import.run", object_type="imports", object_id="walk", after={"created": 0, "updated": 0}
        )
        b["invitation_token"] = new_token()
        now = utcnow()
        session.add(
            Invitation(
                account_id=b["secretary"].id,
                token_hash=hash_token(b["invitation_token"]),
                created_at=now,
                expires_at=now + dt.timedelta(days=3),
            )
        )
        latest = session.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
        assert latest is not None
        session.add(
            RuleSetVersion(
                version=latest.version + 1,
                source_toml=latest.source_toml,
                document=latest.document,
                content_hash="0" * 64,
                note="only district B has this version",
            )
        )
        session.flush()
    with tenant_context(a["tenant"].id):
        a_numbers = set(session.scalars(select(RuleSetVersion.version)))
    with tenant_context(b["tenant"].id):
        b["b_only_rules_numbers"] = sorted(set(session.scalars(select(RuleSetVersion.version))) - a_numbers)
    assert b["b_only_rules_numbers"]
    b["tenant"].name = "乙区直属机关工作委员会（租户）"
    session.flush()
    _open_member_rounds(session, a, b)
    _open_branch_rounds(session, a, b)
    _b_has_evidence(session, b)
    _b_has_quarterly_review(session, b)
    _b_has_report_job(session, b)
    _b_has_webhook(session, b)
    _b_has_spot_check(session, b)
    _b_has_standing(session, b)
    _b_has_plan(session, b)
    _b_has_notice(session, b)
    _b_has_export(session, b)
    _b_on_public_notice(session, b)
    return {"a": a, "b": b}


def _b_on_public_notice(session: Session, b: dict[str, Any]) -> None:
    """District B's first branch on public notice (a notice link), with an objection filed."""
    from fivestar.member_rounds.models import BranchStep, Objection

    with tenant_context(b["tenant"].id):
        round_branch = session.scalar(select(RoundBranch).order_by(RoundBranch.id).limit(1))
        assert round_branch is not None
        now = utcnow()
        with seeding():
            round_branch.step = BranchStep.NOTICE
        round_branch.notice_token = b["notice_token"] = new_token()
        round_branch.notice_started_at = now - dt.timedelta(hours=1)
        round_branch.notice_ends_at = now + dt.timedelta(days=5)
        b["objection"] = Objection(round_branch_id=round_branch.id, text="乙区异议", filed_at=now)
        session.add(b["objection"])
        session.flush()


def _open_member_rounds(session: Session, *worlds: dict[str, Any]) -> None:
    """A member round open in each district (once, whoever asks), so round routes have B's ids."""
    from fivestar.member_rounds.opening import open_round

    for world in worlds:
        with tenant_context(world["tenant"].id):
            if session.scalar(select(MemberRound.id).limit(1)) is None:
                open_round(session, world["tenant"])
                session.flush()


def _open_branch_rounds(session: Session, *worlds: dict[str, Any]) -> None:
    """A branch rating open in each district (once, whoever asks), so its routes have B's ids. The
    deadlines are given: the rules' own for last year may have passed on the day the tests run."""
    from fivestar.branch_rounds.models import BranchRound
    from fivestar.branch_rounds.opening import open_branch_round
    from fivestar.timekeeping import clock

    for world in worlds:
        with tenant_context(world["tenant"].id):
            if session.scalar(select(BranchRound.id).limit(1)) is None:
                today = clock.today_in(world["tenant"].timezone)
                open_branch_round(
                    session,
                    world["tenant"],
                    self_report_due=today + dt.timedelta(days=30),
                    committee_due=today + dt.timedelta(days=60),
                )
                session.flush()


def _b_has_evidence(session: Session, b: dict[str, Any]) -> None:
    """An evidence file of district B's first branch rating (the row is enough: the walk must be
    refused before any file is read)."""
    with tenant_context(b["tenant"].id):
        rating_id = session.scalar(select(BranchRating.id).order_by(BranchRating.id).limit(1))
        assert rating_id is not None
        b["evidence"] = EvidenceFile(
            rating_id=rating_id,
            indicator_key="leadership",
            criterion_key="secretary",
            original_name="乙区证明材料.pdf",
            content_type="application/pdf",
            size=4,
            sha256="0" * 64,
            storage_key="b" * 48,
            uploaded_by=B_MEMBER_NAMES[0],
        )
        session.add(b["evidence"])
        session.flush()


def _b_has_quarterly_review(session: Session, b: dict[str, Any]) -> None:
    """A quarterly small review (一季一小评) of district B's branch."""
    with tenant_context(b["tenant"].id):
        b["quarterly_review"] = QuarterlyReview(
            branch_id=b["branch"].id, year=2025, quarter=4, checks={"leadership": "乙区自查"}, summary="乙区小结"
        )
        session.add(b["quarterly_review"])
        session.flush()


def _b_has_notice(session: Session, b: dict[str, Any]) -> None:
    """An in-app notice in the inbox of district B's secretary (delivered from B's outbox message)."""
    from fivestar.inbox.models import Notice

    with tenant_context(b["tenant"].id):
        b["notice"] = Notice(
            account_id=b["secretary"].id,
            outbox_message_id=b["outbox"].id,
            title="乙区提醒",
            body="乙区提醒正文",
            link="/",
        )
        session.add(b["notice"])
        session.flush()


def _b_has_spot_check(session: Session, b: dict[str, Any]) -> None:
    """A spot check (随机抽查) drawn in district B's member round."""
    from fivestar.inspection.services import draw_spot_check

    with tenant_context(b["tenant"].id):
        round_id = session.scalar(select(MemberRound.id).limit(1))
        assert round_id is not None
        b["spot_check"] = draw_spot_check(session, round_kind="member", round_id=round_id, branches=1, members=1)
        session.flush()


def _b_has_standing(session: Session, b: dict[str, Any]) -> None:
    """增星摘星 in district B: an open veto event on its branch, and an adjustment with an evidence file
    (the row is enough: the walk must be refused before any file is read)."""
    from fivestar.standing.models import Adjustment, AdjustmentFile, Cause, EventKind, StandingEvent

    with tenant_context(b["tenant"].id):
        b["standing_event"] = StandingEvent(
            branch_id=b["branch"].id,
            kind=EventKind.VETO,
            veto_key="b-veto",
            occurred_on=dt.date(2026, 3, 1),
            note=f"{B_NAMES['branch']}的否决事项",
            recorded_by=B_MEMBER_NAMES[0],
        )
        adjustment = Adjustment(
            branch_id=b["branch"].id,
            from_level=4,
            to_level=2,
            cause=Cause.OTHER,
            reason="乙区的调整理由",
            meeting_name="乙区工委会议",
            meeting_date=dt.date(2026, 3, 2),
            recorded_by=B_MEMBER_NAMES[0],
        )
        session.add_all([b["standing_event"], adjustment])
        session.flush()
        b["adjustment_file"] = AdjustmentFile(
            adjustment_id=adjustment.id,
            original_name="乙区决定.pdf",
            content_type="application/pdf",
            size=10,
            sha256="0" * 64,
            storage_key="c" * 48,
            uploaded_by=B_MEMBER_NAMES[0],
        )
        session.add(b["adjustment_file"])
        session.flush()


def _b_has_plan(session: Session, b: dict[str, Any]) -> None:
    """整改提升 in district B: a published plan of its branch with an item and an evidence file (the
    row is enough: the walk must be refused before any file is read)."""
    from fivestar.improvement.models import ImprovementFile, ImprovementPlan, PlanItem, PlanState

    with tenant_context(b["tenant"].id):
        rating = session.scalar(select(BranchRating).where(BranchRating.branch_id == b["branch"].id).limit(1))
        assert rating is not None
        with seeding():
            b["plan"] = ImprovementPlan(
                round_id=rating.round_id,
                rating_id=rating.id,
                branch_id=b["branch"].id,
                year=2026,
                level=3,
                programme_key="improve",
                programme_label="提升工程",
                state=PlanState.PUBLISHED,
            )
        session.add(b["plan"])
        session.flush()
        b["plan_item"] = PlanItem(plan_id=b["plan"].id, position=1, problem="乙区的整改问题")
        session.add(b["plan_item"])
        session.flush()
        b["improvement_file"] = ImprovementFile(
            plan_id=b["plan"].id,
            item_id=b["plan_item"].id,
            original_name="乙区台账.pdf",
            content_type="application/pdf",
            size=10,
            sha256="0" * 64,
            storage_key="d" * 48,
            uploaded_by=B_MEMBER_NAMES[0],
        )
        session.add(b["improvement_file"])
        session.flush()


def _b_has_webhook(session: Session, b: dict[str, Any]) -> None:
    """A group robot of district B on its branch (the walk must be refused before anything is
    decrypted or sent, so the stored token need not be a real one)."""
    from fivestar.notify.models import Webhook, WebhookKind

    with tenant_context(b["tenant"].id):
        b["webhook"] = Webhook(
            organisation_id=b["branch"].id,
            name=B_WEBHOOK_NAME,
            kind=WebhookKind.WECOM,
            url_encrypted="not-a-token",
            created_by=B_MEMBER_NAMES[0],
        )
        session.add(b["webhook"])
        session.flush()


def _b_has_export(session: Session, b: dict[str, Any]) -> None:
    """An export target of district B with a failed delivery of its member round (the walk must be
    refused before anything is decrypted, resent or sent)."""
    from fivestar.exports.models import ExportDelivery, ExportMethod, ExportState, ExportTarget, ExportTrigger
    from fivestar.reports.jobs.models import ReportFormat, ReportKind

    with tenant_context(b["tenant"].id):
        b["export_target"] = ExportTarget(
            name=B_EXPORT_NAME,
            report_kind=ReportKind.MEMBER_RESULTS,
            report_format=ReportFormat.XLSX,
            method=ExportMethod.EMAIL,
            destination="b-superior@example.test",
            trigger=ExportTrigger.ON_FINALISE,
            created_by=B_MEMBER_NAMES[0],
        )
        session.add(b["export_target"])
        session.flush()
        round_id = session.scalar(select(MemberRound.id).order_by(MemberRound.id).limit(1))
        assert round_id is not None
        b["export_delivery"] = ExportDelivery(
            target_id=b["export_target"].id,
            trigger=ExportTrigger.ON_FINALISE,
            round_type="member",
            round_id=round_id,
            round_key="2026Q1",
            state=ExportState.FAILED,
            attempts=8,
            last_error="乙区接收服务器拒绝",
        )
        session.add(b["export_delivery"])
        session.flush()


def _b_has_report_job(session: Session, b: dict[str, Any]) -> None:
    """A finished report of district B (the row is enough: the walk must be refused before any file
    is looked for); its title carries one of B's names, so a list that showed it would leak."""
    from fivestar.reports.jobs.models import JobState, ReportFormat, ReportJob, ReportKind

    with tenant_context(b["tenant"].id):
        round_id = session.scalar(select(MemberRound.id).order_by(MemberRound.id).limit(1))
        b["report_job"] = ReportJob(
            kind=ReportKind.MEMBER_RESULTS,
            format=ReportFormat.XLSX,
            parameters={"round_id": round_id},
            title=f"{B_NAMES['branch']}评定结果",
            state=JobState.DONE,
            progress=100,
            requested_by=B_MEMBER_NAMES[0],
            file_key="b" * 48,
            filename="乙区报表.xlsx",
        )
        session.add(b["report_job"])
        session.flush()


def distinctive_b_names(b: dict[str, Any]) -> list[str]:
    return [*B_NAMES.values(), *B_MEMBER_NAMES, b["root"].name, b["tenant"].name, B_WEBHOOK_NAME, B_EXPORT_NAME]
