"""A local SMTP server that keeps every message it receives as an `.eml` file.

`fivestar demo` points the worker's outgoing mail here, so invitation e-mails can be opened from
the data folder with any mail program instead of going out to real addresses. Tests use the same
catcher to see that the worker really delivered over SMTP.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _SaveToFolder:
    """aiosmtpd handler: write each message to `folder` atomically (readers never see half a file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        with self._lock:
            self.count += 1
            number = self.count
        name = f"{number:05d}-{uuid.uuid4().hex[:8]}.eml"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        partial = self.folder / f".{name}.part"
        partial.write_bytes(content)
        os.replace(partial, self.folder / name)
        return "250 Message accepted for delivery"


class MailCatcher:
    """`with MailCatcher(folder) as catcher:` — an SMTP server on `catcher.host:catcher.port`."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self._handler = _SaveToFolder(self.folder)
        self._controller = Controller(self._handler, hostname=host, port=self.port, ready_timeout=10)
        self._running = False

    def start(self) -> MailCatcher:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()

    def messages(self) -> list[Path]:
        """The saved messages, oldest first."""
        return sorted(self.folder.glob("*.eml"))

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
