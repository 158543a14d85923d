"""Access logs that cannot place a voter: no client address and no user agent on the voting path.

Ballot codes never reach a log (they are posted, never in a URL: README, "The 议星 ballot"). But an
access line with a time, an address and a browser says who voted when; with the order of casting,
that is a step towards who voted what. So for `/t/<district>/vote/…` the address, the user agent, the
referrer and the user are written as `-`, whatever the log format asks for — and for `/static/…` too,
since the voting page's script and style sheet are fetched right after it, from the same phone (a
static file needs no address in a log). Other paths keep them (login throttling and incident work need
them there).

`VoteBlindRequestHandler` does this for werkzeug's built-in server (`fivestar serve`, `fivestar demo`);
`fivestar.web.gunicorn_log.AccessLogger` for gunicorn (ops/gunicorn.conf.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler

VOTING_PATH = re.compile(r"^/t/[^/]+/vote(?:/|$)")
STATIC_PATH = re.compile(r"^/static/")


def is_voting_path(path: str | None) -> bool:
    """True for the voter's pages (any district) and the static files they load, with or without a
    query string: the paths whose log lines carry no client."""
    target = urlsplit(path or "").path
    return bool(path) and (VOTING_PATH.match(target) is not None or STATIC_PATH.match(target) is not None)


class VoteBlindRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, writing `-` for the client's address on the voting path."""

    def address_string(self) -> str:
        if is_voting_path(getattr(self, "path", None)):
            return "-"
        return str(super().address_string())


__all__ = ["VOTING_PATH", "VoteBlindRequestHandler", "is_voting_path"]
