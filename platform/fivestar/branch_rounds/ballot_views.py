"""议星 pages: the branch's meeting page (`/t/<slug>/branch-rating/deliberation/<rating_id>`) and the
voter's page (`/t/<slug>/vote/`, no login).

The meeting page is the secretary's: setup, printing the slips (the PDF is the answer to the issuing
POST — the codes exist only then), voting state, closing, paper tallies, results and the branch's
opinion. Each view loads the rating within the tenant (another tenant's id: 404), requires
`BRANCH_RATE` on it (another branch's secretary: 404; a reader such as an inspector may open the page
but not change it: 403), calls one service, commits once and redirects. A refusal comes back on the
page with the input kept: 400 for a wrong field, 409 for a step the workflow refuses or a version
someone else saved first.

The voter's page never carries a code in its URL (the slip's QR code puts it in the fragment, which
static/js/vote.js moves into the form), answers `Cache-Control: no-store` and `Referrer-Policy:
no-referrer`, is CSRF-protected (an anonymous visitor's session cookie carries the token) and
rate-limited per address; messages never repeat the code, and nothing logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from fivestar.accounts.policy import Action, authorize
from fivestar.audit import Actor, acting_as
from fivestar.branch_rounds import (
    ballot_box,
    ballot_casting,
    ballot_closing,
    ballot_codes,
    ballot_meeting,
    ballot_results,
    ballot_tallies,
    core,
    workflow,
)
from fivestar.branch_rounds import opinion as opinions
from fivestar.branch_rounds.ballot_slips import SlipSheet, slips_pdf
from fivestar.branch_rounds.models import BranchRating, MeetingState, RatingStep
from fivestar.errors import NotFoundError, ServiceError
from fivestar.extensions import limiter
from fivestar.i18n import _
from fivestar.rules import level_label
from fivestar.web.downloads import download
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

log = logging.getLogger(__name__)

deliberation_bp = Blueprint("branch_rating_deliberation", __name__, url_prefix="/branch-rating/deliberation")
vote_bp = Blueprint("branch_rating_vote", __name__, url_prefix="/vote")

# Failed attempts (unknown or used codes) per address: a meeting room shares one address, so the
# voters' own ballots do not count, only guesses — and 10-character codes make guessing hopeless.
DEFAULT_FAILED_LIMIT = "20 per 10 minutes"
# Every POST per address, generous enough for a meeting of a few hundred behind one NAT.
DEFAULT_TOTAL_LIMIT = "600 per 10 minutes"


# --- loading ---------------------------------------------------------------------------------------


def _rating(rating_id: int, *, write: bool) -> BranchRating:
    """The rating, if this person may work on it (404 otherwise; 403 for a reader who tries to write)."""
    try:
        rating = core.load_rating(db(), rating_id)
    except NotFoundError:
        abort(404)
    if authorize(current_user, Action.BRANCH_RATE, rating):
        return rating
    if authorize(current_user, Action.ROUND_VIEW, rating):
        if write:
            abort(403)
        return rating
    abort(404)


def _link(endpoint: str, **values: Any) -> str | None:
    """A link to another part's page, if that part is installed (parts land independently)."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def _secret_key() -> str:
    """The instance's secret key: the ballot box is sealed with a key derived from it."""
    return str(current_app.config["SECRET_KEY"])


def _version(name: str = "version") -> str | None:
    return request.form.get(name)


