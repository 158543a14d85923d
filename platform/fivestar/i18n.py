"""Translation helpers. Message ids are the Simplified Chinese text; English is the translation.

`_` works outside a request too (workers, the command line): there it returns the Chinese text.
"""

from __future__ import annotations

from typing import Any

from flask_babel import LazyString, gettext, lazy_gettext, ngettext


def _(string: str, **variables: Any) -> str:
    """Translate `string` (Chinese) into the request's language, filling %(name)s placeholders."""
    return str(gettext(string, **variables))


def _l(string: str, **variables: Any) -> LazyString:
    """Like `_`, evaluated when shown (for labels defined at import time)."""
    return lazy_gettext(string, **variables)


SUPPORTED_LOCALES = ("zh", "en")


def current_language() -> str:
    """'zh' or 'en' for the current request ('zh' outside one)."""
    from flask import has_request_context
    from flask_babel import get_locale

    if not has_request_context():
        return "zh"
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh"


def short_date(day: Any) -> str:
    """A date as people write it in the page's language: 4月10日 / 10 Apr."""
    if current_language() == "en":
        return f"{day.day} {day:%b}"
    return f"{day.month}月{day.day}日"

__all__ = ["SUPPORTED_LOCALES", "_", "_l", "ngettext"]
