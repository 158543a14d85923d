"""A group robot on loopback for tests: a real HTTP server (http.server in a thread) that answers
like WeCom's and DingTalk's webhook endpoints and keeps every request it received.

    with LoopbackRobot() as robot:
        url = robot.url(WebhookKind.DINGTALK)        # http://127.0.0.1:<port>/robot/send?access_token=…
        ... send ...
        robot.requests[0].json, robot.requests[0].query

Settings must list `127.0.0.1` in `webhook_hosts` for the platform to post to it (see
`fivestar.notify.url_policy.check_url`). Set `status`, `answer` or `delay` to make it misbehave.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fivestar.notify.models import WebhookKind

KEY = "693a91f6-7d9c-4bc4-97a0-0ec2feedbeef"  # a WeCom-like key
ACCESS_TOKEN = "e9a8118c8a3dc6d0b7e1c6f4f2a1d9b8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2"  # a DingTalk-like token
SECRET = "SEC10d6e79b42bd94be0d0d603843651aa2ccd7186db6edbc1234567890cf421cd"  # a DingTalk 加签 secret


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    at: float = field(default_factory=time.time)


def expected_sign(secret: str, timestamp: str) -> str:
    """DingTalk's signature, computed here independently of the platform's code."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def free_port() -> int:
    """A loopback port nothing listens on (for 'connection refused')."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoopbackRobot:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.answer: Any = {"errcode": 0, "errmsg": "ok"}  # a dict (sent as JSON) or raw bytes
        self.delay = 0.0
        self.location: str | None = None  # answer with this Location header (for a 3xx status)
        self._lock = threading.Lock()
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                received = Received(
                    path=parts.path,
                    query={name: values[0] for name, values in parse_qs(parts.query).items()},
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
                try:
                    received.json = json.loads(body.decode("utf-8"))
                except ValueError:
                    received.json = None
                with robot._lock:
                    robot.requests.append(received)
                if robot.delay:
                    time.sleep(robot.delay)
                data = robot.answer if isinstance(robot.answer, bytes) else json.dumps(robot.answer).encode()
                try:
                    self.send_response(robot.status)
                    if robot.location:
                        self.send_header("Location", robot.location)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-robot", daemon=True
        )

    def url(self, kind: WebhookKind) -> str:
        if kind is WebhookKind.WECOM:
            return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key={KEY}"
        return f"http://127.0.0.1:{self.port}/robot/send?access_token={ACCESS_TOKEN}"

    def __enter__(self) -> LoopbackRobot:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
