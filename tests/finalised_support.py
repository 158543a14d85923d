"""Helpers for the tests proving that nothing changes after a result is final (a closed member round,
a finalised branch rating): the public functions of a service package, to classify every one of
them, and a snapshot of a tenant's rows to compare before and after a refused call."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ConflictError


def public_functions(package: str) -> set[str]:
    """`module.function` for every public function defined in the package's service modules: every
    module but the views (they call services) and the models (tables)."""
    found: set[str] = set()
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.endswith("_views") or info.name == "models":
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                found.add(f"{info.name}.{name}")
    return found


def assert_classified(package: str, *groups: Iterable[str]) -> None:
    """Every public function of `package` is in exactly one group; a new one fails until classified."""
    listed: list[str] = [name for group in groups for name in group]
    duplicates = sorted({name for name in listed if listed.count(name) > 1})
    assert not duplicates, f"classified twice: {duplicates}"
    functions = public_functions(package)
    unclassified = sorted(functions - set(listed))
    assert not unclassified, (
        f"new public functions in {package}: list each as a writer refused once the result is final "
        f"(with a case proving it), or as read-only / allowed with the reason: {unclassified}"
    )
    gone = sorted(set(listed) - functions)
    assert not gone, f"listed but no longer in {package}: {gone}"


def tenant_models(models_module: Any) -> list[Any]:
    """The mapped classes of a models module (every table the package owns), plus the audit trail."""
    found = [
        value
        for value in vars(models_module).values()
        if inspect.isclass(value) and getattr(value, "__module__", None) == models_module.__name__
        and hasattr(value, "__table__")
    ]
    return [*sorted(found, key=lambda model: model.__tablename__), AuditEvent]


Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(session: Session, models: Iterable[Any], tenant_id: int) -> Snapshot:
    """Every column of every row of the tenant in `models`, as the database has it now."""
    result: Snapshot = {}
    for model in models:
        mapper = sa_inspect(model)
        columns = [getattr(model, attr.key) for attr in mapper.column_attrs]
        key = [getattr(model, column.key) for column in mapper.primary_key]
        rows = session.execute(select(*columns).where(model.tenant_id == tenant_id).order_by(*key)).all()
        result[model.__tablename__] = [tuple(row) for row in rows]
    return result


@dataclass(frozen=True)
class Case:
    """One refused writer: `call(session, world)` must raise ConflictError with `message`."""

    name: str  # module.function, as public_functions spells it
    call: Callable[[Session, Mapping[str, Any]], Any]
    # True only for a writer that must claim a row before it can tell (the ballot code's UPDATE):
    # its refusal is a ConflictError and the caller's rollback leaves nothing behind.
    claims_first: bool = False


def assert_refused_and_unchanged(
    session: Session, world: Mapping[str, Any], case: Case, models: Iterable[Any], message: str
) -> None:
    """The call refuses with `message` (a 409) and the tenant's rows are exactly as before: before the
    rollback a view would do (nothing was written), or for `claims_first` once it is done."""
    tenant_id = world["tenant"].id
    models = list(models)
    before = snapshot(session, models, tenant_id)
    savepoint = session.begin_nested()
    with pytest.raises(ConflictError) as refused:
        case.call(session, world)
    assert refused.value.message == message, case.name
    assert refused.value.status == 409
    assert not (session.new or session.dirty or session.deleted), f"{case.name} left pending changes"
    if not case.claims_first:
        assert snapshot(session, models, tenant_id) == before, f"{case.name} wrote before refusing"
    savepoint.rollback()
    assert snapshot(session, models, tenant_id) == before, f"{case.name} changed stored rows"
