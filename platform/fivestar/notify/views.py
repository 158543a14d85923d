"""Group-robot pages for the tenant administrator (`/t/<slug>/webhooks/…`).

List the district's robots (name, kind, scope, masked address, on/off), add and edit them, switch
them off or on, delete them, and send a test message. Every page: load within the tenant (another
tenant's robot is not found: 404) → `require(NOTIFY_MANAGE)` → service → commit once → redirect or
render. The stored address and secret never reach a page: the list shows the address masked, the
edit form leaves both empty ("keep") and says so.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from fivestar.accounts.policy import Action, require
from fivestar.enums import OrgKind
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _, _l
from fivestar.labels import label
from fivestar.notify import services
from fivestar.notify.errors import WebhookError
from fivestar.notify.models import KIND_LABELS, Webhook, WebhookKind
from fivestar.notify.sending import send
from fivestar.notify.url_policy import MAX_URL, masked_url
from fivestar.orgs.models import Organisation
from fivestar.web.confirmed import ConfirmForm, confirm_delete, form_version, switch_active
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

webhooks_bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

TEST_TIMEOUT = 10.0  # seconds the administrator's page waits for the vendor at most


class WebhookForm(FlaskForm):
    name = StringField(
        _l("名称"),
        validators=[DataRequired(message=_l("请填写名称")), Length(max=60, message=_l("名称最多 60 个字"))],
    )
    kind = SelectField(_l("类型"), choices=[], validators=[DataRequired(message=_l("请选择机器人类型"))])
    organisation_id = SelectField(_l("适用范围"), choices=[])
    url = StringField(
        _l("Webhook 地址"),
        validators=[Optional(), Length(max=MAX_URL, message=_l("Webhook 地址太长"))],
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"},
    )
    secret = PasswordField(
        _l("加签密钥（仅钉钉，可选）"),
        validators=[Optional(), Length(max=services.MAX_SECRET, message=_l("加签密钥太长"))],
        render_kw={"autocomplete": "new-password", "spellcheck": "false"},
    )
    clear_secret = BooleanField(_l("删除已保存的加签密钥"))
    active = BooleanField(_l("启用（提醒会发到这个群）"), default=True)
    version = HiddenField()


# --- helpers -------------------------------------------------------------------------------------


def _settings() -> Any:
    return current_app.config["FIVESTAR_SETTINGS"]


def _allowed() -> None:
    require(current_user, Action.NOTIFY_MANAGE, current_tenant())


def _load(webhook_id: int) -> Webhook:
    """A robot of the current tenant. Who is not an administrator gets 403 whatever the id (the
    pages are not theirs); an administrator asking for another tenant's robot gets 404."""
    _allowed()
    webhook = db().scalar(select(Webhook).where(Webhook.id == webhook_id))
    if webhook is None:
        abort(404)
    require(current_user, Action.NOTIFY_MANAGE, webhook)
    return webhook


def _org_choices() -> list[tuple[str, str]]:
    """The whole district, then every active organisation below the 工委, as a tree (one query)."""
    rows = db().execute(
        select(Organisation.id, Organisation.kind, Organisation.name, Organisation.path)
        .where(Organisation.active.is_(True), Organisation.kind != OrgKind.COMMITTEE)
        .order_by(Organisation.path)
    )
    choices = [("", _("全区（所有组织）"))]
    for org_id, kind, name, path in rows:
        depth = max(0, path.strip("/").count("/") - 1)
        choices.append((str(org_id), "\u3000" * depth + f"{name}（{label(kind)}）"))
    return choices


def _form(**kwargs: Any) -> WebhookForm:
    """The form with its choices (the organisations of the tenant, in the reader's language)."""
    form = WebhookForm(**kwargs)
    form.kind.choices = [(kind.value, str(KIND_LABELS[kind])) for kind in WebhookKind]
    form.organisation_id.choices = _org_choices()
    return form


def _input(form: WebhookForm) -> services.WebhookInput:
    raw = form.organisation_id.data or ""
    return services.WebhookInput(
        name=form.name.data or "",
        kind=form.kind.data or "",
        organisation_id=int(raw) if raw.isdigit() else None,
        url=form.url.data or "",
        secret=form.secret.data or "",
        clear_secret=bool(form.clear_secret.data),
        active=bool(form.active.data),
    )


# --- pages ---------------------------------------------------------------------------------------


