"""gunicorn's access log without the voter: see fivestar.web.access_log for why.

Named by `logger_class` in ops/gunicorn.conf.py. Every atom that could identify a client — address,
user agent, referrer, remote user, and any request header or environment variable a format could
name (`%({x-forwarded-for}i)s`, `%({remote_addr}e)s`) — becomes `-` on the voting path.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from fivestar.web.access_log import is_voting_path

_BLANKED = ("h", "a", "f", "u", "l")


class AccessLogger(Logger):  # type: ignore[misc] - gunicorn ships no type information
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        if not is_voting_path(environ.get("PATH_INFO")):
            return atoms
        for key in list(atoms):
            if key.startswith("{") and key.endswith(("}i", "}e")):
                del atoms[key]  # gunicorn's wrapper turns a missing atom into "-"
        atoms.update(dict.fromkeys(_BLANKED, "-"))
        method, path, protocol = (environ.get(name, "-") for name in ("REQUEST_METHOD", "PATH_INFO", "SERVER_PROTOCOL"))
        atoms["r"] = f"{method} {path} {protocol}"
        atoms["q"] = "-"
        return atoms


__all__ = ["AccessLogger"]
