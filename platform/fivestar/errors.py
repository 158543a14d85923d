"""Errors that services raise for people to read.

A service refuses bad input or a forbidden transition with a `ServiceError` carrying a message in
the user's language (and, for forms, the field it concerns). Views turn it into a 4xx page or a form
error; nothing has been written, because services only flush and the view does not commit.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with a message for the user. `status` is the HTTP status a view should answer."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConflictError(ServiceError):
    """Someone else changed the same record first; nothing of this attempt was saved."""

    status = 409


class NotFoundError(ServiceError):
    status = 404


class AccessDeniedError(Exception):
    """The permission policy refused (`fivestar.accounts.policy.require`). Not a `ServiceError`: a view's
    `except ServiceError` around a form never swallows it; the web layer answers it with its error page."""

    status = 403


class ForbiddenError(AccessDeniedError):
    """The principal may see the object (or there is none) but not do this: 403."""

    status = 403


class NotVisibleError(AccessDeniedError):
    """The object is not even visible to the principal: 404, as if it did not exist (cross-tenant too)."""

    status = 404