@webhooks_bp.get("/")
@login_required
def index() -> Any:
    _allowed()
    district_first = (Webhook.organisation_id.is_not(None), Webhook.name, Webhook.id)
    rows = list(db().scalars(select(Webhook).order_by(*district_first)))
    org_ids = {row.organisation_id for row in rows if row.organisation_id is not None}
    names: dict[int, str] = {}
    if org_ids:
        found = db().execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids)))
        names = {org_id: name for org_id, name in found}
    settings = _settings()
    items = [
        {
            "webhook": row,
            "kind": KIND_LABELS[WebhookKind(row.kind)],
            "scope": names.get(row.organisation_id, "") if row.organisation_id is not None else _("全区"),
            "url": masked_url(settings, row),
            "signed": row.secret_encrypted is not None,
        }
        for row in rows
    ]
    return render_template("notify/index.html", items=items, form=ConfirmForm(formdata=None))


@webhooks_bp.route("/new", methods=["GET", "POST"])
@login_required
def create() -> Any:
    _allowed()
    form = _form()
    status = 200
    if form.validate_on_submit():
        if not (form.url.data or "").strip():
            form.url.errors = [_("请填写 Webhook 地址")]
            status = 400
        else:
            try:
                services.create_webhook(db(), _settings(), _input(form))
                db().commit()
            except ServiceError as error:
                status = refuse(error, form)
            else:
                flash(_("已添加群机器人。可点击“发送测试消息”检查设置。"), "success")
                return redirect(url_for(".index"))
    elif request.method == "POST":
        status = 400
    return render_template("notify/form.html", form=form, webhook=None, current_url=None), status


@webhooks_bp.route("/<int:webhook_id>/edit", methods=["GET", "POST"])
@login_required
def edit(webhook_id: int) -> Any:
    webhook = _load(webhook_id)
    if request.method == "GET":
        form = _form(
            formdata=None,
            name=webhook.name,
            kind=webhook.kind.value,
            organisation_id=str(webhook.organisation_id or ""),
            active=webhook.active,
            version=str(webhook.version),
        )
    else:
        form = _form()
    status = 200
    if form.validate_on_submit():
        try:
            services.update_webhook(db(), _settings(), webhook, _input(form), version=form_version(form))
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            webhook = _load(webhook_id)
            if isinstance(error, ConflictError):
                form.version.data = str(webhook.version)  # a second save is deliberate
        else:
            flash(_("已保存。"), "success")
            return redirect(url_for(".index"))
    elif request.method == "POST":
        status = 400
    current_url = masked_url(_settings(), webhook)
    return render_template("notify/form.html", form=form, webhook=webhook, current_url=current_url), status


@webhooks_bp.post("/<int:webhook_id>/active")
@login_required
def toggle(webhook_id: int) -> Any:
    """Switch a robot off (or on again) from the list."""
    webhook = _load(webhook_id)

    def switch(version: int) -> bool:
        services.set_active(db(), webhook, not webhook.active, version=version)
        return webhook.active

    return switch_active(
        switch,
        switched_on=_("已启用“%(name)s”。", name=webhook.name),
        switched_off=_("已停用“%(name)s”。", name=webhook.name),
    )


@webhooks_bp.route("/<int:webhook_id>/delete", methods=["GET", "POST"])
@login_required
def delete(webhook_id: int) -> Any:
    def page(webhook: Webhook, form: ConfirmForm) -> str:
        url = masked_url(_settings(), webhook)
        return render_template("notify/delete.html", form=form, webhook=webhook, url=url)

    return confirm_delete(
        lambda: _load(webhook_id),
        lambda webhook, version: services.delete_webhook(db(), webhook, version=version),
        done=lambda webhook: _("已删除群机器人“%(name)s”。", name=webhook.name),
        page=page,
    )


@webhooks_bp.post("/<int:webhook_id>/test")
@login_required
def test(webhook_id: int) -> Any:
    """Send a test message now, in this request, and tell the administrator what the vendor said."""
    webhook = _load(webhook_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    tenant = current_tenant()
    title = _("五星争创 · 测试消息")
    text = _(
        "这是%(tenant)s五星争创平台发给“%(name)s”的测试消息。收到即表示群机器人设置正确，评定的提醒会发到这里。",
        tenant=tenant.name,
        name=webhook.name,
    )
    # End the read transaction before waiting for the vendor (seconds, at worst); the row stays
    # usable detached, as `send` reads only its columns.
    db().expunge(webhook)
    db().rollback()
    try:
        send(_settings(), webhook, title, text, timeout=TEST_TIMEOUT)
    except WebhookError as error:
        flash(_("测试消息发送失败：%(reason)s", reason=str(error)), "error")
    else:
        flash(_("测试消息已发送到“%(name)s”，请到群里查看。", name=webhook.name), "success")
    return redirect(url_for(".index"), code=303)
