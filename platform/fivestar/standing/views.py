"""Standing on the web (`/t/<slug>/standing/…`): a branch's or member's level history, the committee's
adjustments (增星摘星) with their confirmation step, the mid-year events that prompt them, and the
committee's list of both.

Each view loads its subject in the current tenant (another district's id: 404), then requires
`STANDING_VIEW` to read (the committee, inspectors, administrators, the subject's own branch
secretary and committee members; anyone else who may see the branch: 403, else 404) and
`STANDING_ADJUST` to act (the working committee and administrators). An adjustment is checked on
the form, shown on a confirmation page (it cannot be undone), and recorded only from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, authorize, require
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import uploads
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import RuleSet
from fivestar.standing import files, labels, queries, services, worklist
from fivestar.standing.forms import AdjustForm, DismissForm, EventForm
from fivestar.standing.models import Cause, EventKind, EventState, StandingEvent
from fivestar.standing.subjects import Subject
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock
from fivestar.web.downloads import uploaded_file
from fivestar.web.ids import parse_id
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

standing_bp = Blueprint("standing", __name__, url_prefix="/standing")


# --- loading and permissions ---------------------------------------------------------------------------------


def _subject(branch_id: int | None, member_id: int | None, action: Action) -> tuple[Subject, Organisation | Member]:
    """The branch or member of the URL in this tenant (else 404), if the person may `action` it."""
    if branch_id is not None:
        subject = Subject.branch(branch_id)
    elif member_id is not None:
        subject = Subject.member(member_id)
    else:  # pragma: no cover - every rule carries one of the two
        abort(404)
    try:
        obj = services.load_subject_object(db(), subject)
    except NotFoundError:
        abort(404)
    require(current_user, action, obj)
    return subject, obj


def _rules() -> RuleSet | None:
    version = current_rules(db(), current_tenant())
    return version_rules(version) if version is not None else None


def _today() -> Any:
    return clock.today_in(current_tenant().timezone)


def _name(obj: Organisation | Member) -> str:
    if isinstance(obj, Organisation):
        return obj.name
    return _("%(name)s（%(branch)s）", name=obj.name, branch=obj.branch.name)


def _level_text(rules: RuleSet | None, subject: Subject) -> Any:
    kind: Literal["branch", "member"] = "branch" if subject.is_branch else "member"

    def text(level: int | None) -> str:
        if level is None:
            return _("不定级（不予评星）") if not subject.is_branch else _("未定级")
        return rules.level_label(level, kind) if rules is not None else _("%(n)d星", n=level)

    return text


def _veto_label(rules: RuleSet | None) -> Any:
    def text(key: str | None) -> str:
        if not key:
            return ""
        veto = rules.branch.veto(key) if rules is not None else None
        return veto.label if veto is not None else key

    return text


def _common(subject: Subject, rules: RuleSet | None) -> dict[str, Any]:
    return {
        "ids": ids_of(subject),
        "level_text": _level_text(rules, subject),
        "veto_label": _veto_label(rules),
        "labels": labels,
    }


def ids_of(subject: Subject) -> dict[str, int]:
    """The URL arguments of a subject's pages: `branch_id` or `member_id`."""
    return {"branch_id": subject.id} if subject.is_branch else {"member_id": subject.id}


def _by_subject(subject: Subject, action: Action) -> tuple[Subject, Organisation | Member]:
    return _subject(subject.id if subject.is_branch else None, None if subject.is_branch else subject.id, action)


# --- the history page -------------------------------------------------------------------------------------------


@standing_bp.get("/branches/<int:branch_id>/", endpoint="history")
@standing_bp.get("/members/<int:member_id>/", endpoint="history")
@login_required
def history(branch_id: int | None = None, member_id: int | None = None) -> Any:
    subject, obj = _subject(branch_id, member_id, Action.STANDING_VIEW)
    session = db()
    rules = _rules()
    entries = queries.history(session, subject)
    current = (
        queries.current_branch_levels(session, [subject.id])
        if subject.is_branch
        else queries.current_member_levels(session, [subject.id])
    ).get(subject.id)
    attached = files.files_of(session, [e.adjustment_id for e in entries if e.adjustment_id is not None])
    return render_template(
        "standing/history.html",
        subject=subject,
        name=_name(obj),
        entries=list(reversed(entries)),
        current=current,
        attached=attached,
        events=queries.events(session, subject=subject),
        can_adjust=authorize(current_user, Action.STANDING_ADJUST, obj),
        **_common(subject, rules),
    )


# --- adjusting: the form, the confirmation, the record -----------------------------------------------------------


def _adjust_form(form: AdjustForm, subject: Subject, rules: RuleSet | None) -> AdjustForm:
    low, high = services.level_range(rules, subject)
    text = _level_text(rules, subject)
    form.to_level.choices = [("", _("请选择"))] + [(str(n), text(n)) for n in range(high, low - 1, -1)]
    causes = [Cause.VETO, Cause.OTHER] if subject.is_branch else [Cause.SANCTION, Cause.HONOUR, Cause.OTHER]
    form.cause.choices = [(c.value, labels.cause_label(c)) for c in causes]
    vetoes = rules.branch.vetoes if rules is not None else ()
    form.veto_key.choices = [("", _("（无）"))] + [(v.key, v.label) for v in vetoes]
    if not form.version.data:
        form.version.data = str(services.history_version(db(), subject))
    return form


