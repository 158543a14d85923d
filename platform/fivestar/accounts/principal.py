"""The logged-in person as the policy sees them: an operator, or an account of one tenant.

A principal is built once per request by the login loader, with the account's role grants and the
paths of the organisations they are scoped to, so permission checks need no further queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fivestar.enums import Role


@dataclass(frozen=True, slots=True)
class Grant:
    role: Role
    organisation_id: int | None = None
    organisation_path: str | None = None  # materialised path of the scope, e.g. "/1/4/"


@dataclass(frozen=True)
class Principal:
    """Flask-Login's user object. `session_token` is what the cookie carries (see `get_id`)."""

    session_token: str
    display_name: str
    operator_id: int | None = None
    tenant_id: int | None = None
    account_id: int | None = None
    member_id: int | None = None
    member_branch_path: str | None = None  # path of the branch of the member this account is
    username: str = ""
    must_change_password: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    # Flask-Login protocol ---------------------------------------------------------------------
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.session_token

    # Convenience ------------------------------------------------------------------------------
    @property
    def is_operator(self) -> bool:
        return self.operator_id is not None

    def has_role(self, role: Role) -> bool:
        return any(grant.role is role for grant in self.grants)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(grant.role for grant in self.grants)

    def scoped_paths(self, *roles: Role) -> tuple[str, ...]:
        """Paths of the organisations this principal holds any of `roles` for."""
        return tuple(
            grant.organisation_path
            for grant in self.grants
            if grant.role in roles and grant.organisation_path is not None
        )
