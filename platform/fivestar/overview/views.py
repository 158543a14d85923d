"""The overview pages: the committee dashboard, the advanced-organisation report (page, Excel, PDF) and
the member follow-up overview (the district, a subtree, or one branch). All read-only."""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, authorize, require, scoped_actions
from fivestar.enums import OrgKind
from fivestar.errors import NotVisibleError
from fivestar.i18n import _
from fivestar.member_rounds.workbooks import download_filename, generated_stamp
from fivestar.orgs.queries import load_org
from fivestar.overview import charts, workbooks
from fivestar.overview.advanced import advanced_report
from fivestar.overview.dashboard import CHART_KEYS, build_dashboard
from fivestar.overview.followups import FollowUpOverview, follow_up_overview
from fivestar.overview.paper import advanced_pdf, condition_text
from fivestar.timekeeping import clock
from fivestar.web.downloads import PDF, XLSX, download
from fivestar.web.ids import parse_id
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

overview_bp = Blueprint("overview", __name__, url_prefix="/overview")


def _require_district() -> None:
    """The committee's pages: tenant-wide readers only (工委工作人员, 工委委员, 督查组)."""
    if not authorize(current_user, Action.OVERVIEW_VIEW):
        abort(403)


def _xlsx(write: Any, filename: str) -> Any:
    """A small workbook (a row per organisation or period) built in memory and sent."""
    buffer = io.BytesIO()
    write(buffer)
    return download(buffer.getvalue(), filename, mimetype=XLSX)


# --- the dashboard ---------------------------------------------------------------------------------


def _dashboard() -> Any:
    tenant = current_tenant()
    return build_dashboard(db(), tenant, clock.today_in(tenant.timezone), clock.now())


@overview_bp.get("/")
@login_required
def dashboard() -> Any:
    _require_district()
    board = _dashboard()
    drawn = {chart.key: charts.render(chart) for chart in board.charts if not chart.empty}
    return render_template("overview/dashboard.html", board=board, drawn=drawn)


@overview_bp.get("/chart.xlsx")
@login_required
def chart_xlsx() -> Any:
    """One chart's numbers (`?chart=<key>`, one of `CHART_KEYS`)."""
    _require_district()
    key = request.args.get("chart", "")
    if key not in CHART_KEYS:
        abort(404)
    tenant = current_tenant()
    chart = _dashboard().chart(key)
    if chart is None:  # pragma: no cover - every key is built
        abort(404)
    stamp = generated_stamp(tenant)
    name = download_filename(chart.title, stamp)
    generated = clock.now().astimezone(ZoneInfo(tenant.timezone)).strftime("%Y-%m-%d %H:%M")
    return _xlsx(lambda out: workbooks.write_chart(out, tenant.name, generated, chart), f"{name}.xlsx")


# --- 先进机关党组织 --------------------------------------------------------------------------------------


@overview_bp.get("/advanced")
@login_required
def advanced() -> Any:
    _require_district()
    report = advanced_report(db(), current_tenant())
    return render_template("overview/advanced.html", report=report, condition=condition_text(report))


@overview_bp.get("/advanced.xlsx")
@login_required
def advanced_xlsx() -> Any:
    _require_district()
    tenant = current_tenant()
    report = advanced_report(db(), tenant)
    name = download_filename(_("先进机关党组织推荐参考"), generated_stamp(tenant))
    return _xlsx(lambda out: workbooks.write_advanced(out, report), f"{name}.xlsx")


@overview_bp.get("/advanced.pdf")
@login_required
def advanced_pdf_download() -> Any:
    _require_district()
    tenant = current_tenant()
    report = advanced_report(db(), tenant)
    name = download_filename(_("先进机关党组织推荐参考"), generated_stamp(tenant))
    return download(advanced_pdf(report), f"{name}.pdf", mimetype=PDF)


# --- member follow-ups -----------------------------------------------------------------------------


def _round_arg() -> int | None:
    return parse_id(request.args.get("round"))  # not an id (`abc`, `²`, 20 digits): the latest round


@overview_bp.get("/followups")
@login_required
def followups() -> Any:
    """The follow-ups in the person's scope: the district for the committee, a subtree for a 机关党委's
    staff, their own branch for a branch's secretary and committee."""
    if not (authorize(current_user, Action.FOLLOWUP_VIEW) or Action.FOLLOWUP_VIEW in scoped_actions(current_user)):
        abort(403)
    tenant = current_tenant()
    round_id = _round_arg()
    overview = follow_up_overview(db(), current_user, clock.today_in(tenant.timezone), round_id=round_id)
    if round_id is not None and overview.chosen is None:
        abort(404)
    return render_template(
        "overview/followups.html",
        overview=overview,
        branch=None,
        district=authorize(current_user, Action.FOLLOWUP_VIEW),
        recordable=_recordable(overview),
    )


@overview_bp.get("/followups/branches/<int:branch_id>")
@login_required
def branch_followups(branch_id: int) -> Any:
    """One branch's follow-ups: its own secretary and committee, the staff above it, the committee.
    Another branch's, or another district's, answers 404."""
    branch = load_org(db(), branch_id)
    if branch is None or branch.kind is not OrgKind.BRANCH:
        abort(404)
    try:
        require(current_user, Action.FOLLOWUP_VIEW, branch)
    except NotVisibleError:
        abort(404)
    tenant = current_tenant()
    round_id = _round_arg()
    overview = follow_up_overview(
        db(), current_user, clock.today_in(tenant.timezone), round_id=round_id, branch_id=branch.id
    )
    if round_id is not None and overview.chosen is None:
        abort(404)
    return render_template(
        "overview/followups.html", overview=overview, branch=branch, district=False, recordable=_recordable(overview)
    )


def _recordable(overview: FollowUpOverview) -> set[int]:
    """The branches whose follow-up page this person may open (the branch records them: 书记, 支委, and
    the administrators); for the others the overview only reads."""
    branches = {line.branch_id: line.branch for line in overview.lines}
    return {bid for bid, org in branches.items() if authorize(current_user, Action.ROUND_EVALUATE, org)}


__all__ = ["overview_bp"]
