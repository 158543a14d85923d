"""Pages outside any tenant: the landing page, the health check and the language switch."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from sqlalchemy import select, text

from fivestar.broker import check_broker
from fivestar.enums import TenantStatus
from fivestar.i18n import SUPPORTED_LOCALES
from fivestar.tenants.models import Tenant
from fivestar.web.session import db

core_bp = Blueprint("core", __name__)

LANG_COOKIE = "fivestar_lang"


@core_bp.get("/")
def index() -> Any:
    slug = request.args.get("tenant", "").strip().lower()
    if slug:
        return redirect(url_for("tenant.home.index", tenant_slug=slug))
    tenants: list[Tenant] = []
    if not current_app.config["FIVESTAR_SETTINGS"].is_production:
        tenants = list(db().scalars(select(Tenant).where(Tenant.status == TenantStatus.ACTIVE).order_by(Tenant.name)))
    return render_template("index.html", tenants=tenants)


@core_bp.get("/healthz")
def healthz() -> Any:
    settings = current_app.config["FIVESTAR_SETTINGS"]
    try:
        db().execute(text("SELECT 1"))
        database = {"ok": True, "dialect": db().get_bind().dialect.name}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        database = {"ok": False, "error": f"{type(exc).__name__}"}
    broker_ok, broker_detail = check_broker(settings)
    broker = {"ok": broker_ok, "transport" if broker_ok else "error": broker_detail}
    healthy = database["ok"] and broker_ok
    return jsonify(status="ok" if healthy else "degraded", database=database, broker=broker), 200 if healthy else 503


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("core.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("core.index")
    return target


@core_bp.route("/lang/<code>", methods=["GET", "POST"])
def set_language(code: str) -> Any:
    if code not in SUPPORTED_LOCALES:
        code = current_app.config["BABEL_DEFAULT_LOCALE"]
    response = make_response(
        redirect(_safe_next(request.values.get("next") or (request.referrer and urlsplit(request.referrer).path)))
    )
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response
