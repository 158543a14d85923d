"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, flash, g, has_request_context, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.orm import configure_mappers

import fivestar.models  # noqa: F401 - registers every mapper before the first query
from fivestar import dbroles
from fivestar.accounts.sessions import load_principal
from fivestar.audit.recording import Actor, reset_actor, set_actor
from fivestar.blueprints import register_blueprints
from fivestar.config import Settings, load_settings
from fivestar.db import make_engine, make_sessionmaker
from fivestar.demo.fast_calendar import current_offset, install
from fivestar.extensions import babel, csrf, limiter, login_manager
from fivestar.features import connect_receivers
from fivestar.i18n import SUPPORTED_LOCALES, _l
from fivestar.kernel import rounds
from fivestar.paths import static_dir, templates_dir, translations_dir
from fivestar.tenancy import current_tenant_id
from fivestar.timekeeping import DEFAULT_TIMEZONE, clock
from fivestar.web import templating
from fivestar.web.core import LANG_COOKIE, core_bp
from fivestar.web.errors import install_error_handlers, user_error
from fivestar.web.ids import BoundedIntConverter, has_nul
from fivestar.web.security import install_security_headers
from fivestar.web.session import close_session, db
from fivestar.web.tenant import release_tenant, tenant_bp


def create_app(settings: Settings | None = None, **config_overrides: Any) -> Flask:
    settings = settings or load_settings()
    connect_receivers()  # features react to each other's domain events (fivestar.features)
    settings.install_holidays()
    app = Flask(
        "fivestar",
        template_folder=str(templates_dir()),
        static_folder=str(static_dir()),
        static_url_path="/static",
    )
    app.config.update(
        FIVESTAR_SETTINGS=settings,
        SECRET_KEY=settings.resolved_secret_key,
        SESSION_COOKIE_NAME="fivestar_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=settings.session_hours * 3600,
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=settings.session_hours * 3600,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE="UTC",
        BABEL_TRANSLATION_DIRECTORIES=str(translations_dir()),
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        RATELIMIT_ENABLED=True,
        TEMPLATES_AUTO_RELOAD=not settings.is_production,
        JSON_AS_ASCII=False,
    )
    app.config.update(config_overrides)
    logging.basicConfig(level=settings.log_level)

    engine = app.config.pop("FIVESTAR_ENGINE", None) or make_engine(settings.resolved_database_url)
    if settings.is_production:
        dbroles.check_application_role(engine)  # RoleError: this role could rewrite the audit trail
    configure_mappers()
    app.extensions["fivestar.engine"] = engine
    app.extensions["fivestar.sessionmaker"] = make_sessionmaker(engine)

    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=_select_timezone)
    _init_login(app)
    install_security_headers(app, hsts=settings.is_production)
    install_error_handlers(app)
    templating.install(app)

    app.url_map.converters["int"] = BoundedIntConverter  # an id beyond the columns' range: 404, not 500
    _refuse_nul(app)
    register_blueprints(app, tenant_bp)
    if settings.demo_clock:
        _install_demo_clock(app)
    app.register_blueprint(core_bp)
    _install_actor(app)
    _close_unsent_files(app)
    app.teardown_request(release_tenant)
    app.teardown_appcontext(close_session)
    return app


def _refuse_nul(app: Flask) -> None:
    """A NUL character in a query or form value is refused (400) before any view: PostgreSQL cannot
    store it in text, and the insert failing at flush was a 500 with the session left broken."""

    @app.before_request
    def _no_nul() -> None:
        if has_nul(request.args) or (request.method == "POST" and has_nul(request.form)):
            raise user_error(400, str(_l("提交的内容含有无法保存的控制字符（NUL），请删除后重试。")))


def _select_locale() -> str:
    """The language of a page: the person's choice, else the district's, else the instance's."""
    if not has_request_context():
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    wanted = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if wanted in SUPPORTED_LOCALES:
        return wanted
    tenant = g.get("tenant")
    if tenant is not None and tenant.locale in SUPPORTED_LOCALES:
        return str(tenant.locale)
    # Not the browser's Accept-Language: the interface is Chinese first unless a person (the
    # language switch) or the district (its locale) chooses English.
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


def _select_timezone() -> str:
    if not has_request_context():
        return "UTC"
    tenant = g.get("tenant")
    return str(tenant.timezone) if tenant is not None else DEFAULT_TIMEZONE


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = None  # sessions are server-side rows; see accounts.sessions
    login_manager.login_message = _l("请先登录。")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def _load(token: str) -> Any:
        return load_principal(db(), token, tenant_id=current_tenant_id())

    @login_manager.unauthorized_handler
    def _unauthorized() -> Any:
        flash(str(_l("请先登录。")), "info")
        if g.get("tenant") is not None:
            return redirect(url_for("tenant.auth.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("ops.login", next=request.full_path.rstrip("?")))


def _install_actor(app: Flask) -> None:
    """Make the logged-in person the actor of every audit event written during the request."""

    @app.before_request
    def _set_actor() -> None:
        # The rounds kernel authorises every transition for the person of the request (anonymous: nobody).
        g.principal_token = rounds.set_principal(current_user._get_current_object())
        if current_user.is_authenticated:
            kind = "operator" if current_user.is_operator else "account"
            ident = current_user.operator_id if current_user.is_operator else current_user.account_id
            g.actor_token = set_actor(Actor(kind, ident, current_user.display_name))

    @app.teardown_request
    def _reset_actor(_exc: BaseException | None = None) -> None:
        token = g.pop("actor_token", None)
        if token is not None:
            reset_actor(token)
        principal_token = g.pop("principal_token", None)
        if principal_token is not None:
            rounds.reset_principal(principal_token)


def _install_demo_clock(app: Flask) -> None:
    """The demo's fast calendar: `clock.now()` follows the stored offset; a banner moves it."""
    install(app.extensions["fivestar.sessionmaker"])

    @app.context_processor
    def _demo_clock() -> dict[str, Any]:
        return {
            "demo_clock": True,
            "demo_now": clock.now(),
            "demo_offset_days": current_offset(db()) // 86400,
        }


def _close_unsent_files(app: Flask) -> None:
    """Close the file behind a 304 answer to a static file.

    Werkzeug sends no body with a 304 and never iterates (or closes) the file `send_file` opened,
    which leaks a file handle per cached asset until garbage collection.
    """
    from flask import Response

    @app.after_request
    def _close(response: Response) -> Response:
        if response.status_code == 304 and response.direct_passthrough:
            body = response.response
            close = getattr(body, "close", None)
            if close is not None:
                close()
            response.response = []
            response.direct_passthrough = False
        return response
