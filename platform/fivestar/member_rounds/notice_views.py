"""The public notice of a branch (`/t/<slug>/notice/<token>`): no login, the link is the key.

Anyone with the link reads the branch's members and levels (no scores, no phone numbers) and, while
the notice runs, may file an objection (name and contact optional). Unknown, stale or not yet
started links answer 404 — never 403, and never a hint that another branch exists. Filing is
CSRF-protected and rate-limited per address; search engines are asked not to index the pages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length

from fivestar.audit import Actor, acting_as
from fivestar.errors import ServiceError
from fivestar.extensions import limiter
from fivestar.i18n import _, _l
from fivestar.member_rounds import committee, notice, notice_paper, workbooks
from fivestar.member_rounds.models import RoundBranch
from fivestar.web.downloads import download
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

notice_bp = Blueprint("member_round_notice", __name__, url_prefix="/notice")

DEFAULT_LIMIT = "10 per hour"


def _limit() -> str:
    return str(current_app.config.get("FIVESTAR_OBJECTION_LIMIT", DEFAULT_LIMIT))


class ObjectionForm(FlaskForm):
    evaluation_id = SelectField(_l("涉及的党员"), choices=[], validate_choice=False)
    text = TextAreaField(
        _l("异议内容"), validators=[Length(max=notice.TEXT_MAX, message=_l("异议内容最长 2000 个字"))]
    )
    filer_name = StringField(_l("您的姓名"), validators=[Length(max=notice.NAME_MAX, message=_l("姓名最长 60 个字"))])
    filer_contact = StringField(
        _l("联系方式"), validators=[Length(max=notice.CONTACT_MAX, message=_l("联系方式最长 120 个字"))]
    )


@notice_bp.after_request
def _not_for_search_engines(response: Response) -> Response:
    """The link is shared by hand; it must not end up in a search index or in another site's logs."""
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _notice_or_404(token: str) -> RoundBranch:
    found = notice.find_notice(db(), token)
    if found is None:
        abort(404)
    return found


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@notice_bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def public(token: str) -> Any:
    round_branch = _notice_or_404(token)
    view = notice.notice_view(db(), round_branch)
    form = ObjectionForm()
    form.evaluation_id.choices = [("", _("不指定（针对整体公示结果）"))] + [
        (str(row.evaluation_id), row.name) for row in view.rows
    ]
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                # Filed as "the public", whoever is signed in: objections may be anonymous.
                with acting_as(Actor("public", None, _("公示页面"))):
                    notice.file_objection(
                        db(),
                        round_branch,
                        text=form.text.data,
                        filer_name=form.filer_name.data,
                        filer_contact=form.filer_contact.data,
                        evaluation_id=_int_or_none(form.evaluation_id.data),
                    )
                db().commit()
            except ServiceError as error:
                db().rollback()
                field = getattr(form, error.field, None) if error.field else None
                if field is not None:
                    field.errors = [*field.errors, error.message]
                else:
                    flash(error.message, "error")
                status = error.status
                round_branch = _notice_or_404(token)
                view = notice.notice_view(db(), round_branch)
            else:
                flash(_("已收到您的异议，支部将认真核实并答复。"), "success")
                return redirect(url_for(".public", token=token))
        else:
            status = 400
    return (
        render_template(
            "rounds/notice/public.html",
            view=view,
            form=form,
            token=token,
            tenant_name=current_tenant().name,
        ),
        status,
    )


@notice_bp.get("/<token>/pdf")
def pdf(token: str) -> Any:
    round_branch = _notice_or_404(token)
    view = notice.notice_view(db(), round_branch)
    tenant = current_tenant()
    data = notice_paper.notice_pdf(
        view,
        tenant.name,
        committee.rules_version_number(db(), view.round),
        link=url_for(".public", token=token, _external=True),
    )
    name = workbooks.download_filename(view.branch_name, _("党员星级评定结果公示"), view.round.period_key)
    return download(data, f"{name}.pdf", inline=True)


__all__ = ["notice_bp"]
