"""上报上级: the tenant administrator's pages (`/t/<slug>/exports/…`).

The list of targets (which report, how, where, when, on/off) with add, edit, switch off/on and
delete, and below it the delivery log — each delivery's state, attempts, last error, and "重新发送"
for a failed one. Every page: `require(EXPORT_MANAGE)` (anyone else: 403) → load within the tenant
(another tenant's target or delivery is not found: 404) → service → commit once → redirect or
render. Stored secrets never reach a page: the form leaves them empty ("keep") and the list shows
only that one is stored.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from fivestar.accounts.policy import Action, require
from fivestar.broker import enqueue_after_commit
from fivestar.config import Settings
from fivestar.errors import ServiceError
from fivestar.exports import services
from fivestar.exports.models import ExportDelivery, ExportMethod, ExportState, ExportTarget, ExportTrigger
from fivestar.i18n import _, _l
from fivestar.kernel import task_names
from fivestar.reports.jobs.kinds import KINDS, format_label, kind_label
from fivestar.reports.jobs.models import ReportFormat, ReportKind
from fivestar.web.confirmed import ConfirmForm, confirm_delete, switch_active
from fivestar.web.editing import refuse_edit
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

exports_bp = Blueprint("exports", __name__, url_prefix="/exports")

SHOWN = 100  # deliveries on the page, newest first


class TargetForm(FlaskForm):
    # Choices are not validated by WTForms (its messages are English): the service refuses a bad
    # value with a Chinese message on the field.
    name = StringField(_l("名称"), validators=[Optional(), Length(max=60, message=_l("名称最多 60 个字"))])
    report_kind = SelectField(_l("报表"), choices=[], validate_choice=False)
    report_format = SelectField(_l("文件格式"), choices=[], validate_choice=False)
    method = SelectField(_l("上报方式"), choices=[], validate_choice=False)
    destination = StringField(
        _l("接收地址"),
        validators=[Optional(), Length(max=services.MAX_URL, message=_l("接收地址太长"))],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    remote_dir = StringField(_l("远程目录（仅 SFTP）"), validators=[Optional(), Length(max=services.MAX_DIR)],
                             render_kw={"autocomplete": "off", "spellcheck": "false"})
    username = StringField(_l("用户名（仅 SFTP）"), validators=[Optional(), Length(max=services.MAX_USERNAME)],
                           render_kw={"autocomplete": "off", "spellcheck": "false"})
    host_key = TextAreaField(_l("服务器公钥（仅 SFTP）"), validators=[Optional()],
                             render_kw={"spellcheck": "false", "rows": 3})
    secret = PasswordField(
        _l("签名密钥（HTTPS）或密码（SFTP）"),
        validators=[Optional(), Length(max=services.MAX_SECRET, message=_l("密钥或密码太长"))],
        render_kw={"autocomplete": "new-password", "spellcheck": "false"},
    )
    private_key = TextAreaField(_l("SFTP 私钥（可选）"), validators=[Optional()],
                                render_kw={"spellcheck": "false", "rows": 3, "autocomplete": "off"})
    clear_private_key = BooleanField(_l("删除已保存的私钥"))
    trigger = SelectField(_l("什么时候上报"), choices=[], validate_choice=False)
    on_date = StringField(_l("每年的日期（月-日）"), validators=[Optional(), Length(max=10)],
                          render_kw={"placeholder": "03-31", "inputmode": "numeric", "autocomplete": "off"})
    active = BooleanField(_l("启用"), default=True)
    version = HiddenField()


# --- helpers -------------------------------------------------------------------------------------


def _settings() -> Settings:
    settings: Settings = current_app.config["FIVESTAR_SETTINGS"]
    return settings


def _allowed() -> None:
    require(current_user, Action.EXPORT_MANAGE, current_tenant())


def _load(target_id: int) -> ExportTarget:
    """A target of the current tenant. Who is not an administrator gets 403 whatever the id; an
    administrator asking for another tenant's target gets 404."""
    _allowed()
    target = db().scalar(select(ExportTarget).where(ExportTarget.id == target_id))
    if target is None:
        abort(404)
    require(current_user, Action.EXPORT_MANAGE, target)
    return target


