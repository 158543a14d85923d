"""Per-request tenant resolution from the `/t/<slug>/` URL prefix (layer 1 of fivestar/tenancy.py).

`tenant_bp` is the parent of every tenant blueprint. Its URL value preprocessor loads the tenant
by slug (404 when unknown, a clear page when suspended), stores it on `g` and in the tenancy
context variable; URL defaults put the slug back into every `url_for` for tenant endpoints.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, render_template
from sqlalchemy import select

from fivestar.tenancy import reset_tenant, set_tenant
from fivestar.tenants.models import Tenant
from fivestar.web.session import db

tenant_bp = Blueprint("tenant", __name__, url_prefix="/t/<tenant_slug>")


def current_tenant() -> Tenant:
    tenant: Tenant | None = g.get("tenant")
    if tenant is None:
        abort(404)
    return tenant


@tenant_bp.url_value_preprocessor
def _resolve_tenant(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    slug = (values or {}).pop("tenant_slug", None)
    load_tenant_into_request(slug)


def load_tenant_into_request(slug: str | None) -> None:
    if not slug or len(slug) > 40:
        abort(404)
    tenant = db().scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        abort(404)
    g.tenant = tenant
    g.tenant_token = set_tenant(tenant.id)


@tenant_bp.before_request
def _refuse_suspended() -> Any:
    tenant = current_tenant()
    if not tenant.is_active:
        return render_template("errors/suspended.html", tenant=tenant), 403
    return None


@tenant_bp.url_defaults
def _add_slug(_endpoint: str, values: dict[str, Any]) -> None:
    if "tenant_slug" not in values and g.get("tenant") is not None:
        values["tenant_slug"] = g.tenant.slug


def release_tenant(_exc: BaseException | None = None) -> None:
    token = g.pop("tenant_token", None)
    if token is not None:
        reset_tenant(token)
