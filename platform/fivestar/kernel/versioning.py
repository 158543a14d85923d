"""Optimistic locking, written once: two people saving from the same page never overwrite each other.

A versioned record has an integer `version` column that SQLAlchemy bumps on every UPDATE
(`__mapper_args__ = {"version_id_col": version}`). An edit form carries the version the person opened as a hidden
field. Saving checks it twice:

1. `expect_version(record, submitted)` before anything is changed: the version the person opened must
   still be the current one. A form that carries no version, or a garbled one, is stale too — every
   edit form sends it, so a missing one means a page from before the record was versioned or a
   hand-made request, and neither may overwrite blindly.
2. `saving(session)` around the change: the flush runs in a savepoint, so a concurrent save that lands
   between the check and the flush (SQLAlchemy's `StaleDataError`: the row's version moved) becomes the
   same `StaleEditError`, and the session stays usable for the error page.

`StaleEditError` is a `ConflictError` (409). The web layer answers it by showing the form again with what
the person typed and the message, never by reloading the stored values over their input
(`fivestar.web.editing.refuse_edit`); the form then carries the current version, so saving again after
checking is a deliberate overwrite.

A service that edits a versioned record takes `version` as the raw value the form sent and passes it
here unchanged (a view never turns a missing version into "no check"). Only callers that answer no
form — the importer, the CLI, a reaction to another feature's event — leave the argument at its
default, `UNCHECKED`: they have no page that could be out of date.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Final, Literal

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fivestar.errors import ConflictError
from fivestar.i18n import _

__all__ = ["UNCHECKED", "StaleEditError", "Submitted", "expect_version", "parse_version", "saving"]


class _NoForm(Enum):
    UNCHECKED = "unchecked"


UNCHECKED: Final = _NoForm.UNCHECKED
"""The default `version` of an editing service: the caller answers no form, so there is nothing to check."""

# What an editing service's `version` accepts: what a form sent (anything, even nothing), or UNCHECKED.
Submitted = int | str | None | Literal[_NoForm.UNCHECKED]


class StaleEditError(ConflictError):
    """The record changed since the form was opened; nothing of this save was written."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。"))


def parse_version(submitted: object) -> int | None:
    """The version a form sent, or None when it sent none or garbage."""
    if submitted is None or isinstance(submitted, bool):
        return None
    if isinstance(submitted, int):
        return submitted
    text = str(submitted).strip()
    # Plain ASCII digits only: int() would also take "+1", "1_0" or full-width digits.
    return int(text) if text.isascii() and text.isdigit() else None


def expect_version(record: object, submitted: object, *, message: str | None = None) -> None:
    """Refuse (StaleEditError) unless `submitted` is the record's current version (UNCHECKED: no form)."""
    if submitted is UNCHECKED:
        return
    expected = parse_version(submitted)
    if expected is None or expected != getattr(record, "version", None):
        raise StaleEditError(message)


@contextmanager
def saving(session: Session, *, message: str | None = None) -> Iterator[None]:
    """Run the block's changes in a savepoint and flush them; a lost race becomes StaleEditError."""
    try:
        with session.begin_nested():
            yield
    except StaleDataError:
        raise StaleEditError(message) from None


def flush_or_stale(session: Session, *, message: str | None = None) -> None:
    """Flush what the caller changed; a version-guarded UPDATE that matched no row (someone saved
    first) becomes StaleEditError. For writers whose changes are spread over a function, where a
    `saving()` block would not fit; the request is rolled back on the refusal either way."""
    try:
        session.flush()
    except StaleDataError:
        raise StaleEditError(message) from None
