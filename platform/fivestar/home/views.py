"""A tenant's home is a work list: what is waiting for this person now, most urgent first, each item
one tap from the page that does it (home/providers.py gathers every feature's `worklist.pending`).
Besides the list: the unread-inbox notice, a people search, and — for branch secretaries, branch
committee members and members — their own branch's roll. The organisation tree is its own page
(`tenant.orgs.index`, "组织" in the menu)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, url_for
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, require
from fivestar.accounts.principal import Principal
from fivestar.accounts.visibility import branch_roll
from fivestar.enums import MemberStatus, Role
from fivestar.home.providers import gather
from fivestar.inbox.services import unread_count
from fivestar.kernel.worklist import WorkItem
from fivestar.timekeeping import clock
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

home_bp = Blueprint("home", __name__)

BRANCH_ROLES = (Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)


def own_branch_ids(principal: Principal) -> list[int]:
    """The branches a person works in: those of their branch roles, else the branch they belong to.

    The member's branch is the last id of its materialised path, so no query is needed.
    """
    ids = [grant.organisation_id for grant in principal.grants if grant.role in BRANCH_ROLES and grant.organisation_id]
    if not ids and principal.member_branch_path:
        ids = [int(principal.member_branch_path.strip("/").split("/")[-1])]
    return sorted(set(ids))


def item_url(item: WorkItem) -> str | None:
    """The item's page, one tap away (None if the part that owns it is not installed)."""
    if item.endpoint not in current_app.view_functions:
        return None
    return url_for(item.endpoint, **item.params)


@home_bp.get("/")
@login_required
def index() -> Any:
    tenant = current_tenant()
    require(current_user, Action.TENANT_VIEW, tenant)
    now = clock.now()
    work = gather(db(), current_user, now)
    roll = branch_roll(db(), current_user, own_branch_ids(current_user), status=MemberStatus.ACTIVE)
    account_id = getattr(current_user, "account_id", None)
    unread = unread_count(db(), account_id) if account_id is not None else 0
    return render_template("home/index.html", work=work, now=now, item_url=item_url, roll=roll, unread=unread)
