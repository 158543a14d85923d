"""How a page shows a service's refusal, in one place for every form page."""

from __future__ import annotations

from typing import Any

from flask import abort, flash
from flask_login import current_user
from flask_wtf import FlaskForm

from fivestar.accounts.policy import Action, authorize
from fivestar.errors import ServiceError
from fivestar.web.session import db


def refuse(error: ServiceError, form: FlaskForm | None = None) -> int:
    """Show the refusal on its field (or as a message), undo everything of this request, and return
    the status the page answers with (a 4xx: the form is shown again with what was typed)."""
    db().rollback()
    field = getattr(form, error.field, None) if (form is not None and error.field) else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, error.message]
    else:
        flash(error.message, "error")
    return error.status


def require_on(action: Action, obj: Any) -> None:
    """Allowed, or 403 when the person may at least see the object (a round's), else 404 (not theirs)."""
    if authorize(current_user, action, obj):
        return
    abort(403 if authorize(current_user, Action.ROUND_VIEW, obj) else 404)
