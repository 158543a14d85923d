"""The message broker as the web side sees it: configuration shared with the workers, a health
check, and `enqueue`, the one small function through which web code asks for background work.

Web code never imports `workers`; it sends tasks by name — the names and queues of
`fivestar.kernel.task_names`, which the workers register under. Messages are sent only after the
transaction that made them necessary has committed, so a worker never looks for a row that does not
exist yet (CONTRIBUTING.md "Workers").
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu.connection import Connection
from sqlalchemy import event
from sqlalchemy.orm import Session

from fivestar.config import Settings
from fivestar.kernel.task_names import DEFAULT_QUEUE

log = logging.getLogger(__name__)


def transport_options(settings: Settings) -> dict[str, Any]:
    url = settings.resolved_broker_url
    if url.startswith("filesystem://"):
        folder = settings.broker_folder
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    if url.startswith(("redis://", "rediss://")):
        # Long waits are rows in the database, never countdowns: this timeout only bounds how
        # long an unacknowledged message waits before redelivery after a worker dies.
        options: dict[str, Any] = {
            "visibility_timeout": settings.broker_visibility_timeout,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        }
        if settings.redis_key_prefix:
            # kombu prefixes every key it writes (queues, bindings, unacked messages, pidbox), so
            # instances sharing one Redis never see each other's messages.
            options["global_keyprefix"] = settings.redis_key_prefix
        return options
    return {}


def check_broker(settings: Settings) -> tuple[bool, str]:
    """Connect to the broker once; report whether it answered."""
    url = settings.resolved_broker_url
    try:
        with Connection(url, transport_options=transport_options(settings), connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
        return True, url.split("://", 1)[0]
    except Exception as exc:  # noqa: BLE001 - any failure is a health report, not a crash
        return False, f"{type(exc).__name__}: {exc}"[:200]


@lru_cache(maxsize=8)
def _client(url: str, options_key: tuple[tuple[str, Any], ...]) -> Celery:
    client = Celery("fivestar-client", broker=url, set_as_current=False)
    client.conf.broker_transport_options = dict(options_key)
    client.conf.task_serializer = "json"
    client.conf.broker_connection_retry_on_startup = True
    return client


def celery_client(settings: Settings) -> Celery:
    options = tuple(sorted(transport_options(settings).items()))
    return _client(settings.resolved_broker_url, options)


def enqueue(settings: Settings, task_name: str, *args: Any, queue: str = DEFAULT_QUEUE) -> None:
    celery_client(settings).send_task(task_name, args=list(args), queue=queue)


def enqueue_after_commit(
    session: Session, settings: Settings, task_name: str, *args: Any, queue: str = DEFAULT_QUEUE
) -> None:
    """Send a task once `session` commits; nothing is sent if it rolls back.

    A failure to reach the broker is logged, not raised: the periodic sweep picks the work up
    from the database anyway, so a broker outage delays work but never loses it.
    """

    def _send(_session: Session) -> None:
        try:
            enqueue(settings, task_name, *args, queue=queue)
        except Exception:
            log.warning("could not enqueue %s; the periodic sweep will pick it up", task_name, exc_info=True)

    event.listen(session, "after_commit", _send, once=True)