def _prefill_from_event(form: AdjustForm, subject: Subject) -> None:
    event_id = parse_id(request.args.get("event"))
    if event_id is None:  # no event, or not an id: an empty form, as before
        return
    try:
        event = services.load_event(db(), event_id)
    except NotFoundError:
        abort(404)
    if Subject.of_event(event) != subject or event.state is not EventState.OPEN:
        abort(404)
    form.event_id.data = str(event.id)
    form.cause.data = {EventKind.VETO: Cause.VETO, EventKind.SANCTION: Cause.SANCTION, EventKind.HONOUR: Cause.HONOUR}[
        event.kind
    ].value
    form.veto_key.data = event.veto_key or ""


def _render_adjust(subject: Subject, obj: Organisation | Member, form: AdjustForm, status: int = 200) -> Any:
    session = db()
    rules = _rules()
    current = services.current_level_row(session, subject)
    return (
        render_template(
            "standing/adjust.html",
            subject=subject,
            name=_name(obj),
            form=_adjust_form(form, subject, rules),
            current_level=current.level if current is not None else None,
            has_level=current is not None,
            **_common(subject, rules),
        ),
        status,
    )


def _input(form: AdjustForm) -> services.AdjustmentInput:
    return services.AdjustmentInput(
        to_level=form.to_level.data,
        cause=form.cause.data,
        reason=form.reason.data,
        meeting_name=form.meeting_name.data,
        meeting_date=form.meeting_date.data,
        veto_key=form.veto_key.data,
        event_id=parse_id(form.event_id.data),
    )


@standing_bp.get("/branches/<int:branch_id>/adjust", endpoint="adjust_form")
@standing_bp.get("/members/<int:member_id>/adjust", endpoint="adjust_form")
@login_required
def adjust_form(branch_id: int | None = None, member_id: int | None = None) -> Any:
    subject, obj = _subject(branch_id, member_id, Action.STANDING_ADJUST)
    form = AdjustForm(formdata=None)
    _prefill_from_event(form, subject)
    return _render_adjust(subject, obj, form)


@standing_bp.post("/branches/<int:branch_id>/adjust", endpoint="adjust")
@standing_bp.post("/members/<int:member_id>/adjust", endpoint="adjust")
@login_required
def adjust(branch_id: int | None = None, member_id: int | None = None) -> Any:
    """Check the adjustment and show the confirmation step; nothing is written here."""
    subject, obj = _subject(branch_id, member_id, Action.STANDING_ADJUST)
    form = AdjustForm()
    if not form.validate_on_submit():
        return _render_adjust(subject, obj, form, 400)
    rules = _rules()
    try:
        checked = services.check_adjustment(
            db(), subject, rules, _input(form), version=form.version.data, today=_today()
        )
    except ServiceError as error:
        return _render_adjust(subject, obj, form, refuse(error, form))
    return render_template(
        "standing/confirm.html", subject=subject, name=_name(obj), form=form, checked=checked, **_common(subject, rules)
    )


def _files_root() -> Path:
    return Path(current_app.config["FIVESTAR_SETTINGS"].resolved_data_dir) / "standing"


@standing_bp.post("/branches/<int:branch_id>/adjust/confirm", endpoint="confirm")
@standing_bp.post("/members/<int:member_id>/adjust/confirm", endpoint="confirm")
@login_required
def confirm(branch_id: int | None = None, member_id: int | None = None) -> Any:
    """Record the confirmed adjustment (with its evidence files), commit once, and show the history."""
    subject, obj = _subject(branch_id, member_id, Action.STANDING_ADJUST)
    form = AdjustForm()
    if not form.validate_on_submit():
        return _render_adjust(subject, obj, form, 400)
    paths: list[Path] = []
    try:
        checked = services.check_adjustment(
            db(), subject, _rules(), _input(form), version=form.version.data, today=_today()
        )
        sent = [
            uploads.Upload(storage.filename or "", storage.stream.read(files.FILE_BYTES + 1))
            for storage in request.files.getlist("files")
        ]
        adjustment = services.record_adjustment(db(), checked)
        _rows, paths = files.store(db(), adjustment, files.check(sent), root=_files_root())
        db().commit()
    except ServiceError as error:
        uploads.discard(paths)
        status = refuse(error, form)
        form.version.data = ""  # show the current version: saving again is deliberate
        return _render_adjust(subject, obj, form, status)
    flash(_("星级调整已记录。"), "success")
    target: str = url_for(".history", **ids_of(subject))  # type: ignore[arg-type]
    return redirect(target)


# --- mid-year events: record, look at, dismiss ---------------------------------------------------------------------


def _event_form(form: EventForm, subject: Subject, rules: RuleSet | None) -> EventForm:
    kinds = [EventKind.VETO] if subject.is_branch else [EventKind.SANCTION, EventKind.HONOUR]
    form.kind.choices = [(k.value, labels.event_kind_label(k)) for k in kinds]
    vetoes = rules.branch.vetoes if rules is not None else ()
    form.veto_key.choices = [("", _("请选择"))] + [(v.key, v.label) for v in vetoes]
    return form


