"""The tenant menu: one list of (endpoint, label, action); each page shows what the user may open."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, url_for
from flask_babel import LazyString
from flask_login import current_user

from fivestar.accounts.policy import Action, authorize, scoped_actions
from fivestar.i18n import _l


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: LazyString
    action: Action
    # An extra condition on the principal, for entries that only make sense to some people.
    visible: Callable[[Any], bool] | None = None


def _has_member_record(principal: Any) -> bool:
    """The account is a party member (its own evaluations, levels and desk cards exist)."""
    return getattr(principal, "member_id", None) is not None


def _tenant_wide_reader(principal: Any) -> bool:
    """Reads every branch of the tenant (工委工作人员, 工委委员, 督查组): reports cover the whole tenant."""
    return authorize(principal, Action.ROUND_VIEW)


TENANT_NAV: list[NavItem] = [
    NavItem("tenant.home.index", _l("首页"), Action.TENANT_VIEW),
    NavItem("tenant.orgs.index", _l("组织"), Action.ORG_VIEW),
    NavItem("tenant.people.index", _l("党员"), Action.MEMBER_VIEW),
    NavItem("tenant.member_round_committee.index", _l("党员评定"), Action.ROUND_VIEW),
    NavItem("tenant.branch_rating_committee.index", _l("支部评定"), Action.ROUND_VIEW),
    NavItem("tenant.reports.index", _l("报表"), Action.ROUND_VIEW, visible=_tenant_wide_reader),
    NavItem("tenant.branch_rating_stars.public", _l("星级公布"), Action.TENANT_VIEW),
    NavItem("tenant.improvement.index", _l("整改提升"), Action.PLAN_VIEW),
    NavItem("tenant.imports.index", _l("导入"), Action.MEMBER_IMPORT),
    NavItem("tenant.accounts.index", _l("账号"), Action.ACCOUNT_MANAGE),
    NavItem("tenant.webhooks.index", _l("群机器人"), Action.NOTIFY_MANAGE),
    NavItem("tenant.rules.index", _l("评定规则"), Action.RULES_VIEW),
    NavItem("tenant.member_round_self_assessment.mine", _l("我的评定"), Action.TENANT_VIEW, visible=_has_member_record),
    NavItem("tenant.inbox.index", _l("消息"), Action.TENANT_VIEW),
    NavItem("tenant.schedule.index", _l("日程"), Action.ROUND_MANAGE),
    NavItem("tenant.exports.index", _l("上报上级"), Action.EXPORT_MANAGE),
    NavItem("tenant.inspection.index", _l("督查"), Action.AUDIT_VIEW),
    NavItem("tenant.standing.index", _l("增星摘星"), Action.STANDING_ADJUST),
    NavItem("tenant.overview.dashboard", _l("看板"), Action.OVERVIEW_VIEW),
    NavItem("tenant.overview.advanced", _l("先进组织"), Action.OVERVIEW_VIEW),
    NavItem("tenant.overview.followups", _l("党员帮扶"), Action.FOLLOWUP_VIEW),
]


def tenant_nav() -> list[tuple[str, str]]:
    """(url, label) for every menu entry that exists and that the current user may use at all.

    Object-scoped actions (a secretary may view members of one branch) are checked against the
    principal's grants: an entry shows when any grant could allow it.
    """
    items = []
    for item in TENANT_NAV:
        if item.endpoint not in current_app.view_functions:
            continue
        if item.visible is not None and not item.visible(current_user):
            continue
        if authorize(current_user, item.action) or _has_scoped_grant(item.action):
            items.append((url_for(item.endpoint), str(item.label)))
    return items


def _has_scoped_grant(action: Action) -> bool:
    return action in scoped_actions(current_user)
