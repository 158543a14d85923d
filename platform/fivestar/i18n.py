"""Translation helpers. Message ids are the Simplified Chinese text; English is the translation.

`_` works outside a request too (workers, the command line): there it returns the Chinese text.
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext, ngettext

_ = gettext
_l = lazy_gettext

SUPPORTED_LOCALES = ("zh", "en")

__all__ = ["SUPPORTED_LOCALES", "_", "_l", "ngettext"]
