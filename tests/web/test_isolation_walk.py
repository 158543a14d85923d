"""Tenant isolation, proven by walking every tenant route (CONTRIBUTING.md "Tenancy").

Logged in as district A's tenant administrator (the most powerful tenant role), every route whose
endpoint starts with `tenant.` is requested under A's slug with the ids of district B's objects:
each GET and POST (and any other method it accepts) must answer 404, and no row of B may change.
Routes without object parameters must not show B's data. A's cookie under B's slug is worth
nothing.

New routes are covered automatically. A route whose URL parameter is not in `PARAM_KINDS` fails
`test_every_tenant_route_parameter_is_mapped` until someone says which of B's objects to use for
it — add the parameter name to `PARAM_KINDS` (and, for a new kind of object, a loader to
`B_OBJECTS`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Column, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from fivestar import audit
from fivestar.accounts.models import Account, Invitation, RoleGrant
from fivestar.accounts.sessions import hash_token, new_token
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import BranchRating, BranchRound, EvidenceFile, QuarterlyReview
from fivestar.db import Base, utcnow
from fivestar.enums import OrgKind
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import Evaluation, MemberRound, RoundBranch
from fivestar.orgs.models import Organisation
from fivestar.outbox.models import Channel, OutboxMessage
from fivestar.people.models import Member
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant

# URL parameter name -> the kind of district B's object whose id (or key) goes into it.
# Extend this when you add a route with a new parameter; the kinds are the keys of B_OBJECTS.
PARAM_KINDS: dict[str, str] = {
    "org_id": "org",
    "organisation_id": "org",
    "parent_id": "org",
    "branch_id": "org",
    "member_id": "member",
    "account_id": "account",
    "grant_id": "role_grant",
    "version_id": "rule_set_version",
    "rules_id": "rule_set_version",
    "event_id": "audit_event",
    "message_id": "outbox_message",
    # invitation links and public-notice links (tenant.member_round_notice.public): both are walked on every
    # route with a <token>
    "token": "token",
    # rule-set versions are addressed by their number, which both districts have (1, 2, …): walk
    # with numbers that only B has, so a 404 means "not found in A", not "A's own version".
    "number": "b_only_rules_number",
    # member rounds (district B has a round open: see `districts`)
    "round_branch_id": "round_branch",
    "evaluation_id": "evaluation",
    "round_id": "member_round",
    "objection_id": "objection",
    # branch rounds (district B has its branch rating open: see `districts`)
    "rating_id": "branch_rating",
    "evidence_id": "evidence_file",  # 荐星 evidence files (B has one: see `_b_has_evidence`)
    "branch_round_id": "branch_round",  # the committee's pages of a year's branch rating
    "review_id": "quarterly_review",  # 一季一小评 (B has one: see `_b_has_quarterly_review`)
    "job_id": "report_job",  # 报表 (B has a finished one: see `_b_has_report_job`)
    "webhook_id": "webhook",  # 群机器人 (B has one: see `_b_has_webhook`)
    "notice_id": "inbox_notice",  # 站内消息 (B's secretary has one: see `_b_has_notice`)
    "target_id": "export_target",  # 上报上级 (B has one, with a failed delivery: see `_b_has_export`)
    "delivery_id": "export_delivery",
    "check_id": "spot_check",  # 随机抽查 of the inspectors (B has one: see `_b_has_spot_check`)
    "prompt_id": "standing_event",  # 增星摘星: a veto event of B's branch (see `_b_has_standing`)
    "adjustment_file_id": "adjustment_file",  # an adjustment's evidence file of B
    "plan_id": "improvement_plan",  # 整改提升: B's branch has a plan with an item and a file (`_b_has_plan`)
    "item_id": "plan_item",
    "file_id": "improvement_file",
}

# Kind -> how to find B's objects of that kind (several values: each is walked).
B_OBJECTS: dict[str, Callable[[Session, dict[str, Any]], list[Any]]] = {
    "org": lambda session, b: [b["branch"].id, b["party"].id, b["root"].id],
    "member": lambda session, b: [member.id for member in b["members"]],
    "account": lambda session, b: [b["admin"].id, b["secretary"].id],
    "role_grant": lambda session, b: list(
        session.scalars(select(RoleGrant.id).where(RoleGrant.tenant_id == b["tenant"].id).order_by(RoleGrant.id))
    ),
    "rule_set_version": lambda session, b: list(
        session.scalars(select(RuleSetVersion.id).where(RuleSetVersion.tenant_id == b["tenant"].id))
    ),
    "audit_event": lambda session, b: [
        b["import_event"].id,
        *session.scalars(select(AuditEvent.id).where(AuditEvent.tenant_id == b["tenant"].id).limit(2)),
    ],
    "outbox_message": lambda session, b: [b["outbox"].id],
    "invitation_token": lambda session, b: [b["invitation_token"]],
    "token": lambda session, b: [b["invitation_token"], b["notice_token"]],
    "b_only_rules_number": lambda session, b: b["b_only_rules_numbers"],
    "round_branch": lambda session, b: list(
        session.scalars(select(RoundBranch.id).where(RoundBranch.tenant_id == b["tenant"].id).order_by(RoundBranch.id))
    ),
    "evaluation": lambda session, b: list(
        session.scalars(select(Evaluation.id).where(Evaluation.tenant_id == b["tenant"].id).order_by(Evaluation.id))
    ),
    "member_round": lambda session, b: list(
        session.scalars(select(MemberRound.id).where(MemberRound.tenant_id == b["tenant"].id).order_by(MemberRound.id))
    ),
    "objection": lambda session, b: [b["objection"].id],
    "branch_rating": lambda session, b: list(
        session.scalars(
            select(BranchRating.id).where(BranchRating.tenant_id == b["tenant"].id).order_by(BranchRating.id)
        )
    ),
    "evidence_file": lambda session, b: [b["evidence"].id],
    "branch_round": lambda session, b: list(
        session.scalars(select(BranchRound.id).where(BranchRound.tenant_id == b["tenant"].id).order_by(BranchRound.id))
    ),
    "quarterly_review": lambda session, b: [b["quarterly_review"].id],
    "report_job": lambda session, b: [b["report_job"].id],
    "webhook": lambda session, b: [b["webhook"].id],
    "inbox_notice": lambda session, b: [b["notice"].id],
    "export_target": lambda session, b: [b["export_target"].id],
    "export_delivery": lambda session, b: [b["export_delivery"].id],
    "spot_check": lambda session, b: [b["spot_check"].id],
    "standing_event": lambda session, b: [b["standing_event"].id],
    "adjustment_file": lambda session, b: [b["adjustment_file"].id],
    "improvement_plan": lambda session, b: [b["plan"].id],
    "plan_item": lambda session, b: [b["plan_item"].id],
    "improvement_file": lambda session, b: [b["improvement_file"].id],
}

# District B's names, all different from A's (two_tenants gives both the same names; the codes and
# member numbers stay overlapping on purpose).
B_NAMES = {
    "party": "乙区审计局机关党委",
    "branch": "乙区审计第一党支部",
    "retirees": "乙区审计离退休支部",
}
B_MEMBER_NAMES = ["乙区党员欧阳甲", "乙区党员欧阳乙", "乙区党员欧阳丙"]


# Something plausible for every form field the walk might meet; ids point at B's objects too.
def _form_data(b: dict[str, Any]) -> dict[str, str]:
    return {
        "name": "越权写入",
        "display_name": "越权写入",
        "username": "intruder",
        "reason": "越权",
        "note": "越权",
        "kind": OrgKind.BRANCH.value,
        "code": "B001",
        "member_no": "NO001",
        "gender": "male",
        "phone": "13800000000",
        "joined_on": "2010-07-01",
        "left_on": "2024-01-01",
        "standing": "full",
        "position": "member",
        "status": "active",
        "version": "1",
        "sort_order": "0",
        "branch_id": str(b["branch"].id),
        "parent_id": str(b["party"].id),
        "organisation_id": str(b["branch"].id),
        "member_id": str(b["members"][0].id),
        "account_id": str(b["admin"].id),
        "role": "tenant_admin",
        "confirm": "y",
    }


WALKED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Parameterless endpoints not posted to by the walk (posting would end the walking session).
NOT_POSTED = frozenset({"tenant.auth.logout"})


def _tenant_rules(app: Flask) -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("tenant.")),
        key=lambda rule: (rule.rule, rule.endpoint),
    )


def _object_params(rule: Rule) -> list[str]:
    return sorted(name for name in rule.arguments if name != "tenant_slug")


def _body(response: Any) -> str:
    """The response as text; downloads (spreadsheets, files) are decoded leniently."""
    return bytes(response.get_data()).decode("utf-8", errors="replace")


def _build(rule: Rule, values: dict[str, Any]) -> str:
    built = rule.build(values, append_unknown=False)
    assert built is not None, (rule.rule, values)
    return built[1]


@pytest.fixture
def districts(two_tenants: dict[str, Any], session: Session) -> dict[str, Any]:
    """two_tenants, with B's organisations and members renamed so that B's names are distinctive."""
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


B_WEBHOOK_NAME = "乙区审计通知群"
B_EXPORT_NAME = "乙区报市委组织部"


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


def _distinctive_b_names(b: dict[str, Any]) -> list[str]:
    return [*B_NAMES.values(), *B_MEMBER_NAMES, b["root"].name, b["tenant"].name, B_WEBHOOK_NAME, B_EXPORT_NAME]


def _snapshot_b(session: Session, tenant_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of B in every table that has a tenant_id column, plus B's tenant row (Core
    statements on the test's connection: the tenant hook is not involved)."""
    connection = session.connection()
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for table in Base.metadata.sorted_tables:
        column: Column[Any] | None = table.c.get("tenant_id")  # type: ignore[assignment]
        if table.name == Tenant.__tablename__:
            column = table.c.id
        if column is None:
            continue
        order = list(table.primary_key.columns) or list(table.c)
        rows = connection.execute(select(table).where(column == tenant_id).order_by(*order)).all()
        snapshot[table.name] = [tuple(row) for row in rows]
    return snapshot


