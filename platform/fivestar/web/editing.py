"""How an edit page answers a refused save, the same way on every page (organisations, accounts, members,
export targets): the one web-side half of optimistic locking (`fivestar.kernel.versioning`).

An edit form carries the version the page was built from in a hidden `version` field; the view passes what
the form sent to its service unchanged. When the service refuses, `refuse_edit` undoes the request, puts the
message on the form, and reloads the record for the page. A stale save (`StaleEditError`, someone saved
in between) answers 409 and shows the form again with what the person typed — never the stored values
over it — and with the record's current version, so saving again after checking is a deliberate choice.
`tests/web/test_stale_edits.py` walks every edit route of the app and proves it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from flask_wtf import FlaskForm

from fivestar.errors import ServiceError
from fivestar.kernel.versioning import StaleEditError
from fivestar.web.refusals import refuse


class Versioned(Protocol):
    version: int


V = TypeVar("V", bound=Versioned)


def opened_version(form: Any, record: Versioned) -> None:
    """A freshly opened edit page: the form carries the record's current version."""
    form.version.data = str(record.version)


def refuse_edit(error: ServiceError, form: FlaskForm, reload: Callable[[], V]) -> tuple[int, V]:
    """A refused save of an edit form: the status to answer and the record reloaded for the page.

    Any refusal keeps what was typed (the form is not processed again). Only a stale save moves the
    form on to the current version: after another refusal (a taken code, an empty name) the page still
    stands on the version it was opened with, and a change made meanwhile must still be noticed.
    """
    status = refuse(error, form)
    record = reload()
    if isinstance(error, StaleEditError):
        opened_version(form, record)
    return status, record


__all__ = ["Versioned", "opened_version", "refuse_edit"]
