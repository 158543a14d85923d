"""A live server on loopback and Debian's Chromium driven by Playwright.

The browser tests need committed data visible to a server thread, so they use their own freshly
migrated database per backend rather than the rolled-back transaction of the other tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.support import service_unavailable

CHROMIUM = os.environ.get("FIVESTAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        service_unavailable(f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def live_app(
    backend: str, fresh_database: Callable[[str], str], broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, LiveServer]]:
    """The real app (CSRF on, like production) on its own migrated database, served on loopback."""
    from fivestar.config import load_settings
    from fivestar.web.app import create_app

    settings = load_settings(
        env="test",
        database_url=fresh_database(backend),
        broker_url=broker_url,
        data_dir=tmp_path_factory.mktemp("live"),
        secret_key=secrets.token_urlsafe(40),
    )
    app = create_app(settings)
    with LiveServer(app) as server:
        yield app, server
    app.extensions["fivestar.engine"].dispose()