def test_every_tenant_route_parameter_is_mapped(app: Flask) -> None:
    """Fails for a new route whose parameter nobody mapped to one of B's objects yet."""
    unmapped = {
        f"{rule.endpoint} {rule.rule}: <{name}>"
        for rule in _tenant_rules(app)
        for name in _object_params(rule)
        if name not in PARAM_KINDS or PARAM_KINDS[name] not in B_OBJECTS
    }
    assert not unmapped, (
        "tenant routes with URL parameters the isolation walk cannot fill; add them to PARAM_KINDS "
        "(and a loader to B_OBJECTS for a new kind) in tests/web/test_isolation_walk.py:\n"
        + "\n".join(sorted(unmapped))
    )


def test_walk_every_tenant_route_with_district_bs_ids(
    app: Flask, client: FlaskClient, login: Any, session: Session, districts: dict[str, Any]
) -> None:
    a, b = districts["a"], districts["b"]
    login(a["tenant"], a["admin"])
    with cross_tenant("the isolation test reads district B to attack it"):
        b_values = {kind: loader(session, b) for kind, loader in B_OBJECTS.items()}
    for kind, values in b_values.items():
        assert values, f"district B has no {kind} to walk with"
    before = _snapshot_b(session, b["tenant"].id)
    b_audit_before = before[AuditEvent.__tablename__]
    form = _form_data(b)
    names = _distinctive_b_names(b)

    failures: list[str] = []
    walked: list[str] = []
    for rule in _tenant_rules(app):
        params = _object_params(rule)
        if any(name not in PARAM_KINDS for name in params):
            continue  # reported by test_every_tenant_route_parameter_is_mapped
        methods = [method for method in WALKED_METHODS if method in (rule.methods or set())]
        if not params:
            # No object in the address: the page must not show B, and a form posted with B's ids
            # in its fields (a branch of B for a new member, …) must not write to B.
            url = _build(rule, {"tenant_slug": a["tenant"].slug})
            for method in methods:
                if method != "GET" and rule.endpoint in NOT_POSTED:
                    continue
                response = client.open(url, method=method, data=form if method != "GET" else None)
                walked.append(f"{method} {url}")
                if response.status_code >= 500:
                    failures.append(f"{method} {url}: {response.status_code}")
                leaked = [name for name in names if name in _body(response)]
                if leaked:
                    failures.append(f"{method} {url} shows district B's {leaked}")
            continue
        rounds = max(len(b_values[PARAM_KINDS[name]]) for name in params)
        for index in range(rounds):
            values: dict[str, Any] = {"tenant_slug": a["tenant"].slug}
            for name in params:
                candidates = b_values[PARAM_KINDS[name]]
                values[name] = candidates[index % len(candidates)]
            url = _build(rule, values)
            for method in methods:
                response = client.open(url, method=method, data=form if method != "GET" else None)
                walked.append(f"{method} {url}")
                if response.status_code != 404:
                    failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, expected 404")
                body = _body(response)
                leaked = [name for name in names if name in body]
                if leaked:
                    failures.append(f"{method} {url} shows district B's {leaked}")

    assert walked, "no tenant route was walked"
    assert not failures, "\n".join(failures)
    # Control: with A's own objects the same GET routes answer (so the 404s above come from the
    # tenant boundary, not from a wrong URL).
    a_values = {"org": [a["branch"].id], "member": [a["members"][0].id], "account": [a["admin"].id]}
    controlled = 0
    for rule in _tenant_rules(app):
        params = _object_params(rule)
        if not params or "GET" not in (rule.methods or set()):
            continue
        if not all(PARAM_KINDS.get(name) in a_values for name in params):
            continue
        url = _build(rule, {"tenant_slug": a["tenant"].slug, **{n: a_values[PARAM_KINDS[n]][0] for n in params}})
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        controlled += 1
    assert controlled >= 8
    session.expire_all()
    after = _snapshot_b(session, b["tenant"].id)
    assert after[AuditEvent.__tablename__] == b_audit_before, "an audit event was written for district B"
    changed = sorted(name for name in before if before[name] != after.get(name))
    assert not changed, f"district B's rows changed in: {changed}"
    # the walk covered at least the routes this module was written against
    endpoints = {rule.endpoint for rule in _tenant_rules(app)}
    assert {"tenant.orgs.detail", "tenant.people.edit", "tenant.orgs.move"} <= endpoints


