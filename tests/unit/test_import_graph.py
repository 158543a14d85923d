"""The package graph stays one-way (CONTRIBUTING.md "Layers"), and what the contracts cannot see is checked here.

`lint-imports` (CI) checks the contracts of `[tool.importlinter]` in pyproject.toml. These tests keep the
contracts themselves honest: the "domain" contract lists its modules by name, so a new module must be
either in that list or recognisably web or entry-point code; every feature's `reactions` module must be
connected by `fivestar.features`; connecting twice must change nothing; and the permission policy refuses
with domain errors, not HTTP ones.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import fivestar
from fivestar import features
from fivestar.kernel import events

REPO = Path(__file__).resolve().parents[2]

# Web and entry-point code: may import Flask. Everything else is domain code and must be in the contract.
WEB_OR_ENTRY = re.compile(
    r"^fivestar\.(web|cli|wsgi|blueprints|__main__|extensions|i18n_tools|dbcli|migrations)(\.|$)"
    r"|^fivestar\.demo\.(cli|views|runner)$"
    r"|\.(views|forms|cli|[a-z_]+_views)$"
)


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _all_modules(*, packages: bool = True) -> list[str]:
    """Every module of fivestar (not the migration scripts); with `packages=False`, not the `__init__`s,
    which hold only docstrings and which the contract names only when the whole package is domain code."""
    names = ["fivestar"] if packages else []
    for info in pkgutil.walk_packages(fivestar.__path__, "fivestar."):
        if ".migrations.versions" not in info.name and (packages or not info.ispkg):
            names.append(info.name)
    return names


def _covered(module: str, sources: list[str]) -> bool:
    return any(module == source or module.startswith(source + ".") for source in sources)


def test_every_module_is_domain_or_named_as_web_or_entry_code() -> None:
    sources = [str(name) for name in _contracts()["domain"]["source_modules"]]  # type: ignore[attr-defined]
    unclassified = [
        name for name in _all_modules(packages=False) if not WEB_OR_ENTRY.search(name) and not _covered(name, sources)
    ]
    assert unclassified == [], (
        "add these modules to the 'domain' contract in pyproject.toml (or name them as web code: "
        f"views, *_views, forms): {unclassified}"
    )


def test_the_domain_contract_lists_no_web_module() -> None:
    sources = [str(name) for name in _contracts()["domain"]["source_modules"]]  # type: ignore[attr-defined]
    web = [name for name in _all_modules() if WEB_OR_ENTRY.search(name) and _covered(name, sources)]
    assert web == []


def test_every_reactions_module_is_connected_by_the_features_registry() -> None:
    reactions = sorted(name for name in _all_modules() if name.endswith(".reactions"))
    assert reactions, "the features react to each other through reactions modules"
    source = Path(features.__file__).read_text(encoding="utf-8")
    for name in reactions:
        package, _, _ = name.rpartition(".")
        assert f"from {package} import reactions" in source, f"{name} is not connected by fivestar.features"


def _receiver_counts() -> dict[str, int]:
    return {
        name: len(signal.receivers)
        for name, signal in vars(events).items()
        if hasattr(signal, "receivers") and hasattr(signal, "send")
    }


def test_connecting_the_receivers_again_changes_nothing() -> None:
    features.connect_receivers()
    before = _receiver_counts()
    features.connect_receivers()
    assert _receiver_counts() == before
    # Every declared signal has someone listening: a signal nobody hears would silently skip a reaction.
    assert all(count >= 1 for count in before.values()), before


def test_the_policy_refuses_with_domain_errors() -> None:
    from fivestar.accounts.policy import Action, require
    from fivestar.accounts.principal import Grant, Principal
    from fivestar.enums import Role
    from fivestar.errors import AccessDeniedError, ForbiddenError, NotVisibleError, ServiceError
    from fivestar.orgs.models import Organisation

    member = Principal(
        session_token="t", display_name="党员", tenant_id=1, member_branch_path="/5/", grants=(Grant(Role.MEMBER),)
    )
    own_branch = Organisation(id=5, tenant_id=1, path="/5/")
    require(member, Action.ORG_VIEW, own_branch)  # allowed: nothing raised
    with pytest.raises(ForbiddenError) as seen_but_refused:
        require(member, Action.ORG_MANAGE, own_branch)
    assert seen_but_refused.value.status == 403
    with pytest.raises(NotVisibleError) as not_theirs:
        require(member, Action.ORG_MANAGE, Organisation(id=9, tenant_id=2, path="/9/"))
    assert not_theirs.value.status == 404
    with pytest.raises(ForbiddenError):
        require(member, Action.PLATFORM_MANAGE)
    # Never a ServiceError: a view's `except ServiceError` around a form must not swallow a refusal.
    assert not issubclass(AccessDeniedError, ServiceError)
