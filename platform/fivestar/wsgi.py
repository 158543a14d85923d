"""The WSGI entry point: `gunicorn fivestar.wsgi:app` (see ops/gunicorn.conf.py).

Settings come from the `FIVESTAR_*` environment when the module is imported, once per worker.

Behind reverse proxies (`FIVESTAR_PROXY_HOPS` = how many), the app trusts that many entries of
X-Forwarded-For and X-Forwarded-Proto, so `request.remote_addr` is the client's address — login
throttling and the ballot's limits count people, not the proxy — and the scheme is the public one.
X-Forwarded-Host is not trusted: the proxy passes `Host` itself, and e-mails use FIVESTAR_BASE_URL.
Only this entry point does it: `fivestar serve` and the demo are reached directly.
"""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from fivestar.web.app import create_app


def behind_proxies(app: Flask, hops: int) -> Flask:
    """Trust `hops` proxies' X-Forwarded-* headers (none when 0: headers anyone can send are ignored)."""
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


app = create_app()
behind_proxies(app, app.config["FIVESTAR_SETTINGS"].proxy_hops)
