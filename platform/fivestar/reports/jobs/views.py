"""The reports page (`/t/<slug>/reports/`): every report the tenant asked for, with its progress
while a worker writes it, the download once done and the reason when it failed.

- `index`: the list (the latest `LIST_LIMIT`), newest first; `static/js/reports.js` polls `status`
  (JSON, same origin) every two seconds while a report is queued or running and moves the progress
  bars without reloading the page.
- `request_member` / `request_branch`: the "生成报表" forms of the member and branch round pages post
  here; the job is written and committed, its message sent after the commit, and the browser comes
  to the list.
- `download`: the file, always as an attachment, never cached.

Reports cover the whole tenant (every branch, every member), so only tenant-wide readers — 工委工作人员,
工委委员 and 督查组 — may ask for, see and download them: anyone else gets 403, and a round or report
of another district is 404 (its id is looked up within the tenant only).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, authorize, require
from fivestar.branch_rounds.core import load_round as load_branch_round
from fivestar.branch_rounds.models import BranchRound
from fivestar.config import Settings
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.member_rounds.core import load_round as load_member_round
from fivestar.member_rounds.models import MemberRound
from fivestar.reports.jobs import content, kinds, services
from fivestar.reports.jobs.models import JobState, ReportJob
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

reports_bp = Blueprint("reports", __name__, url_prefix="/reports")


@reports_bp.app_context_processor
def _report_helpers() -> dict[str, Any]:
    """For the round pages' "生成报表" form (templates/reports/_generate.html)."""
    return {"report_kinds": kinds.choices, "report_formats": kinds.format_choices}


def _settings() -> Settings:
    settings: Settings = current_app.config["FIVESTAR_SETTINGS"]
    return settings


def _require_reader() -> None:
    """Tenant-wide readers only: a report holds every branch and member of the district."""
    require(current_user, Action.TENANT_VIEW, current_tenant())
    if not authorize(current_user, Action.ROUND_VIEW):
        abort(403)


def human_size(size: int | None) -> str:
    if not size:
        return ""
    if size < 1024 * 1024:
        return f"{max(size // 1024, 1)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _status(job: ReportJob) -> dict[str, Any]:
    done = job.state is JobState.DONE
    return {
        "id": job.id,
        "state": job.state.value,
        "label": kinds.state_label(job.state),
        "progress": 100 if done else job.progress,
        "download": url_for(".download", job_id=job.id) if done else None,
        "size": human_size(job.file_size) if done else "",
        "failure": job.failure_reason if job.state is JobState.FAILED else None,
    }


def _render_index(status: int = 200) -> Any:
    jobs = services.recent_jobs(db())
    return (
        render_template(
            "reports/index.html",
            jobs=jobs,
            state_label=kinds.state_label,
            format_label=kinds.format_label,
            human_size=human_size,
            JobState=JobState,
            active={JobState.QUEUED, JobState.RUNNING},
            keep_days=_settings().report_keep_days,
        ),
        status,
    )


@reports_bp.get("/")
@login_required
def index() -> Any:
    _require_reader()
    return _render_index()


@reports_bp.get("/status")
@login_required
def status() -> Any:
    """The listed reports' states and progress, for the page's poll (no personal data)."""
    _require_reader()
    response = jsonify({"jobs": [_status(job) for job in services.recent_jobs(db())]})
    response.headers["Cache-Control"] = "no-store"
    return response


def _request(subject: MemberRound | BranchRound) -> Any:
    _require_reader()
    try:
        requested = services.request_report(
            db(),
            _settings(),
            tenant=current_tenant(),
            principal=current_user,
            kind=request.form.get("kind"),
            fmt=request.form.get("format"),
            subject=subject,
        )
        job_id = requested.job.id
        db().commit()
    except ServiceError as error:
        db().rollback()
        flash(error.message, "error")
        return _render_index(error.status)
    if requested.created:
        flash(_("已开始生成报表，完成后可在下方下载。"), "success")
    else:
        flash(_("同样的报表正在生成中，请稍候。"), "info")
    return redirect(url_for(".index", _anchor=f"job-{job_id}"))


@reports_bp.post("/member-rounds/<int:round_id>")
@login_required
def request_member(round_id: int) -> Any:
    try:
        member_round = load_member_round(db(), round_id)
    except NotFoundError:
        abort(404)
    return _request(member_round)


@reports_bp.post("/branch-rounds/<int:branch_round_id>")
@login_required
def request_branch(branch_round_id: int) -> Any:
    try:
        branch_round = load_branch_round(db(), branch_round_id)
    except NotFoundError:
        abort(404)
    return _request(branch_round)


@reports_bp.get("/<int:job_id>/download")
@login_required
def download(job_id: int) -> Any:
    try:
        job = services.load_job(db(), job_id)
    except NotFoundError:
        abort(404)
    _require_reader()
    try:
        path = services.download_path(_settings(), job)
    except ServiceError as error:
        flash(error.message, "error")
        return _render_index(error.status)
    response = send_file(
        path,
        mimetype=content.mimetype(job.format),
        as_attachment=True,
        download_name=job.filename or f"report-{job.id}.{job.format.value}",
        max_age=0,
        conditional=False,
        etag=False,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


__all__ = ["reports_bp"]
