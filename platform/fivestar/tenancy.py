"""Tenant isolation, in layers that fail closed (CONTRIBUTING.md "Tenancy").

1. The tenant is resolved once per request (URL prefix `/t/<slug>/`) or per task (first argument)
   and kept in a context variable, reset afterwards.
2. The login loader finds the user within that tenant only (see `fivestar.accounts.login`).
3. Every tenant-owned table has `tenant_id NOT NULL`. A `do_orm_execute` hook adds
   `with_loader_criteria` to every ORM SELECT/UPDATE/DELETE and *raises* when a tenant-owned table
   is queried with no tenant set, unless the caller opts out by name with `cross_tenant(reason)`.
   New rows get the current tenant at flush; a row for another tenant is refused.
4. Child rows reference parents by `(tenant_id, parent_id)`, so the database itself rejects a
   cross-tenant link (see the models).

Known holes (as in SQLAlchemy's documented recipe): objects already in the identity map, raw SQL
and Core statements. Raw SQL lives in a few reviewed places that filter by `tenant_id` themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import ForeignKey, event, inspect
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, declared_attr, mapped_column, with_loader_criteria
from sqlalchemy.sql.util import find_tables

_current_tenant: ContextVar[int | None] = ContextVar("fivestar_tenant", default=None)
_cross_tenant_reason: ContextVar[str | None] = ContextVar("fivestar_cross_tenant", default=None)


class TenantScopeError(RuntimeError):
    """A tenant-owned table was touched without a tenant, or a row crossed tenants."""


class TenantOwned:
    """Mixin for every table that belongs to one tenant."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr takes the class
        return mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False, index=True)


def current_tenant_id() -> int | None:
    return _current_tenant.get()


def require_tenant_id() -> int:
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        raise TenantScopeError("no tenant is set for this operation")
    return tenant_id


@contextmanager
def tenant_context(tenant_id: int | None) -> Iterator[None]:
    """Run a block as one tenant (or, with None, as no tenant), restoring the previous value."""
    token = _current_tenant.set(tenant_id)
    try:
        yield
    finally:
        _current_tenant.reset(token)


def set_tenant(tenant_id: int | None) -> Any:
    """Set the tenant for the rest of a request; returns the token for `reset_tenant`."""
    return _current_tenant.set(tenant_id)


def reset_tenant(token: Any) -> None:
    _current_tenant.reset(token)


@contextmanager
def cross_tenant(reason: str) -> Iterator[None]:
    """Opt out of tenant scoping, by name, for a block that must see every tenant.

    Used by the operator's pages, the worker's sweeps over all tenants and the login loader's
    session lookup. The reason is required so each use is searchable and reviewable.
    """
    if not reason:
        raise ValueError("cross_tenant() needs a reason")
    token = _cross_tenant_reason.set(reason)
    outer = _current_tenant.set(None)
    try:
        yield
    finally:
        _current_tenant.reset(outer)
        _cross_tenant_reason.reset(token)


def _tenant_table_names() -> set[str]:
    names: set[str] = set()
    pending: list[type[Any]] = [TenantOwned]
    while pending:
        cls = pending.pop()
        table = getattr(cls, "__table__", None)
        if table is not None:
            names.add(table.name)
        pending.extend(cls.__subclasses__())
    return names


def _touches_tenant_tables(state: ORMExecuteState) -> bool:
    if any(issubclass(mapper.class_, TenantOwned) for mapper in state.all_mappers):
        return True
    owned = _tenant_table_names()
    # The whole statement, not only its FROM list: a tenant table inside an EXISTS or IN subquery
    # of a platform-table query must fail closed too.
    statement: Any = state.statement
    tables = find_tables(statement, check_columns=True, include_joins=True, include_aliases=True, include_crud=True)
    return any(getattr(table, "name", None) in owned for table in tables)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load:
        # Refreshing attributes of an object already loaded (and so already scoped) by primary key.
        return
    if state.execution_options.get("cross_tenant") or _cross_tenant_reason.get():
        return
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        if _touches_tenant_tables(state):
            raise TenantScopeError(
                "tenant-owned table queried with no tenant set; "
                "set one with tenant_context() or opt out with cross_tenant(reason)"
            )
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )
    )


@event.listens_for(TenantOwned, "init", propagate=True)
def _stamp_on_construction(target: Any, _args: Any, kwargs: dict[str, Any]) -> None:
    """A tenant-owned object made while acting for a tenant belongs to it from the start."""
    tenant_id = _current_tenant.get()
    if kwargs.get("tenant_id") is None and tenant_id is not None:
        kwargs["tenant_id"] = tenant_id


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    tenant_id = _current_tenant.get()
    crossing = _cross_tenant_reason.get() is not None
    for obj in session.deleted:
        if isinstance(obj, TenantOwned) and tenant_id is not None and obj.tenant_id != tenant_id and not crossing:
            raise TenantScopeError(
                f"{type(obj).__name__} of tenant {obj.tenant_id} deleted while acting for tenant {tenant_id}"
            )
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                raise TenantScopeError(f"new {type(obj).__name__} has no tenant and none is set")
            obj.tenant_id = tenant_id
        elif tenant_id is not None and obj.tenant_id != tenant_id and not crossing:
            raise TenantScopeError(
                f"{type(obj).__name__} of tenant {obj.tenant_id} written while acting for tenant {tenant_id}"
            )
        if inspect(obj).attrs.tenant_id.history.deleted:
            raise TenantScopeError(f"{type(obj).__name__} cannot move to another tenant")