def _kind_choice(kind: ReportKind) -> str:
    where = _("党员评定") if KINDS[kind].round_type == "member" else _("支部评定")
    return f"{kind_label(kind)}（{where}）"


def _form(**kwargs: Any) -> TargetForm:
    form = TargetForm(**kwargs)
    form.report_kind.choices = [(kind.value, _kind_choice(kind)) for kind in KINDS]
    form.report_format.choices = [(fmt.value, format_label(fmt)) for fmt in ReportFormat]
    form.method.choices = [(method.value, str(services.METHOD_LABELS[method])) for method in ExportMethod]
    form.trigger.choices = [(trigger.value, str(services.TRIGGER_LABELS[trigger])) for trigger in ExportTrigger]
    return form


def _input(form: TargetForm) -> services.TargetInput:
    return services.TargetInput(
        name=form.name.data or "",
        report_kind=form.report_kind.data or "",
        report_format=form.report_format.data or "",
        method=form.method.data or "",
        destination=form.destination.data or "",
        trigger=form.trigger.data or "",
        on_date=form.on_date.data or "",
        remote_dir=form.remote_dir.data or "",
        username=form.username.data or "",
        host_key=form.host_key.data or "",
        secret=form.secret.data or "",
        private_key=form.private_key.data or "",
        clear_private_key=bool(form.clear_private_key.data),
        active=bool(form.active.data),
    )


def _when(target: ExportTarget) -> str:
    round_type = _("党员评定") if KINDS[target.report_kind].round_type == "member" else _("支部评定")
    if target.trigger is ExportTrigger.ON_DATE:
        return _("每年 %(month)d月%(day)d日 %(time)s（发送最近一次已结束的%(what)s）",
                 month=target.on_month or 0, day=target.on_day or 0,
                 time=services.ON_DATE_TIME.strftime("%H:%M"), what=round_type)
    return _("%(what)s结束时", what=round_type)


def _render_form(form: TargetForm, target: ExportTarget | None, status: int) -> Any:
    settings = _settings()
    form.private_key.data = ""  # a typed key is never sent back (the password field hides its value itself)
    stored = {
        "secret": services.mask_secret(settings, target.secret_encrypted) if target else "",
        "private_key": bool(target and target.private_key_encrypted),
        "fingerprint": services.host_key_fingerprint(target.host_key) if target else "",
    }
    hosts = sorted(settings.export_host_set)
    return render_template("exports/form.html", form=form, target=target, stored=stored, hosts=hosts), status


# --- pages ---------------------------------------------------------------------------------------


@exports_bp.get("/")
@login_required
def index() -> Any:
    _allowed()
    return _render_index(request.args.get("state", ""))


def _render_index(wanted: str, status: int = 200) -> Any:
    targets = list(db().scalars(select(ExportTarget).order_by(ExportTarget.active.desc(), ExportTarget.name)))
    names = {target.id: target.name for target in targets}
    query = (select(ExportDelivery).order_by(ExportDelivery.created_at.desc(), ExportDelivery.id.desc())
             .limit(SHOWN))
    if wanted in {state.value for state in ExportState}:
        query = query.where(ExportDelivery.state == ExportState(wanted))
    deliveries = list(db().scalars(query))
    counts = dict(db().execute(select(ExportDelivery.state, func.count()).group_by(ExportDelivery.state)).all())
    rows = [
        {
            "target": target,
            "report": f"{kind_label(target.report_kind)} · {format_label(target.report_format)}",
            "method": services.METHOD_LABELS[target.method],
            "where": services.describe_destination(target),
            "when": _when(target),
        }
        for target in targets
    ]
    log = [
        {
            "delivery": delivery,
            "target": names.get(delivery.target_id, ""),
            "round": services.round_label(delivery.round_type, delivery.round_key),
            "state": services.STATE_LABELS[delivery.state],
        }
        for delivery in deliveries
    ]
    return render_template(
        "exports/index.html", rows=rows, log=log, counts=counts, wanted=wanted, states=list(ExportState),
        state_label=lambda state: str(services.STATE_LABELS[state]), form=ConfirmForm(formdata=None),
        hosts=sorted(_settings().export_host_set),
    ), status


