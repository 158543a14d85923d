"""The isolation walk's map of tenant routes (tests/web/test_isolation_walk.py, test_isolation_cookie.py):
which of district B's objects goes into each URL parameter, the form posted to every route, and a
snapshot of B's rows that shows whether anything of B changed.

A route whose URL parameter is not in `PARAM_KINDS` fails `test_every_tenant_route_parameter_is_mapped`
until someone says which of B's objects to use for it — add the parameter name to `PARAM_KINDS` (and,
for a new kind of object, a loader to `B_OBJECTS`; B's objects are made in isolation_world_support.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import Column, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from fivestar.accounts.models import RoleGrant
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import BranchRating, BranchRound
from fivestar.db import Base
from fivestar.enums import OrgKind
from fivestar.member_rounds.models import Evaluation, MemberRound, RoundBranch
from fivestar.tenants.models import RuleSetVersion, Tenant

# URL parameter name -> the kind of district B's object whose id (or key) goes into it.
# Extend this when you add a route with a new parameter; the kinds are the keys of B_OBJECTS. The
# `see …` notes name the builders of B's objects in isolation_world_support.py.
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


# Something plausible for every form field the walk might meet; ids point at B's objects too.
def form_data(b: dict[str, Any]) -> dict[str, str]:
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


def tenant_rules(app: Flask) -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("tenant.")),
        key=lambda rule: (rule.rule, rule.endpoint),
    )


def object_params(rule: Rule) -> list[str]:
    return sorted(name for name in rule.arguments if name != "tenant_slug")


def response_text(response: Any) -> str:
    """The response as text; downloads (spreadsheets, files) are decoded leniently."""
    return bytes(response.get_data()).decode("utf-8", errors="replace")


def build_url(rule: Rule, values: dict[str, Any]) -> str:
    built = rule.build(values, append_unknown=False)
    assert built is not None, (rule.rule, values)
    return built[1]


def snapshot_b(session: Session, tenant_id: int) -> dict[str, list[tuple[Any, ...]]]:
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