def test_a_cookie_of_district_a_is_worth_nothing_under_district_b(
    app: Flask, client: FlaskClient, login: Any, session: Session, districts: dict[str, Any]
) -> None:
    """Under B's slug, A's logged-in cookie gets exactly what a visitor without any cookie gets:
    the login redirect for B (or a 404), and on B's public pages (login, an invitation link) the
    same page as anyone — never a logged-in view of B."""
    a, b = districts["a"], districts["b"]
    login(a["tenant"], a["admin"])
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 200  # logged in at home
    with cross_tenant("the isolation test reads district B to attack it"):
        b_values = {kind: loader(session, b) for kind, loader in B_OBJECTS.items()}
    urls = []
    for rule in _tenant_rules(app):
        params = _object_params(rule)
        if any(name not in PARAM_KINDS for name in params) or "GET" not in (rule.methods or set()):
            continue
        values: dict[str, Any] = {"tenant_slug": b["tenant"].slug}
        values.update({name: b_values[PARAM_KINDS[name]][0] for name in params})
        urls.append(_build(rule, values))

    def visit() -> dict[str, tuple[int, str | None, str]]:
        seen = {}
        for url in urls:
            response = client.get(url)
            seen[url] = (response.status_code, response.headers.get("Location"), _body(response))
        return seen

    with_cookie = visit()
    # A is still logged in at A: visiting B changed nothing about that
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 200
    client.delete_cookie(app.config["SESSION_COOKIE_NAME"])
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 302  # now really nobody
    without = visit()

    login_path = f"/t/{b['tenant'].slug}/login"
    redirected = 0
    for url in urls:
        status, location, body = with_cookie[url]
        assert (status, location) == without[url][:2], (url, status, without[url][0])
        assert a["admin"].display_name not in body, url
        assert f'action="{b["tenant"].slug}/logout"' not in body and 'action="/t/district-b/logout"' not in body, url
        if status == 302:
            assert location is not None and location.startswith(login_path), (url, location)
            redirected += 1
        else:
            assert status in (200, 404), (url, status)
    assert redirected >= 10  # home, orgs and people pages at least


