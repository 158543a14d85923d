"""The branch's own pages of the annual rating (`/t/<slug>/branch-rating/ratings/…`): its page for
the year (dashboard), 荐星 (self-recommendation) with the rule engine's live view, and evidence
files per criterion.

Each view loads the rating within the current tenant (another tenant's id is not found: 404),
then requires `ROUND_VIEW` to read (committee, inspectors, organisation staff of the subtree, the
branch's own secretary and committee members; anyone else: 404) and `BRANCH_RATE` to write (the
branch's secretary and committee members, administrators; a reader who may not write: 403). A
view calls one service, commits once and redirects; a refusal comes back on the page with the
person's input kept and a 4xx — 400 for wrong input (each message beside its field), 409 for a
step the workflow refuses or a form someone else saved first, 413 for a file too large.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.routing import BuildError

from fivestar.accounts.policy import Action, authorize, require
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds import core, evidence, recommend, recommend_pages, workflow
from fivestar.branch_rounds.models import BranchRating, RatingStep
from fivestar.branch_rounds.recommend import RatingContext
from fivestar.enums import Role
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.rules import level_label, medal_label
from fivestar.web.downloads import uploaded_file
from fivestar.web.errors import user_error
from fivestar.web.session import db

branch_rating_branch_bp = Blueprint("branch_rating_branch", __name__, url_prefix="/branch-rating/ratings")

BRANCH_ROLES = (Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)


# --- loading and permissions ---------------------------------------------------------------------------


def _rating(rating_id: int, action: Action = Action.ROUND_VIEW) -> BranchRating:
    """The rating if this person may `action` it. Not visible at all: 404; visible but not
    writable: 403."""
    try:
        rating = core.load_rating(db(), rating_id)
    except NotFoundError:
        abort(404)
    require(current_user, Action.ROUND_VIEW, rating)
    if action is not Action.ROUND_VIEW and not authorize(current_user, action, rating):
        abort(403)
    return rating


def _context(rating_id: int, action: Action = Action.ROUND_VIEW) -> RatingContext:
    return recommend.context_for(db(), _rating(rating_id, action))


def _fresh(rating_id: int, action: Action = Action.ROUND_VIEW) -> RatingContext:
    """After a refused change (rolled back): everything loaded again, as stored."""
    db().rollback()
    return _context(rating_id, action)


def _link(endpoint: str, **values: Any) -> str | None:
    """A link to another part's page, if that part is installed (parts land independently)."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _links(ctx: RatingContext) -> dict[str, str | None]:
    rating = ctx.rating
    links: dict[str, str | None] = {
        "rounds": _link("tenant.branch_rating_committee.index"),
        "meeting": None,
        "org_review": None,
        "dossier": None,
        "quarterly": _link("tenant.branch_rating_quarterly.index"),
        "public": None,
    }
    if rating.step is not RatingStep.RECOMMEND:
        links["meeting"] = _link("tenant.branch_rating_deliberation.meeting", rating_id=rating.id)
    if rating.step is RatingStep.ORG_REVIEW and authorize(current_user, Action.BRANCH_FORWARD, rating):
        links["org_review"] = _link("tenant.branch_rating_org_review.review", rating_id=rating.id)
    if authorize(current_user, Action.BRANCH_DECIDE, rating):
        links["dossier"] = _link("tenant.branch_rating_committee.dossier", rating_id=rating.id)
    if ctx.round.state.value == "finalised":
        links["public"] = _link("tenant.branch_rating_stars.public")
    return links


def _render(template: str, ctx: RatingContext, status: int = 200, **values: Any) -> Any:
    values.setdefault("links", _links(ctx))
    return (
        render_template(
            template,
            ctx=ctx,
            rating=ctx.rating,
            branch_round=ctx.round,
            can_rate=authorize(current_user, Action.BRANCH_RATE, ctx.rating),
            num=recommend.plain,
            level_name=level_label,
            medal_name=medal_label,
            human_size=evidence.human_size,
            step_label=workflow.step_label,
            **values,
        ),
        status,
    )


# --- the home page's "本支部星级评定" ----------------------------------------------------------------


