"""Who may do what: one `authorize(principal, action, obj)` decision, deny by default.

Every view calls `require` (or `authorize`) before touching an object, and list pages filter with
the matching `*_scope` clause, so a page never shows what the same principal could not open.

Roles (enums.Role): tenant administrators do everything in their tenant; committee members and
inspectors read everything; organisation staff manage the subtree of their 机关党委/党总支; branch
secretaries manage their branch's people; branch committee members read their branch; members see
their own record and their branch. Operators manage tenants and see no tenant's inside.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from fivestar.accounts.models import Account
from fivestar.accounts.principal import Principal
from fivestar.enums import Role
from fivestar.errors import ForbiddenError, NotVisibleError
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenants.models import Tenant


class Action(StrEnum):
    PLATFORM_MANAGE = "platform.manage"
    TENANT_VIEW = "tenant.view"
    ORG_VIEW = "org.view"
    ORG_MANAGE = "org.manage"
    MEMBER_VIEW = "member.view"
    MEMBER_CONTACT = "member.contact"  # see phone numbers: the office and the branch leaders, not fellow members
    MEMBER_EDIT = "member.edit"
    MEMBER_MOVE = "member.move"
    MEMBER_DEACTIVATE = "member.deactivate"
    MEMBER_IMPORT = "member.import"
    ACCOUNT_VIEW = "account.view"
    ACCOUNT_MANAGE = "account.manage"
    RULES_VIEW = "rules.view"
    RULES_MANAGE = "rules.manage"
    AUDIT_VIEW = "audit.view"
    ROUND_MANAGE = "round.manage"  # open, extend, close rating rounds (工委工作人员)
    ROUND_VIEW = "round.view"  # progress and results of branches in scope
    ROUND_RETURN = "round.return"  # the committee returns a branch's results with a reason
    ROUND_EVALUATE = "round.evaluate"  # the branch runs its steps (书记, 支委)
    SELF_ASSESS = "round.self_assess"  # a member's own self-assessment
    BRANCH_RATE = "branch.rate"  # 荐星 and 议星: the branch committee rates its own branch
    BRANCH_FORWARD = "branch.forward"  # the 机关党委/党总支 above forwards or returns a branch's rating
    BRANCH_DECIDE = "branch.decide"  # 定星: the working committee decides levels (and comments 小评)
    NOTIFY_MANAGE = "notify.manage"  # group robots (群机器人) and their secrets: tenant administrators only
    EXPORT_MANAGE = "export.manage"  # reports sent upward (上报上级) and their secrets: tenant administrators only
    OVERVIEW_VIEW = "overview.view"  # the committee's dashboard and advanced-organisation report: the district
    FOLLOWUP_VIEW = "followup.view"  # the member follow-up overview: the district, a subtree, one's own branch
    PLAN_VIEW = "plan.view"  # a branch's rectification plan (整改提升计划), drafts included
    PLAN_EDIT = "plan.edit"  # the branch writes, works and publishes its own plan (书记, 支委)
    PLAN_REVIEW = "plan.review"  # the committee's year-end acceptance review (考核验收)
    STANDING_VIEW = "standing.view"  # a branch's or member's level history: the committee, inspectors, the own branch
    STANDING_ADJUST = "standing.adjust"  # 增星摘星 and the mid-year events that prompt it: the working committee


READ_ALL_ROLES = frozenset({Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER, Role.INSPECTOR})

# Actions each organisation-scoped role may take on objects inside its scope.
_SCOPED: dict[Role, frozenset[Action]] = {
    Role.ORG_STAFF: frozenset(
        {
            Action.ORG_VIEW,
            Action.ORG_MANAGE,
            Action.MEMBER_VIEW,
            Action.MEMBER_CONTACT,
            Action.MEMBER_EDIT,
            Action.MEMBER_MOVE,
            Action.MEMBER_DEACTIVATE,
            Action.ROUND_VIEW,
            Action.BRANCH_FORWARD,
            Action.FOLLOWUP_VIEW,
            Action.PLAN_VIEW,
        }
    ),
    Role.BRANCH_SECRETARY: frozenset(
        {
            Action.ORG_VIEW,
            Action.MEMBER_VIEW,
            Action.MEMBER_CONTACT,
            Action.MEMBER_EDIT,
            Action.MEMBER_DEACTIVATE,
            Action.ROUND_VIEW,
            Action.ROUND_EVALUATE,
            Action.BRANCH_RATE,
            Action.FOLLOWUP_VIEW,
            Action.PLAN_VIEW,
            Action.PLAN_EDIT,
            Action.STANDING_VIEW,
        }
    ),
    Role.BRANCH_COMMITTEE: frozenset(
        {
            Action.ORG_VIEW,
            Action.MEMBER_VIEW,
            Action.MEMBER_CONTACT,
            Action.ROUND_VIEW,
            Action.ROUND_EVALUATE,
            Action.BRANCH_RATE,
            Action.FOLLOWUP_VIEW,
            Action.PLAN_VIEW,
            Action.PLAN_EDIT,
            Action.STANDING_VIEW,
        }
    ),
}
_READ_ACTIONS = frozenset(
    {
        Action.TENANT_VIEW,
        Action.ORG_VIEW,
        Action.MEMBER_VIEW,
        Action.MEMBER_CONTACT,
        Action.RULES_VIEW,
        Action.ROUND_VIEW,
        Action.OVERVIEW_VIEW,
        Action.FOLLOWUP_VIEW,
        Action.PLAN_VIEW,
        Action.STANDING_VIEW,
    }
)
_AUDIT_READERS = frozenset({Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER, Role.INSPECTOR})
# What a 工委委员 does for the whole district (`authorize` and `org_scope` both read this): return a member
# round's branch results, decide branch levels (定星), review rectification plans (考核验收), adjust levels.
_COMMITTEE_WIDE = frozenset({Action.ROUND_RETURN, Action.BRANCH_DECIDE, Action.PLAN_REVIEW, Action.STANDING_ADJUST})

# Which "view" action guards the existence of an object, for `require`'s 404-versus-403 choice.
_VIEW_FOR: dict[type[Any], Action] = {
    Organisation: Action.ORG_VIEW,
    Member: Action.MEMBER_VIEW,
    Account: Action.ACCOUNT_VIEW,
    Tenant: Action.TENANT_VIEW,
}


def _object_path(obj: Any) -> str | None:
    """The organisation path an object sits at: an organisation's own, else its branch's (members,
    round branches, evaluations — the `branch` relationship must be loaded)."""
    if isinstance(obj, Organisation):
        return obj.path
    branch = getattr(obj, "branch", None) if obj is not None and not isinstance(obj, Tenant) else None
    if isinstance(branch, Organisation):
        return branch.path
    return None


def _in_tenant(principal: Principal, obj: Any) -> bool:
    if obj is None:
        return True
    if isinstance(obj, Tenant):
        return obj.id == principal.tenant_id
    owner = getattr(obj, "tenant_id", None)
    return owner is None or owner == principal.tenant_id


def authorize(principal: Principal | Any, action: Action, obj: Any = None) -> bool:
    """True when `principal` may take `action` on `obj`. Anything not granted here is denied."""
    if not isinstance(principal, Principal) or not principal.is_authenticated:
        return False
    if principal.is_operator:
        return action is Action.PLATFORM_MANAGE
    if action is Action.PLATFORM_MANAGE or principal.tenant_id is None or not _in_tenant(principal, obj):
        return False
    roles = principal.roles
    if action is Action.SELF_ASSESS:
        # Only one's own evaluation, whatever else one's roles allow (administrators included).
        return principal.member_id is not None and getattr(obj, "member_id", None) == principal.member_id
    if Role.TENANT_ADMIN in roles:
        return True
    if action in _READ_ACTIONS and roles & READ_ALL_ROLES:
        return True
    if action is Action.AUDIT_VIEW:
        return bool(roles & _AUDIT_READERS)
    if action in (Action.TENANT_VIEW, Action.RULES_VIEW):
        # Everyone with a role reads the rules: secretaries and members score against them.
        return bool(roles)
    if action is Action.ACCOUNT_VIEW and isinstance(obj, Account):
        return obj.id == principal.account_id
    if action is Action.MEMBER_CONTACT and isinstance(obj, Member) and obj.id == principal.member_id:
        return True
    if action is Action.STANDING_VIEW and isinstance(obj, Member) and obj.id == principal.member_id:
        return True  # one's own level history
    if action in _COMMITTEE_WIDE and Role.COMMITTEE_MEMBER in roles:
        return True
    path = _object_path(obj)
    if path is not None:
        for grant in principal.grants:
            allowed = _SCOPED.get(grant.role)
            if allowed and action in allowed and grant.organisation_path and path.startswith(grant.organisation_path):
                return True
        if Role.MEMBER in roles and principal.member_branch_path:
            if action is Action.ORG_VIEW and path == principal.member_branch_path:
                return True
            if action is Action.MEMBER_VIEW and path == principal.member_branch_path:
                return True
    return False


def require(principal: Principal | Any, action: Action, obj: Any = None) -> None:
    """Refuse unless allowed: `NotVisibleError` (the web answers 404) when the object is not even visible to
    the principal, else `ForbiddenError` (403). Domain errors, so the policy knows nothing of HTTP."""
    if authorize(principal, action, obj):
        return
    view = _VIEW_FOR.get(type(obj))
    if obj is not None and view is not None and view is not action and authorize(principal, view, obj):
        raise ForbiddenError(action.value)
    if obj is not None:
        raise NotVisibleError(action.value)
    raise ForbiddenError(action.value)


def _path_clause(principal: Principal, roles: set[Role], action: Action) -> ColumnElement[bool]:
    paths = [
        grant.organisation_path
        for grant in principal.grants
        if grant.role in roles and grant.organisation_path and action in _SCOPED.get(grant.role, frozenset())
    ]
    clauses: list[ColumnElement[bool]] = [Organisation.path.startswith(path, autoescape=True) for path in paths]
    if Role.MEMBER in principal.roles and principal.member_branch_path and action in (
        Action.ORG_VIEW,
        Action.MEMBER_VIEW,
    ):
        clauses.append(Organisation.path == principal.member_branch_path)
    return or_(*clauses) if clauses else false()


def org_scope(principal: Principal, action: Action = Action.ORG_VIEW) -> ColumnElement[bool]:
    """A WHERE clause on `Organisation` matching what `authorize` allows for `action`."""
    if principal.is_operator or principal.tenant_id is None:
        return false()
    if Role.TENANT_ADMIN in principal.roles or (action in _READ_ACTIONS and principal.roles & READ_ALL_ROLES):
        return true()
    if action in _COMMITTEE_WIDE and Role.COMMITTEE_MEMBER in principal.roles:
        return true()  # as in `authorize`: the committee's own acts reach the whole tenant
    return _path_clause(principal, set(_SCOPED), action)


def role_scope(principal: Principal, action: Action, *roles: Role) -> ColumnElement[bool]:
    """A WHERE clause on `Organisation`: what the principal's grants of `roles` allow for `action`.

    `org_scope` answers "what may this person open"; a work list asks "what does this person act on
    in this role": an administrator may open every branch's workbench, but only a secretary's or a
    branch committee member's home lists their branch's steps. Never wider than `org_scope`."""
    if principal.is_operator or principal.tenant_id is None:
        return false()
    return _path_clause(principal, set(roles), action)


def member_scope(principal: Principal, action: Action = Action.MEMBER_VIEW) -> ColumnElement[bool]:
    """A WHERE clause for queries that join `Member` to its branch `Organisation`."""
    return org_scope(principal, action)


def plan_scope(principal: Principal, action: Action = Action.PLAN_VIEW) -> ColumnElement[bool]:
    """A WHERE clause for queries that join a rectification plan to its branch `Organisation`."""
    return org_scope(principal, action)


def scoped_actions(principal: Principal | Any) -> frozenset[Action]:
    """Actions the principal may take on *some* object through an organisation-scoped role."""
    if not isinstance(principal, Principal) or principal.is_operator:
        return frozenset()
    actions: set[Action] = set()
    for grant in principal.grants:
        actions |= _SCOPED.get(grant.role, frozenset())
    if Role.MEMBER in principal.roles and principal.member_branch_path:
        actions |= {Action.ORG_VIEW, Action.MEMBER_VIEW}
    return frozenset(actions)
