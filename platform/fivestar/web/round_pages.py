"""What the committee's pages of every round kind share, written once: loading a round's row or a 404,
who may see the rounds at all, reading a typed day, the deadline-extension form and its view, and
the one shape of a form post (validate → call the service → commit → flash and redirect, or show the
refusal on the page with what was typed).

The member round (`member_rounds/committee_views.py`) and the branch rating
(`branch_rounds/committee_views.py`) build their pages from these; their services move rounds through
the rounds kernel (`fivestar.kernel.rounds`), which this web-side module never bypasses.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from fivestar.accounts.policy import Action, authorize, require, scoped_actions
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.web.refusals import refuse, require_on
from fivestar.web.session import db

T = TypeVar("T")

__all__ = [
    "DeadlineForm",
    "VersionForm",
    "add_extend_route",
    "can_view_rounds",
    "deadline_form",
    "or_404",
    "page",
    "parse_day",
    "require_view_rounds",
    "submit",
    "versioned",
    "with_row",
]


class VersionForm(FlaskForm):
    """A button that changes a versioned row (close, finalise): only the version it was shown with."""

    version = HiddenField()


class DeadlineForm(FlaskForm):
    """Moving one of a round's deadlines later. A round kind's form adds the select of its deadlines
    under the name in `deadline_field` (the member round says `step`, the branch rating `which`)."""

    deadline_field = "which"
    new_day = StringField(_l("新的截止日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    reason = TextAreaField(_l("延期原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()

    @property
    def deadline(self) -> Any:
        return getattr(self, self.deadline_field)


def can_view_rounds() -> bool:
    """Tenant-wide readers, and anyone whose organisation-scoped role may view round progress."""
    return authorize(current_user, Action.ROUND_VIEW) or Action.ROUND_VIEW in scoped_actions(current_user)


def require_view_rounds() -> None:
    if not can_view_rounds():
        abort(403)


def or_404(load: Callable[[Session, int], T], ident: int) -> T:
    """`load(session, ident)` (a round's loader, tenant-scoped), or 404 when there is no such row."""
    try:
        return load(db(), ident)
    except NotFoundError:
        abort(404)


def with_row(
    load: Callable[[Session, int], T], action: Action | None = None
) -> Callable[[Callable[[T], Any]], Callable[..., Any]]:
    """A view of one row: the id in the URL is loaded with `load` (404 when this tenant has no such
    row) and, with `action`, required on the row (403 when the person may see it, else 404); the
    view is called with the row."""

    def decorate(view: Callable[[T], Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**ids: int) -> Any:
            (ident,) = ids.values()
            row = or_404(load, ident)
            if action is not None:
                require_on(action, row)
            return view(row)

        return wrapper

    return decorate


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """A rendered page and its status (a refused post shows the page again with a 4xx)."""
    return render_template(template, **context), status


def parse_day(text: str | None, field: str, *, required: bool = True, message: object = None) -> dt.date | None:
    """A day typed as 2026-04-30; a refusal on `field` when it is not one (or missing and required)."""
    value = (text or "").strip()
    if not value and not required:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ServiceError(str(message) if message else _("请填写日期，如 2026-04-30"), field=field) from None


def versioned(form: Any, record: Any) -> Any:
    """The form with the record's current version, unless it already carries one (a refused post
    keeps the version the person opened, so their next save is checked against it)."""
    if not form.version.data:
        form.version.data = str(record.version)
    return form


def deadline_form(form: DeadlineForm, round_: Any, choices: list[tuple[str, str]]) -> DeadlineForm:
    """The extension form of a round's page, with the round's deadlines and its current version."""
    form.deadline.choices = choices
    versioned(form, round_)
    return form


def submit(
    form: FlaskForm,
    save: Callable[[], T],
    *,
    done: Callable[[T], tuple[str, str]],
    refused: Callable[[], None] | None = None,
    on_form: bool = True,
) -> Any:
    """Validate `form`, run `save` (one service call) and commit. Success: flash `done(result)`'s
    message and redirect to its address. A refusal: everything rolled back, the message on its field
    (`on_form`) or flashed, `refused()` run (e.g. to show the row's current version), and the status
    returned as an int for the caller to render its page with. An invalid form: 400."""
    if not form.validate_on_submit():
        return 400
    try:
        result = save()
        db().commit()
    except ServiceError as error:
        status = refuse(error, form if on_form else None)
        if refused is not None:
            refused()
        return status
    message, target = done(result)
    flash(message, "success")
    return redirect(target)


def add_extend_route(
    bp: Blueprint,
    rule: str,
    load: Callable[[Session, int], Any],
    form_class: type[DeadlineForm],
    choices: Callable[[], list[tuple[str, str]]],
    service: Callable[..., Any],
    *,
    render: Callable[..., Any],
    message: object = None,
) -> None:
    """Register a round kind's deadline extension (POST `rule`, endpoint `extend`, tenant administrators):
    `service(session, round, which, new_day, reason, version=…)` is the kind's `extend_deadline`;
    success goes back to its `detail` page, a refusal shows that page (`render`) with what was typed.
    `message` words a day that is not one."""
    param = re.search(r"<int:(\w+)>", rule)
    assert param is not None, rule

    @login_required
    @with_row(load)
    def extend(round_: Any) -> Any:
        require(current_user, Action.ROUND_MANAGE)
        ident = round_.id
        form = form_class()
        form.deadline.choices = choices()

        def save() -> Any:
            new_day = parse_day(form.new_day.data, "new_day", message=message)
            which = form.deadline.data or ""
            return service(db(), round_, which, new_day, form.reason.data, version=form.version.data or 0)

        def refused() -> None:
            form.version.data = str(or_404(load, ident).version)  # loaded again: the rollback expired it

        target = url_for(".detail", **{param.group(1): ident})
        outcome = submit(form, save, done=lambda _round: (_("已延长截止日期。"), target), refused=refused)
        return render(round_, outcome, extend_form=form) if isinstance(outcome, int) else outcome

    bp.add_url_rule(rule, endpoint="extend", view_func=extend, methods=["POST"])