def branch_rating_links() -> list[dict[str, Any]]:
    """The open ratings of the branches this person runs, for the home page (one query).

    Only branch roles (书记, 支委) count: an administrator may open any branch's page, but their
    home page should not list every branch of the district."""
    principal = current_user
    if not isinstance(principal, Principal) or principal.is_operator or not principal.is_authenticated:
        return []
    ids = sorted({g.organisation_id for g in principal.grants if g.role in BRANCH_ROLES and g.organisation_id})
    return [
        {
            "url": url_for("tenant.branch_rating_branch.dashboard", rating_id=item.rating_id),
            "branch": item.branch,
            "year": item.year,
            "step": workflow.step_label(item.step),
        }
        for item in recommend_pages.open_ratings(db(), ids)
    ]


branch_rating_branch_bp.add_app_template_global(branch_rating_links, "branch_rating_links")


# --- dashboard ------------------------------------------------------------------------------------------


def _render_dashboard(ctx: RatingContext, status: int = 200) -> Any:
    return _render("branch/rating/dashboard.html", ctx, status, board=recommend_pages.dashboard(db(), ctx))


@branch_rating_branch_bp.get("/<int:rating_id>")
@login_required
def dashboard(rating_id: int) -> Any:
    return _render_dashboard(_context(rating_id))


@branch_rating_branch_bp.post("/<int:rating_id>/step")
@login_required
def step(rating_id: int) -> Any:
    ctx = _context(rating_id, Action.BRANCH_RATE)
    try:
        recommend.take_step(db(), ctx, request.form.get("transition", ""), version=request.form.get("version"))
        label = workflow.step_label(ctx.rating.step)
        db().commit()
    except ServiceError as error:
        ctx = _fresh(rating_id, Action.BRANCH_RATE)
        flash(error.message, "error")
        return _render_dashboard(ctx, error.status)
    flash(_("已提交荐星，进入“%(step)s”环节。", step=label), "success")
    return redirect(url_for(".dashboard", rating_id=rating_id))


# --- 荐星 -------------------------------------------------------------------------------------------------


def _render_recommend(
    ctx: RatingContext,
    values: Mapping[str, str],
    *,
    errors: Mapping[str, str] | None = None,
    conflict: Mapping[str, str] | None = None,
    rows: recommend.Stored | None = None,
    status: int = 200,
) -> Any:
    page = recommend_pages.recommend_page(db(), ctx, rows)
    return _render(
        "branch/rating/recommend.html",
        ctx,
        status,
        page=page,
        values=values,
        errors=errors or {},
        conflict=conflict,
        reason_text=recommend.reason_text,
    )


# Endpoint `recommend` as agreed; the function has another name so as not to hide the service module.
@branch_rating_branch_bp.route("/<int:rating_id>/recommend", methods=["GET", "POST"], endpoint="recommend")
@login_required
def recommend_view(rating_id: int) -> Any:
    if request.method == "GET":
        ctx = _context(rating_id)
        rows = recommend.stored(db(), ctx.rating.id)
        return _render_recommend(ctx, recommend.form_values(ctx.rating, rows), rows=rows)
    ctx = _context(rating_id, Action.BRANCH_RATE)
    form = request.form
    submit = form.get("action") == "submit"
    try:
        if submit:
            recommend.submit(db(), ctx, version=form.get("version"), raw=form)
        else:
            recommend.save(db(), ctx, form, version=form.get("version"))
        db().commit()
    except ServiceError as error:
        ctx = _fresh(rating_id, Action.BRANCH_RATE)
        values = dict(form.items())
        conflict = None
        if isinstance(error, ConflictError) and recommend.edit_refusal(ctx.facts) is None:
            # Keep what the person typed; show what is stored now; the next save is deliberate.
            conflict = recommend.form_values(ctx.rating, recommend.stored(db(), ctx.rating.id))
            values["version"] = str(ctx.rating.version)
        message = error.message
        if submit:
            message = _("%(reason)s（未提交，也未保存；您填写的内容仍在下面）", reason=error.message)
        flash(message, "error")
        errors = getattr(error, "errors", None) or {}
        return _render_recommend(ctx, values, errors=errors, conflict=conflict, status=error.status)
    if submit:
        flash(_("已提交荐星，进入“议星”环节。"), "success")
        return redirect(url_for(".dashboard", rating_id=rating_id))
    flash(_("已保存。"), "success")
    return redirect(url_for(".recommend", rating_id=rating_id))