@exports_bp.route("/new", methods=["GET", "POST"])
@login_required
def create() -> Any:
    _allowed()
    form = _form()
    status = 200
    if form.validate_on_submit():
        try:
            services.create_target(db(), _settings(), current_tenant().timezone, _input(form))
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
        else:
            flash(_("已添加上报设置。"), "success")
            return redirect(url_for(".index"), code=303)
    elif request.method == "POST":
        status = 400
    return _render_form(form, None, status)


@exports_bp.route("/<int:target_id>/edit", methods=["GET", "POST"])
@login_required
def edit(target_id: int) -> Any:
    target = _load(target_id)
    if request.method == "GET":
        form = _form(
            formdata=None,
            name=target.name,
            report_kind=target.report_kind.value,
            report_format=target.report_format.value,
            method=target.method.value,
            destination=target.destination,
            remote_dir=target.remote_dir or "",
            username=target.username or "",
            host_key=target.host_key or "",
            trigger=target.trigger.value,
            on_date=services.month_day_text(target),
            active=target.active,
            version=str(target.version),
        )
    else:
        form = _form()
    status = 200
    if form.validate_on_submit():
        try:
            services.update_target(db(), _settings(), current_tenant().timezone, target, _input(form),
                                   version=form.version.data)
            db().commit()
        except ServiceError as error:
            status, target = refuse_edit(error, form, lambda: _load(target_id))
        else:
            flash(_("已保存。"), "success")
            return redirect(url_for(".index"), code=303)
    elif request.method == "POST":
        status = 400
    return _render_form(form, target, status)


@exports_bp.post("/<int:target_id>/active")
@login_required
def toggle(target_id: int) -> Any:
    target = _load(target_id)

    def switch(version: int) -> bool:
        services.set_active(db(), current_tenant().timezone, target, not target.active, version=version)
        return target.active

    return switch_active(switch, switched_on=_("已启用“%(name)s”：此后结束的评定会上报。", name=target.name),
                         switched_off=_("已停用“%(name)s”。", name=target.name))


@exports_bp.route("/<int:target_id>/delete", methods=["GET", "POST"])
@login_required
def delete(target_id: int) -> Any:
    def page(target: ExportTarget, form: ConfirmForm) -> str:
        deliveries = db().scalar(select(func.count()).select_from(ExportDelivery)
                                 .where(ExportDelivery.target_id == target.id)) or 0
        return render_template("exports/delete.html", form=form, target=target, deliveries=deliveries,
                               where=services.describe_destination(target))

    return confirm_delete(
        lambda: _load(target_id),
        lambda target, version: services.delete_target(db(), target, version=version),
        done=lambda target: _("已删除上报设置“%(name)s”。", name=target.name),
        page=page,
    )


@exports_bp.post("/deliveries/<int:delivery_id>/resend")
@login_required
def resend(delivery_id: int) -> Any:
    _allowed()
    delivery = db().scalar(select(ExportDelivery).where(ExportDelivery.id == delivery_id))
    if delivery is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.resend(db(), delivery)
    except ServiceError as error:
        db().rollback()
        flash(error.message, "error")
        return _render_index("", error.status if error.status != 400 else 409)
    enqueue_after_commit(db(), _settings(), task_names.EXPORTS_SWEEP)
    db().commit()
    flash(_("已重新排队上报，稍后可在下方查看结果。"), "success")
    return redirect(url_for(".index"), code=303)


__all__ = ["exports_bp"]
