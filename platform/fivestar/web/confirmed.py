"""The small confirmed actions of the settings pages — switch a setting on or off, delete it — in one
place for every page that has them (group robots, export targets).

Each posts a `ConfirmForm`: the CSRF token and the version the page was built from, so a change made
meanwhile in another window is refused (the service compares versions) instead of overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from flask import abort, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField

from fivestar.errors import ServiceError
from fivestar.web.refusals import refuse
from fivestar.web.session import db


class ConfirmForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF has no type hints
    """Delete, switch on/off, send again: CSRF and the version the page was built from."""

    version = HiddenField()


class Versioned(Protocol):
    version: int


V = TypeVar("V", bound=Versioned)


def form_version(form: Any) -> int:
    """The version the page was built from; a missing or garbled one counts as stale (0)."""
    try:
        return int(form.version.data)
    except (TypeError, ValueError):
        return 0


def switch_active(switch: Callable[[int], bool], *, switched_on: str, switched_off: str) -> Any:
    """A list page's on/off button: `switch(version)` flips the setting and says whether it is now
    on. Back to the list (`.index`) with what happened, or with the service's refusal."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        active = switch(form_version(form))
        db().commit()
    except ServiceError as error:
        db().rollback()
        flash(error.message, "error")
        return redirect(url_for(".index"), code=303)
    flash(switched_on if active else switched_off, "success")
    return redirect(url_for(".index"), code=303)


def confirm_delete(
    load: Callable[[], V],
    remove: Callable[[V, int], None],
    *,
    done: Callable[[V], str],
    page: Callable[[V, ConfirmForm], str],
) -> Any:
    """A delete page: GET asks (`page`), POST `remove(item, version)`s and goes back to the list with
    `done(item)`; a refusal shows the page again with the current version and a 4xx."""
    item = load()
    form = ConfirmForm()
    if request.method == "GET":
        form.version.data = str(item.version)
    status = 200
    if form.validate_on_submit():
        message = done(item)
        try:
            remove(item, form_version(form))
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            item = load()
            form.version.data = str(item.version)
        else:
            flash(message, "success")
            return redirect(url_for(".index"), code=303)
    elif request.method == "POST":
        status = 400
    return page(item, form), status


__all__ = ["ConfirmForm", "confirm_delete", "form_version", "switch_active"]
