"""`/t/<slug>/import/`: explain, download the template, upload a workbook, see the last imports.

The upload is validated completely before anything is written; on any problem the page shows the
whole table of problems (first `SHOWN_ISSUES`, plus a count) with 422 — or 400 when the file is
not a usable .xlsx at all — and the session is rolled back, so nothing is stored. On success the
view commits once and redirects to the result (which is the `import.run` audit event).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from fivestar.accounts.policy import Action, authorize, require
from fivestar.audit.models import AuditEvent
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.imports.columns import DEFAULT_MAX_ROWS
from fivestar.imports.forms import UploadForm
from fivestar.imports.report import ImportReport, SheetCounts
from fivestar.imports.services import import_workbook
from fivestar.imports.template import OrgListing, build_template
from fivestar.labels import label
from fivestar.orgs.models import Organisation
from fivestar.tenants.models import Tenant
from fivestar.web.errors import render_error
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

imports_bp = Blueprint("imports", __name__, url_prefix="/import")

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN_ISSUES = 500
HISTORY_SIZE = 10


def _max_rows() -> int:
    return int(current_app.config.get("FIVESTAR_IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS))


def _max_mb() -> int:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return max(1, int(limit) // (1024 * 1024))


def _authorized_tenant() -> Tenant:
    tenant = current_tenant()
    require(current_user, Action.MEMBER_IMPORT, tenant)
    return tenant


def _history(tenant: Tenant) -> list[dict[str, Any]]:
    """The last imports of this tenant, from their `import.run` audit events (one query)."""
    events = db().scalars(
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "import.run")
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(HISTORY_SIZE)
    )
    return [_run(event) for event in events]


def _run(event: AuditEvent) -> dict[str, Any]:
    after = event.after or {}
    return {
        "id": event.id,
        "at": event.occurred_at,
        "who": event.actor_name,
        "file_name": after.get("file_name", ""),
        "sha256": after.get("sha256", ""),
        "orgs": SheetCounts.from_dict(after.get("orgs")),
        "members": SheetCounts.from_dict(after.get("members")),
    }


def _page(
    form: UploadForm,
    tenant: Tenant,
    *,
    report: ImportReport | None = None,
    message: str | None = None,
    status: int = 200,
) -> Any:
    return (
        render_template(
            "imports/index.html",
            form=form,
            report=report,
            issues=report.issues[:SHOWN_ISSUES] if report else [],
            hidden=max(0, report.issue_count - min(len(report.issues), SHOWN_ISSUES)) if report else 0,
            message=message,
            history=_history(tenant),
            max_rows=_max_rows(),
            max_mb=_max_mb(),
        ),
        status,
    )


@imports_bp.get("/")
@login_required
def index() -> Any:
    tenant = _authorized_tenant()
    return _page(UploadForm(), tenant)


@imports_bp.get("/template.xlsx")
@login_required
def template() -> Any:
    tenant = _authorized_tenant()
    orgs = list(db().scalars(select(Organisation).where(Organisation.active.is_(True)).order_by(Organisation.path)))
    codes = {org.id: org.code for org in orgs}
    listing = [
        OrgListing(org.code, org.name, label(org.kind), codes.get(org.parent_id, "") if org.parent_id else "")
        for org in orgs
        if org.parent_id is not None
    ]
    data = build_template(listing, max_rows=_max_rows())
    return send_file(
        BytesIO(data),
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"{tenant.slug}-导入模板.xlsx",
        max_age=0,
    )


@imports_bp.post("/")
@login_required
def upload() -> Any:
    tenant = _authorized_tenant()
    form = UploadForm()
    if not form.validate_on_submit():
        return _page(form, tenant, status=400)
    upload_file = form.file.data
    session = db()
    try:
        report = import_workbook(
            session,
            tenant,
            upload_file.stream,
            file_name=upload_file.filename or "workbook.xlsx",
            max_rows=_max_rows(),
        )
    except ServiceError as error:
        session.rollback()
        return _page(form, tenant, message=error.message, status=error.status)
    if not report.ok:
        session.rollback()
        return _page(form, tenant, report=report, status=400 if report.file_problem else 422)
    session.commit()
    return redirect(url_for("tenant.imports.result", event_id=report.event_id))


@imports_bp.get("/runs/<int:event_id>")
@login_required
def result(event_id: int) -> Any:
    tenant = _authorized_tenant()
    event = db().scalar(
        select(AuditEvent).where(
            AuditEvent.id == event_id, AuditEvent.tenant_id == tenant.id, AuditEvent.action == "import.run"
        )
    )
    if event is None:
        abort(404)
    return render_template("imports/result.html", run=_run(event))


@imports_bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error: RequestEntityTooLarge) -> Any:
    tenant = current_tenant()
    message = _("文件超过 %(mb)d MB 的上限，请分批导入。", mb=_max_mb())
    if not authorize(current_user, Action.MEMBER_IMPORT, tenant):
        # Raising from an error handler would become a 500; answer as the generic 413 page does.
        return render_error(413, message)
    return _page(UploadForm(formdata=None), tenant, message=message, status=413)


__all__ = ["imports_bp"]
