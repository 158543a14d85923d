"""The hosting operator's pages (`/ops/…`): login, and tenant management.

Operators create, suspend and resume tenants and manage their rule-set versions. They never see
inside a tenant: these pages show facts and counts only, never a member, an organisation name or an
account. Every page requires `Action.PLATFORM_MANAGE`; a tenant account's cookie is not a login here
(`load_principal` with no tenant returns nobody), so it gets the operator login page, never data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from fivestar.accounts import services as account_services
from fivestar.accounts.forms import LoginForm
from fivestar.accounts.policy import Action, require
from fivestar.accounts.services import authenticate_operator
from fivestar.broker import enqueue_after_commit
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import task_names
from fivestar.ops.forms import UPLOAD, AddAdminForm, CreateTenantForm, ResumeForm, SuspendForm
from fivestar.ops.queries import list_tenants, tenant_counts
from fivestar.paths import tenants_dir
from fivestar.rules import RuleSetError, load_rules
from fivestar.tenancy import tenant_context
from fivestar.tenants import services as tenant_services
from fivestar.tenants.forms import RulesUploadForm
from fivestar.tenants.models import Tenant
from fivestar.tenants.views import toml_download
from fivestar.web.core import _safe_next
from fivestar.web.login import sign_in, sign_out, submitted_username, throttled
from fivestar.web.session import db

ops_bp = Blueprint("ops", __name__, url_prefix="/ops")


def _login_key() -> str:
    return f"ops-login:{submitted_username()}"


@ops_bp.route("/login", methods=["GET", "POST"])
@throttled(_login_key)
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        operator = authenticate_operator(db(), form.username.data or "", form.password.data or "")
        if operator is None:
            form.password.errors.append(_("用户名或密码不正确"))
            return render_template("ops/login.html", form=form)
        sign_in(operator=operator)
        return redirect(_safe_next(request.args.get("next")) if request.args.get("next") else url_for("ops.tenants"))
    return render_template("ops/login.html", form=form)


@ops_bp.post("/logout")
def logout() -> Any:
    sign_out()
    return redirect(url_for("ops.login"))


# --- helpers ---------------------------------------------------------------------------------


def sample_rule_files() -> list[tuple[str, str]]:
    """(file name, rule-set name) of every sample that loads; a broken sample is not offered."""
    folder = tenants_dir()
    if folder is None:
        return []
    samples = []
    for path in sorted(folder.glob("*.toml")):
        try:
            samples.append((path.name, load_rules(path.read_text(encoding="utf-8")).meta.name))
        except (OSError, UnicodeDecodeError, RuleSetError):
            continue
    return samples


def _sample_text(name: str) -> str:
    folder = tenants_dir()
    if folder is None or name not in {file for file, _label in sample_rule_files()}:
        raise ServiceError(_("请选择示例规则或上传规则文件"), field="rules")
    return (folder / name).read_text(encoding="utf-8").removeprefix("\ufeff")


def _load_tenant(slug: str) -> Tenant:
    try:
        return tenant_services.get_tenant(db(), slug)
    except ServiceError:
        abort(404)


def _attach_error(form: Any, exc: ServiceError, default: str) -> list[Any]:
    """Put a service refusal on the matching form field; return the rule errors to list by path."""
    field_name = {"rules": default}.get(exc.field or "", exc.field or default)
    field = getattr(form, field_name, None) or getattr(form, default)
    rule_errors = list(getattr(exc, "errors", []))
    field.errors = [*list(field.errors or []), _("规则文件有误，共 %(n)d 处，见下方列表", n=len(rule_errors))
                    if rule_errors else exc.message]
    return rule_errors


def _detail(tenant: Tenant, status: int = 200, **forms: Any) -> Any:
    upload = forms.get("upload") or RulesUploadForm(prefix="rules")
    suspend = forms.get("suspend") or SuspendForm(prefix="suspend")
    resume = forms.get("resume") or ResumeForm(prefix="resume")
    admin = forms.get("admin") or AddAdminForm(prefix="admin")
    return (
        render_template(
            "ops/tenant_detail.html",
            t=tenant,
            counts=tenant_counts(db(), tenant),
            versions=tenant_services.rules_history(db(), tenant),
            upload_form=upload,
            suspend_form=suspend,
            resume_form=resume,
            admin_form=admin,
            rule_errors=forms.get("rule_errors") or [],
            error=forms.get("error"),
        ),
        status,
    )


# --- pages -----------------------------------------------------------------------------------


@ops_bp.get("/")
@login_required
def tenants() -> Any:
    """Every tenant with status, rules version and member count: a fixed number of queries."""
    require(current_user, Action.PLATFORM_MANAGE)
    return render_template("ops/tenants.html", rows=list_tenants(db()))


@ops_bp.route("/tenants/new", methods=["GET", "POST"])
@login_required
def create_tenant() -> Any:
    require(current_user, Action.PLATFORM_MANAGE)
    form = CreateTenantForm()
    samples = sample_rule_files()
    form.rules_source.choices = [
        *(SelectChoice(file, f"{name} ({file})") for file, name in samples),
        SelectChoice(UPLOAD, _("上传规则文件")),
    ]
    if request.method == "GET" and samples:
        form.rules_source.data = samples[0][0]
    default_zone = current_app.config["FIVESTAR_SETTINGS"].default_timezone
    if default_zone not in {zone for zone, _label in tenant_services.COMMON_TIMEZONES}:
        form.timezone.choices = [SelectChoice(default_zone, default_zone), *form.timezone.choices]  # type: ignore[misc]
    if request.method == "GET":
        form.timezone.data = default_zone  # FIVESTAR_DEFAULT_TIMEZONE: the zone a new district starts in
    rule_errors: list[Any] = []
    if form.validate_on_submit():
        try:
            if form.rules_source.data == UPLOAD:
                upload = form.rules_file.data
                if upload is None or not getattr(upload, "filename", ""):
                    raise ServiceError(_("请选择要上传的规则文件"), field="rules")
                text = tenant_services.decode_rules_upload(upload.read())
            else:
                text = _sample_text(form.rules_source.data or "")
            tenant = tenant_services.create_tenant(
                db(),
                slug=form.slug.data or "",
                name=form.name.data or "",
                rules_toml=text,
                timezone=form.timezone.data or "",
                locale=form.locale.data or "zh",
                committee_name=form.committee_name.data,
            )
        except ServiceError as exc:
            db().rollback()
            rule_errors = _attach_error(form, exc, "rules_file")
            return render_template("ops/tenant_new.html", form=form, rule_errors=rule_errors), exc.status
        db().commit()
        flash(_("已创建单位 %(name)s，规则第 1 版已生效。", name=tenant.name), "success")
        return redirect(url_for("ops.tenant_detail", slug=tenant.slug))
    status = 400 if request.method == "POST" else 200
    return render_template("ops/tenant_new.html", form=form, rule_errors=rule_errors), status


@ops_bp.get("/tenants/<slug>")
@login_required
def tenant_detail(slug: str) -> Any:
    require(current_user, Action.PLATFORM_MANAGE)
    return _detail(_load_tenant(slug))


@ops_bp.post("/tenants/<slug>/rules")
@login_required
def upload_rules(slug: str) -> Any:
    require(current_user, Action.PLATFORM_MANAGE)
    tenant = _load_tenant(slug)
    form = RulesUploadForm(prefix="rules")
    if not form.validate_on_submit():
        return _detail(tenant, 400, upload=form)
    try:
        text = tenant_services.decode_rules_upload(form.rules_file.data.read())
        version = tenant_services.add_rules_version(db(), tenant, text, note=form.note.data)
    except ServiceError as exc:
        db().rollback()
        rule_errors = _attach_error(form, exc, "rules_file")
        return _detail(tenant, exc.status, upload=form, rule_errors=rule_errors)
    db().commit()
    flash(_("已保存第 %(n)d 版规则；已开始的评定仍按原版本进行。", n=version.version), "success")
    return redirect(url_for("ops.tenant_detail", slug=tenant.slug))


@ops_bp.get("/tenants/<slug>/rules/<int:number>.toml")
@login_required
def download_rules(slug: str, number: int) -> Any:
    require(current_user, Action.PLATFORM_MANAGE)
    tenant = _load_tenant(slug)
    try:
        version = tenant_services.rules_version(db(), tenant, number)
    except ServiceError:
        abort(404)
    return toml_download(version.source_toml, f"{tenant.slug}-rules-v{version.version}.toml")


@ops_bp.post("/tenants/<slug>/suspend")
@login_required
def suspend(slug: str) -> Any:
    require(current_user, Action.PLATFORM_MANAGE)
    tenant = _load_tenant(slug)
    form = SuspendForm(prefix="suspend")
    if not form.validate_on_submit():
        return _detail(tenant, 400, suspend=form)
    try:
        tenant_services.suspend_tenant(db(), tenant, form.reason.data or "")
    except ServiceError as exc:
        db().rollback()
        _attach_error(form, exc, "reason")
        return _detail(tenant, exc.status, suspend=form, error=exc.message)
    db().commit()
    flash(_("已暂停单位 %(name)s，其用户已被登出。", name=tenant.name), "success")
    return redirect(url_for("ops.tenant_detail", slug=tenant.slug))


@ops_bp.post("/tenants/<slug>/resume")
@login_required
def resume(slug: str) -> Any:
    require(current_user, Action.PLATFORM_MANAGE)
    tenant = _load_tenant(slug)
    form = ResumeForm(prefix="resume")
    if not form.validate_on_submit():
        return _detail(tenant, 400, resume=form)
    try:
        tenant_services.resume_tenant(db(), tenant, form.reason.data)
    except ServiceError as exc:
        db().rollback()
        _attach_error(form, exc, "reason")
        return _detail(tenant, exc.status, resume=form, error=exc.message)
    db().commit()
    flash(_("已恢复单位 %(name)s。", name=tenant.name), "success")
    return redirect(url_for("ops.tenant_detail", slug=tenant.slug))


@ops_bp.post("/tenants/<slug>/admins")
@login_required
def add_admin(slug: str) -> Any:
    """Open a district: its first (or another) administrator, invited by e-mail."""
    require(current_user, Action.PLATFORM_MANAGE)
    tenant = _load_tenant(slug)
    form = AddAdminForm(prefix="admin")
    if not form.validate_on_submit():
        return _detail(tenant, 400, admin=form)
    settings = current_app.config["FIVESTAR_SETTINGS"]
    try:
        with tenant_context(tenant.id):
            account, _link = account_services.create_tenant_admin(
                db(),
                username=form.username.data or "",
                display_name=form.display_name.data or "",
                email=form.email.data,
                settings=settings,
                link_for=lambda token: account_services.invitation_url(settings, tenant.slug, token),
            )
            enqueue_after_commit(db(), settings, task_names.DELIVER_OUTBOX)
            db().commit()
    except ServiceError as exc:
        db().rollback()
        field = getattr(form, exc.field or "", None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), exc.message]
            return _detail(tenant, exc.status, admin=form)
        return _detail(tenant, exc.status, admin=form, error=exc.message)
    flash(_("已添加管理员 %(username)s，邀请邮件已发往 %(email)s。", username=account.username, email=account.email),
          "success")
    return redirect(url_for("ops.tenant_detail", slug=tenant.slug))