@branch_rating_branch_bp.post("/<int:rating_id>/recommend/preview")
@login_required
def preview(rating_id: int) -> Any:
    """The rule engine's result for what is typed now (JSON for recommend.js; nothing is saved)."""
    ctx = _context(rating_id, Action.BRANCH_RATE)
    return jsonify(recommend.preview(ctx.rules, ctx.rating, request.form))


# --- evidence files ------------------------------------------------------------------------------------------


def _evidence_root() -> Path:
    configured = current_app.config.get("EVIDENCE_DIR")
    if configured:
        return Path(configured)
    return Path(current_app.config["FIVESTAR_SETTINGS"].resolved_data_dir) / "evidence"


def _limits() -> evidence.Limits:
    config = current_app.config
    return evidence.Limits(
        file_bytes=int(config.get("EVIDENCE_MAX_FILE_BYTES", evidence.DEFAULT_FILE_BYTES)),
        rating_bytes=int(config.get("EVIDENCE_MAX_RATING_BYTES", evidence.DEFAULT_RATING_BYTES)),
    )


def _render_evidence(ctx: RatingContext, status: int = 200, **values: Any) -> Any:
    page = recommend_pages.recommend_page(db(), ctx)
    values.setdefault("errors", {})
    values.setdefault("selected", None)
    return _render("branch/rating/evidence.html", ctx, status, page=page, limits=_limits(), **values)


@branch_rating_branch_bp.get("/<int:rating_id>/evidence")
@login_required
def evidence_index(rating_id: int) -> Any:
    return _render_evidence(_context(rating_id))


@branch_rating_branch_bp.post("/<int:rating_id>/evidence")
@login_required
def upload(rating_id: int) -> Any:
    ctx = _context(rating_id, Action.BRANCH_RATE)
    indicator_key = request.form.get("indicator", "")
    criterion_key = request.form.get("criterion", "")
    limits = _limits()
    uploads = [
        evidence.Upload(storage.filename or "", storage.stream.read(limits.file_bytes + 1))
        for storage in request.files.getlist("files")
    ]
    paths: list[Path] = []
    try:
        rows, paths = evidence.store(
            db(), ctx, indicator_key, criterion_key, uploads, root=_evidence_root(), limits=limits
        )
        db().commit()
    except ServiceError as error:
        evidence.discard(paths)
        ctx = _fresh(rating_id, Action.BRANCH_RATE)
        flash(error.message, "error")
        selected = recommend_pages.anchor(indicator_key, criterion_key)
        return _render_evidence(ctx, error.status, errors={selected: error.message}, selected=selected)
    except BaseException:
        evidence.discard(paths)
        raise
    flash(_("已上传 %(n)d 个文件。", n=len(rows)), "success")
    where = recommend_pages.anchor(indicator_key, criterion_key)
    return redirect(url_for(".evidence_index", rating_id=rating_id) + "#" + where)


def _evidence(evidence_id: int, action: Action) -> tuple[Any, RatingContext]:
    try:
        item = evidence.load(db(), evidence_id)
    except NotFoundError:
        abort(404)
    return item, _context(item.rating_id, action)


@branch_rating_branch_bp.get("/evidence/<int:evidence_id>")
@login_required
def evidence_file(evidence_id: int) -> Any:
    """The file as a download only: the stored (sniffed) type, `nosniff`, and a CSP that forbids
    everything and sandboxes the document even if a browser were to show it."""
    item, _ctx = _evidence(evidence_id, Action.ROUND_VIEW)
    try:
        data = evidence.read(_evidence_root(), item)
    except NotFoundError as error:
        raise user_error(404, error.message) from None
    return uploaded_file(data, evidence.download_name(item), item.content_type)


@branch_rating_branch_bp.post("/evidence/<int:evidence_id>/delete")
@login_required
def delete_evidence(evidence_id: int) -> Any:
    item, ctx = _evidence(evidence_id, Action.BRANCH_RATE)
    rating_id = ctx.rating.id
    where = recommend_pages.anchor(item.indicator_key, item.criterion_key)
    name = item.original_name
    try:
        path = evidence.delete(db(), ctx, item, root=_evidence_root())
        db().commit()
    except ServiceError as error:
        ctx = _fresh(rating_id, Action.BRANCH_RATE)
        flash(error.message, "error")
        return _render_evidence(ctx, error.status)
    evidence.discard([path])
    flash(_("已删除“%(name)s”。", name=name), "success")
    return redirect(url_for(".evidence_index", rating_id=rating_id) + "#" + where)
