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

__all__ = ["SUPPORTED_LOCALES", "_", "_l", "ngettext"]
