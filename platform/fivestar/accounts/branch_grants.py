"""Roles that stay behind when a member changes branch.

A branch secretary or committee member holds that role for their branch; 机关党委/党总支 staff hold theirs
for the organisation they work in. When the member linked to an account moves to another branch (on the
member page or by an import), every organisation-scoped grant whose scope covers the branch they left but
not the one they joined is revoked: the old branch's secretary must not keep deciding the old branch's
ratings from the new one. A grant that still covers the new branch (staff of a 机关党委 moving between two
of its branches) stays. Each revocation is audited as `account.role_revoke` with the move's reason, and
the account's sessions end so the narrower rights apply at once, as when an administrator revokes a role.

Set-based: one query for the accounts (and one for their grants), one for the organisations' paths,
whatever the number of members moved; then one UPDATE per account that actually lost a role.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Account, RoleGrant
from fivestar.accounts.sessions import revoke_account_sessions
from fivestar.orgs.models import Organisation

# member id → (branch left, branch joined)
Moves = Mapping[int, tuple[int, int]]


def _left_behind(grant: RoleGrant, old_path: str, new_path: str, paths: Mapping[int, str]) -> bool:
    scope = paths.get(grant.organisation_id) if grant.organisation_id is not None else None
    return scope is not None and old_path.startswith(scope) and not new_path.startswith(scope)


def withdraw_grants_left_behind(session: Session, moves: Moves, *, reason: str | None) -> int:
    """Revoke the grants of moved members' accounts that only covered the branch they left; returns how
    many were revoked. Runs in the caller's transaction (flushes, never commits)."""
    if not moves:
        return 0
    accounts = list(session.scalars(select(Account).where(Account.member_id.in_(list(moves)))))
    scoped = [grant for account in accounts for grant in account.grants if grant.organisation_id is not None]
    if not scoped:
        return 0
    org_ids = {branch for pair in moves.values() for branch in pair}
    org_ids |= {grant.organisation_id for grant in scoped if grant.organisation_id is not None}
    paths = {
        org_id: path
        for org_id, path in session.execute(
            select(Organisation.id, Organisation.path).where(Organisation.id.in_(org_ids))
        )
    }
    revoked = 0
    for account in accounts:
        assert account.member_id is not None
        old_branch_id, new_branch_id = moves[account.member_id]
        old_path, new_path = paths.get(old_branch_id, ""), paths.get(new_branch_id, "")
        gone = [grant for grant in account.grants if _left_behind(grant, old_path, new_path, paths)]
        if not gone:
            continue
        befores = [
            {"grant_id": grant.id, "role": grant.role, "organisation_id": grant.organisation_id} for grant in gone
        ]
        for grant in gone:
            account.grants.remove(grant)
        session.flush()
        ended = revoke_account_sessions(session, tenant_id=account.tenant_id, account_id=account.id)
        for before in befores:
            after = {
                "sessions_ended": ended,
                "member_id": account.member_id,
                "moved_from": old_branch_id,
                "moved_to": new_branch_id,
            }
            audit.record(session, "account.role_revoke", account, before=before, after=after, reason=reason)
        revoked += len(gone)
    return revoked


__all__ = ["Moves", "withdraw_grants_left_behind"]