def test_tenant_routes_known_when_this_walk_was_written(app: Flask) -> None:
    """A readable inventory (kept small on purpose): the walk itself covers every route."""
    endpoints = {rule.endpoint for rule in _tenant_rules(app)}
    for endpoint in (
        "tenant.home.index",
        "tenant.auth.login",
        "tenant.auth.logout",
        "tenant.orgs.index",
        "tenant.orgs.detail",
        "tenant.orgs.create",
        "tenant.orgs.edit",
        "tenant.orgs.move",
        "tenant.orgs.deactivate",
        "tenant.orgs.reactivate",
        "tenant.people.index",
        "tenant.people.detail",
        "tenant.people.create",
        "tenant.people.edit",
        "tenant.people.move",
        "tenant.people.deactivate",
        "tenant.people.reactivate",
    ):
        assert endpoint in endpoints, endpoint


def test_the_snapshot_would_notice_a_change(session: Session, districts: dict[str, Any]) -> None:
    """The walk's "nothing changed" check can fail: a write to B shows in the snapshot."""
    b = districts["b"]
    before = _snapshot_b(session, b["tenant"].id)
    with tenant_context(b["tenant"].id):
        member = session.scalar(select(Member).where(Member.id == b["members"][0].id))
        assert member is not None
        member.phone = "13999999999"
        account = session.scalar(select(Account).where(Account.id == b["admin"].id))
        assert account is not None
        session.flush()
    after = _snapshot_b(session, b["tenant"].id)
    assert before["members"] != after["members"] and before["accounts"] == after["accounts"]