def _page(
    ctx: ballot_meeting.MeetingContext,
    status: int = 200,
    *,
    setup_form: Mapping[str, str] | None = None,
    tally_form: Mapping[str, str] | None = None,
    opinion_form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> Any:
    """The meeting page (everything on one page: it is what the secretary has open at the meeting)."""
    session = db()
    meeting = ctx.meeting
    can_edit = authorize(current_user, Action.BRANCH_RATE, ctx.rating)
    if setup_form is None:
        setup_form = {
            "meeting_date": meeting.meeting_date.isoformat() if meeting else ctx.today.isoformat(),
            "place": meeting.place if meeting else "",
            "members_count": str(meeting.members_count) if meeting else "",
            "public_count": str(meeting.public_count) if meeting else "",
            "deputies_count": str(meeting.deputies_count) if meeting else "",
        }
    tallies = ballot_tallies.paper_tallies(session, meeting.id) if meeting else {}
    if tally_form is None:
        tally_form = {ballot_tallies.tally_field(g, key, value): str(n) for (g, key, value), n in tallies.items()}
    rating = ctx.rating
    if opinion_form is None:
        opinion_form = {
            "opinion_level": "" if rating.opinion_level is None else str(rating.opinion_level),
            "opinion_statement": rating.opinion_statement or "",
        }
    cast = ballot_codes.ballots_cast(session, meeting) if meeting else 0
    public_count = setup_form.get("public_count", "")
    shortfall = ballot_meeting.public_shortfall(ctx, int(public_count)) if public_count.isdigit() else None
    attendees = {
        group.value: int(text) for group in ballot_meeting.GROUPS
        if (text := str(setup_form.get(ballot_meeting.COUNT_FIELDS[group], ""))).isdigit()
    }
    results = ballot_results.results(session, ctx)
    facts = core.facts_for(
        session, ctx.branch_round, rating, ctx.rules, has_results=results is not None and results.available
    )
    page = {
        "ctx": ctx,
        "meeting": meeting,
        "state": ctx.state,
        "states": MeetingState,
        "can_edit": can_edit,
        "setup_form": setup_form,
        "tally_form": tally_form,
        "opinion_form": opinion_form,
        "errors": errors or {},
        "ballots_cast": cast,
        "shortfall": shortfall,
        "ballot_shortfalls": ballot_meeting.ballot_shortfalls(ctx, attendees),
        "min_ballots": ctx.ballot.min_ballots,
        "public_minimum": ballot_meeting.public_minimum(ctx),
        "public_percent": _percent(ctx),
        "results": results,
        "refusals": {
            name: ctx.refusal(name, ballots_cast=cast)
            for name in ("setup", "issue_slips", "reissue", "close_voting", "tally", "opinion")
        },
        "submit_refusal": workflow.refusal("submit_opinion", facts),
        "groups": ballot_meeting.GROUPS,
        "group_label": ballot_meeting.group_label,
        "state_label": ballot_meeting.state_label,
        "tally_field": ballot_tallies.tally_field,
        "level_name": level_label,
        "step_label": workflow.step_label(rating.step),
        "submitted": rating.step is not RatingStep.DELIBERATE and rating.opinion_at is not None,
        "links": {
            "dashboard": _link("tenant.branch_rating_branch.dashboard", rating_id=rating.id),
            "recommend": _link("tenant.branch_rating_branch.recommend", rating_id=rating.id),
        },
        "vote_url": url_for("tenant.branch_rating_vote.cast", _external=True),
    }
    return render_template("branch/ballot/meeting.html", **page), status


def _percent(ctx: ballot_meeting.MeetingContext) -> str:
    meeting_rules = ctx.rules.branch.meeting
    if meeting_rules is None:
        return ""
    return format((meeting_rules.public_representatives_min_share * 100).normalize(), "f")


def _fresh(rating_id: int) -> ballot_meeting.MeetingContext:
    """After a refused change (rolled back): everything loaded again, as stored."""
    db().rollback()
    return ballot_meeting.context_for(db(), _rating(rating_id, write=False))


def _refused(rating_id: int, error: ServiceError, **forms: Any) -> Any:
    ctx = _fresh(rating_id)
    errors = getattr(error, "errors", None) or {}
    if not errors:
        flash(error.message, "error")
    return _page(ctx, error.status, errors=errors, **forms)


def _back(rating_id: int, anchor: str = "") -> Any:
    return redirect(url_for(".meeting", rating_id=rating_id) + (f"#{anchor}" if anchor else ""))


# --- the meeting page ------------------------------------------------------------------------------


@deliberation_bp.get("/<int:rating_id>")
@login_required
def meeting(rating_id: int) -> Any:
    rating = _rating(rating_id, write=False)
    return _page(ballot_meeting.context_for(db(), rating))


@deliberation_bp.post("/<int:rating_id>/setup")
@login_required
def setup(rating_id: int) -> Any:
    ctx = ballot_meeting.context_for(db(), _rating(rating_id, write=True))
    try:
        ballot_meeting.save_meeting(db(), ctx, request.form, _version())
        db().commit()
    except ServiceError as error:
        return _refused(rating_id, error, setup_form=request.form)
    flash(_("已保存议星会议安排。"), "success")
    # Its warnings (saved.warnings, audited as the reason) stand on the page itself while the numbers
    # stay short: flashing them too would say each twice.
    return _back(rating_id, "setup")


def _slips_response(ctx: ballot_meeting.MeetingContext, issued: ballot_codes.IssuedSlips) -> Response:
    """The slips PDF, made before the commit: if it cannot be made, nothing was issued."""
    meeting = issued.meeting
    sheet = SlipSheet(
        tenant_name=current_tenant().name,
        branch_name=ctx.rating.branch.name,
        year=ctx.branch_round.year,
        meeting_date=meeting.meeting_date,
        place=meeting.place,
        vote_url=url_for("tenant.branch_rating_vote.cast", _external=True),
    )
    data = slips_pdf(sheet, issued.slips)
    db().commit()
    name = _("%(branch)s议星测评票-%(day)s", branch=ctx.rating.branch.name, day=meeting.meeting_date.isoformat())
    return download(data, f"{name}.pdf")


@deliberation_bp.post("/<int:rating_id>/slips")
@login_required
def slips(rating_id: int) -> Any:
    ctx = ballot_meeting.context_for(db(), _rating(rating_id, write=True))
    try:
        issued = ballot_codes.issue_slips(db(), ctx, _version(), secret_key=_secret_key())
    except ServiceError as error:
        return _refused(rating_id, error)
    return _slips_response(ctx, issued)


@deliberation_bp.post("/<int:rating_id>/reissue")
@login_required
def reissue(rating_id: int) -> Any:
    ctx = ballot_meeting.context_for(db(), _rating(rating_id, write=True))
    try:
        issued = ballot_codes.reissue_slips(db(), ctx, _version(), secret_key=_secret_key())
    except ServiceError as error:
        return _refused(rating_id, error)
    return _slips_response(ctx, issued)


@deliberation_bp.post("/<int:rating_id>/close")
@login_required
def close(rating_id: int) -> Any:
    ctx = ballot_meeting.context_for(db(), _rating(rating_id, write=True))
    try:
        ballots = ballot_closing.close_voting(db(), ctx, _version(), secret_key=_secret_key())
        db().commit()
    except ServiceError as error:
        return _refused(rating_id, error)
    ballot_box.checkpoint(db().get_bind())
    flash(_("测评已结束，共收到电子测评票 %(n)d 张。", n=sum(ballots.values())), "success")
    return _back(rating_id, "results")


@deliberation_bp.post("/<int:rating_id>/tallies")
@login_required
def tallies(rating_id: int) -> Any:
    ctx = ballot_meeting.context_for(db(), _rating(rating_id, write=True))
    try:
        ballot_tallies.save_tallies(db(), ctx, request.form, _version())
        db().commit()
    except ServiceError as error:
        return _refused(rating_id, error, tally_form=request.form)
    flash(_("已保存纸质测评票统计。"), "success")
    return _back(rating_id, "tallies")


@deliberation_bp.post("/<int:rating_id>/opinion")
@login_required
def opinion(rating_id: int) -> Any:
    ctx = ballot_meeting.context_for(db(), _rating(rating_id, write=True))
    submit = request.form.get("action") == "submit"
    try:
        opinions.save_opinion(db(), ctx, request.form, _version("rating_version"))
        step = opinions.submit_opinion(db(), ctx, ctx.rating.version) if submit else None
        db().commit()
    except ServiceError as error:
        return _refused(rating_id, error, opinion_form=request.form)
    if step is None:
        flash(_("已保存支部意见。"), "success")
        return _back(rating_id, "opinion")
    flash(_("已上报支部意见，进入“%(step)s”环节。", step=workflow.step_label(step)), "success")
    return _back(rating_id, "opinion")


# --- the voter's page (no login) -------------------------------------------------------------------


def _failed_limit() -> str:
    return str(current_app.config.get("FIVESTAR_VOTE_FAILED_LIMIT", DEFAULT_FAILED_LIMIT))


def _total_limit() -> str:
    return str(current_app.config.get("FIVESTAR_VOTE_LIMIT", DEFAULT_TOTAL_LIMIT))


def _failed(response: Any) -> bool:
    """Only refused codes count against the guessing limit (a cast ballot redirects)."""
    return bool(response.status_code in (400, 409))


@vote_bp.after_request
def _private(response: Response) -> Response:
    """The page may hold a code (in the form): never cached, never sent on as a referrer, not indexed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _code_form(status: int = 200, error: str | None = None) -> Any:
    return render_template("branch/ballot/vote_code.html", error=error), status


def _ballot_form(code: str, voting: ballot_casting.Voting, status: int = 200, errors: Mapping[str, str] | None = None,
                 chosen: Mapping[str, str] | None = None) -> Any:
    return render_template(
        "branch/ballot/vote_ballot.html",
        code=code,
        voting=voting,
        choices=voting.ballot.choices(),
        group_label=ballot_meeting.group_label(voting.group),
        field_for=ballot_casting.choice_field,
        errors=errors or {},
        chosen=chosen or {},
    ), status


@vote_bp.route("/", methods=["GET", "POST"])
@limiter.limit(_total_limit, methods=["POST"])
@limiter.limit(_failed_limit, methods=["POST"], deduct_when=_failed)
def cast() -> Any:
    """GET: the code form. POST `step=check`: the ballot of a valid code; POST `step=cast`: vote."""
    if request.method == "GET":
        return _code_form()
    tenant_id = current_tenant().id
    code_text = request.form.get("code", "")
    session = db()
    if request.form.get("step") != "cast":
        try:
            voting = ballot_casting.check_code(session, tenant_id, code_text, secret_key=_secret_key())
        except ServiceError as error:
            session.rollback()
            return _code_form(error.status, error.message)
        return _ballot_form(ballot_codes.normalise_code(code_text) or "", voting)
    # End the read transaction the request began (tenant lookup): the casting UPDATE must be the
    # first statement of its own transaction (see ballot_casting.cast_ballot).
    session.commit()
    try:
        with acting_as(Actor("public", None, _("议星测评"))):
            ballot_casting.cast_ballot(session, tenant_id, code_text, request.form, secret_key=_secret_key())
        session.commit()
    except ballot_meeting.FormError as error:
        session.rollback()
        try:
            voting = ballot_casting.check_code(session, tenant_id, code_text, secret_key=_secret_key())
        except ServiceError as again:
            session.rollback()
            return _code_form(again.status, again.message)
        code = ballot_codes.normalise_code(code_text) or ""
        return _ballot_form(code, voting, error.status, error.errors, request.form)
    except ServiceError as error:
        session.rollback()
        return _code_form(error.status, error.message)
    except SQLAlchemyError as error:
        # Logged without the statement's parameters (they hold the code's hash); the code is unused
        # again after the rollback, so the voter can simply try once more.
        session.rollback()
        log.warning("casting a ballot failed: %s", type(error).__name__)
        return render_template(
            "branch/ballot/vote_code.html", error=_("系统繁忙，您的测评票未能提交，请稍后用同一测评码重试。")
        ), 503
    return redirect(url_for(".done"))


@vote_bp.get("/done")
def done() -> Any:
    return render_template("branch/ballot/vote_done.html")


__all__ = ["deliberation_bp", "vote_bp"]