def _render_event_form(subject: Subject, obj: Organisation | Member, form: EventForm, status: int = 200) -> Any:
    rules = _rules()
    return (
        render_template(
            "standing/event_new.html",
            subject=subject,
            name=_name(obj),
            form=_event_form(form, subject, rules),
            **_common(subject, rules),
        ),
        status,
    )


@standing_bp.get("/branches/<int:branch_id>/events/new", endpoint="event_form")
@standing_bp.get("/members/<int:member_id>/events/new", endpoint="event_form")
@login_required
def event_form(branch_id: int | None = None, member_id: int | None = None) -> Any:
    subject, obj = _subject(branch_id, member_id, Action.STANDING_ADJUST)
    return _render_event_form(subject, obj, EventForm(formdata=None))


@standing_bp.post("/branches/<int:branch_id>/events/new", endpoint="record_event")
@standing_bp.post("/members/<int:member_id>/events/new", endpoint="record_event")
@login_required
def record_event(branch_id: int | None = None, member_id: int | None = None) -> Any:
    subject, obj = _subject(branch_id, member_id, Action.STANDING_ADJUST)
    form = EventForm()
    if not form.validate_on_submit():
        return _render_event_form(subject, obj, form, 400)
    try:
        event = services.record_event(
            db(),
            subject,
            _rules(),
            kind=form.kind.data,
            veto_key=form.veto_key.data,
            occurred_on=form.occurred_on.data,
            note=form.note.data,
            today=_today(),
        )
        db().commit()
    except ServiceError as error:
        return _render_event_form(subject, obj, form, refuse(error, form))
    flash(_("事项已记录，已提示工委研究是否调整星级；星级不会自动改变。"), "success")
    return redirect(url_for(".event", prompt_id=event.id))


def _event(prompt_id: int) -> tuple[StandingEvent, Subject, Organisation | Member]:
    try:
        event = services.load_event(db(), prompt_id)
    except NotFoundError:
        abort(404)
    subject = Subject.of_event(event)
    _subject_again, obj = _by_subject(subject, Action.STANDING_VIEW)
    return event, subject, obj


def _render_event(
    event: StandingEvent, subject: Subject, obj: Organisation | Member, form: DismissForm, status: int = 200
) -> Any:
    rules = _rules()
    if not form.version.data:
        form.version.data = str(event.version)
    return (
        render_template(
            "standing/event.html",
            event=event,
            subject=subject,
            name=_name(obj),
            form=form,
            can_adjust=authorize(current_user, Action.STANDING_ADJUST, obj),
            **_common(subject, rules),
        ),
        status,
    )


@standing_bp.get("/prompts/<int:prompt_id>", endpoint="event")
@login_required
def event(prompt_id: int) -> Any:
    found, subject, obj = _event(prompt_id)
    return _render_event(found, subject, obj, DismissForm(formdata=None))


@standing_bp.post("/prompts/<int:prompt_id>/dismiss", endpoint="dismiss")
@login_required
def dismiss(prompt_id: int) -> Any:
    found, subject, obj = _event(prompt_id)
    require(current_user, Action.STANDING_ADJUST, obj)
    form = DismissForm()
    if not form.validate_on_submit():
        return _render_event(found, subject, obj, form, 400)
    try:
        services.dismiss_event(db(), found, form.reason.data, version=form.version.data)
        db().commit()
    except ServiceError as error:
        status = refuse(error, form)
        found, subject, obj = _event(prompt_id)
        form.version.data = str(found.version)
        return _render_event(found, subject, obj, form, status)
    flash(_("已记录不予调整。"), "success")
    return redirect(url_for(".event", prompt_id=prompt_id))


# --- the committee's list, and files -------------------------------------------------------------------------------


@standing_bp.get("/", endpoint="index")
@login_required
def index() -> Any:
    """The committee's list: the open prompts, and the latest adjustments of branches and members."""
    require(current_user, Action.STANDING_ADJUST)
    session = db()
    rules = _rules()
    return render_template(
        "standing/index.html",
        prompts=worklist.pending(session, current_user, clock.now()),
        adjustments=queries.adjustments(session, limit=50),
        branch_level=_level_text(rules, Subject.branch(0)),
        member_level=_level_text(rules, Subject.member(0)),
        labels=labels,
    )


@standing_bp.get("/files/<int:adjustment_file_id>", endpoint="file")
@login_required
def file(adjustment_file_id: int) -> Any:
    """An adjustment's evidence file, as a download only (nosniff, a sandboxing CSP)."""
    try:
        row, adjustment = files.load(db(), adjustment_file_id)
    except NotFoundError:
        abort(404)
    subject = Subject.of_event(adjustment)
    _by_subject(subject, Action.STANDING_VIEW)
    try:
        data = files.read(_files_root(), row)
    except NotFoundError:
        abort(404)
    return uploaded_file(data, files.download_name(row), row.content_type)
