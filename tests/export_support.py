"""Real receivers on loopback for the exports tests (fivestar.exports): no mocks, real protocol peers.

- `LoopbackReceiver`: an HTTP server (http.server in a thread) that checks each POST's signature
  the way the README tells a superior committee to — computed here independently of the platform's
  code — stores the body once per `Idempotency-Key`, and answers `status` (200 by default).
- `LoopbackSftp`: an SSH server with an SFTP subsystem (asyncssh, on its own event loop in a
  thread) rooted in a folder, with password and public-key logins, recording the file operations
  so a test can see the temporary name and the rename.

Settings must list `127.0.0.1` in `export_hosts` for the platform to send to them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncssh

HMAC_KEY = "k3y-agreed-with-the-superior-0123456789"
SFTP_USER = "upload"
SFTP_PASSWORD = "correct-sftp-password"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    at: float = field(default_factory=time.time)


def expected_signature(key: str, timestamp: str, body: bytes) -> str:
    """What the README says a receiver computes: HMAC-SHA256(key, timestamp + "." + body), hex."""
    return "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class LoopbackReceiver:
    """`with LoopbackReceiver() as receiver: receiver.url` → http://127.0.0.1:<port>/fivestar/receive."""

    def __init__(self, key: str = HMAC_KEY) -> None:
        self.key = key
        self.requests: list[Received] = []
        self.stored: dict[str, bytes] = {}  # Idempotency-Key -> body, each stored once
        self.status = 200
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/fivestar/receive"

    def __enter__(self) -> LoopbackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                timestamp = headers.get("x-fivestar-timestamp", "")
                given = headers.get("x-fivestar-signature", "")
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 300
                ok = fresh and hmac.compare_digest(expected_signature(receiver.key, timestamp, body), given)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests.append(Received(self.path, headers, body, ok))
                    status = receiver.status if ok else 401
                    if status == 200:
                        receiver.stored.setdefault(headers.get("idempotency-key", ""), body)
                payload = b'{"ok": true}' if status == 200 else b'{"ok": false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class LoopbackSftp:
    """`with LoopbackSftp(root) as sftp:` — `sftp.port`, `sftp.host_key_line`, `sftp.ops`."""

    def __init__(self, root: Path, *, authorized_key: asyncssh.SSHKey | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.authorized_key = authorized_key
        self.ops: list[tuple[str, ...]] = []
        self.logins: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._acceptor: Any = None

    @property
    def host_key_line(self) -> str:
        return str(self.host_key.export_public_key().decode().strip())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackSftp:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._acceptor = future.result(timeout=15)
        self.port = int(self._acceptor.sockets[0].getsockname()[1])
        return self

    def __exit__(self, *_exc: object) -> None:
        async def stop() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> Any:
        outer = self

        class Server(asyncssh.SSHServer):
            """Password and public-key logins; `outer.logins` gets the method of each completed one."""

            method = ""

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                self.method = "password"
                return username == SFTP_USER and password == SFTP_PASSWORD

            def public_key_auth_supported(self) -> bool:
                return outer.authorized_key is not None

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                assert outer.authorized_key is not None
                self.method = "publickey"
                return username == SFTP_USER and key.public_data == outer.authorized_key.public_data

            def auth_completed(self) -> None:
                outer.logins.append(self.method)

        class Recording(asyncssh.SFTPServer):
            def __init__(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
                super().__init__(chan, chroot=str(outer.root).encode())

            def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
                outer.ops.append(("open", path.decode()))
                return super().open(path, pflags, attrs)

            def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
                outer.ops.append(("posix_rename", oldpath.decode(), newpath.decode()))
                super().posix_rename(oldpath, newpath)

        return await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[self.host_key], sftp_factory=Recording,
            allow_scp=False, process_factory=None,
        )


__all__ = ["HMAC_KEY", "SFTP_PASSWORD", "SFTP_USER", "LoopbackReceiver", "LoopbackSftp", "expected_signature"]
