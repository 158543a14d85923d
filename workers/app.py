"""The Celery application: broker, delivery guarantees, queues and the beat schedule.

Configured from the same `FIVESTAR_*` settings as the web app, so the web process (which sends tasks
by name through `fivestar.broker.enqueue`), the worker and beat always agree on the broker.

Delivery is at-least-once and the database is the truth (CONTRIBUTING.md "Workers"): a task acknowledges its
message only after it ran (`task_acks_late`), a worker killed mid-task hands the message back
(`task_reject_on_worker_lost`), and each worker takes one message at a time (prefetch 1) so a
long task never holds others hostage. Every task is written so that running it twice changes
nothing. Results are not stored: tasks record their effects as rows.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from fivestar.broker import transport_options
from fivestar.config import Settings, load_settings
from fivestar.features import connect_receivers
from fivestar.kernel.task_names import DEFAULT_QUEUE, REPORTS_QUEUE, REPORTS_TASK_PATTERN, TICK

#: The default tick interval; `FIVESTAR_TICK_SECONDS` (Settings.tick_seconds) overrides it.
TICK_SECONDS = 60.0
#: RedBeat's keys (schedule, entries, lock) start with this, after FIVESTAR_REDIS_KEY_PREFIX.
REDBEAT_KEY_PREFIX = "fivestar:redbeat:"
#: The longest beat sleeps between looks at its schedule; it renews the RedBeat lock each time.
BEAT_MAX_LOOP_SECONDS = 30.0


def configure(app: Celery, settings: Settings) -> None:
    """Apply Fivestar's configuration to `app` (separate from creation so tests can reuse it)."""
    app.conf.update(
        broker_url=settings.resolved_broker_url,
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        # Delivery guarantees (CONTRIBUTING.md "Workers").
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        # No result backend: tasks write their effects to the database.
        result_backend=None,
        task_ignore_result=True,
        # Never run tasks in the caller's process outside unit tests (celery#2209).
        task_always_eager=False,
        timezone="UTC",
        enable_utc=True,
        task_default_queue=DEFAULT_QUEUE,
        task_queues=(
            Queue(DEFAULT_QUEUE, Exchange(DEFAULT_QUEUE), routing_key=DEFAULT_QUEUE),
            Queue(REPORTS_QUEUE, Exchange(REPORTS_QUEUE), routing_key=REPORTS_QUEUE),
        ),
        # Long reports get their own queue (and time limits) so they never delay reminders.
        # Report tasks are named `fivestar.reports.*` (fivestar.kernel.task_names).
        task_routes={REPORTS_TASK_PATTERN: {"queue": REPORTS_QUEUE}},
        task_time_limit=15 * 60,
        task_soft_time_limit=14 * 60,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts=False,
        beat_schedule={
            # One platform-wide UTC tick; per-tenant due times are rows, never crontab entries
            # (celery#1604, #6438: crontab has no per-entry time zone and a history of DST bugs).
            "fivestar-minute-tick": {
                "task": TICK,
                "schedule": settings.tick_seconds,
                # A tick nobody consumed within its interval is worthless: the next one does the
                # same sweep. Without this a stopped worker finds an hour of ticks queued.
                "options": {"queue": DEFAULT_QUEUE, "expires": tick_expiry(settings.tick_seconds)},
            },
        },
    )
    if is_redis(settings.resolved_broker_url):
        configure_redbeat(app, settings)


def tick_expiry(tick_seconds: float) -> float:
    """How long a tick message may wait: the interval less 5 s (9/10 of a test's short interval)."""
    return max(tick_seconds - 5.0, tick_seconds * 0.9)


def is_redis(broker_url: str) -> bool:
    return broker_url.startswith(("redis://", "rediss://"))


def configure_redbeat(app: Celery, settings: Settings) -> None:
    """Production beat: RedBeat keeps the schedule in Redis behind a lock that one beat holds.

    A second beat (a standby, or one started by mistake) blocks in `beat_init` until the lock is
    free, so ticks are never sent twice as often; if the holder dies without releasing it, the
    lock expires after `beat_lock_timeout` and a standby takes over. The embedded default (the
    file-system broker of `fivestar demo`) keeps Celery's stock file-based scheduler.

    Every RedBeat option is set explicitly: RedBeat 2.4 warns (and 2.5 stops) falling back to the
    broker's URL and transport options.
    """
    prefix = settings.redis_key_prefix + REDBEAT_KEY_PREFIX
    loop = max(1.0, min(BEAT_MAX_LOOP_SECONDS, settings.tick_seconds, settings.beat_lock_timeout / 3))
    app.conf.update(
        beat_scheduler="redbeat.RedBeatScheduler",
        beat_max_loop_interval=loop,
        redbeat_redis_url=settings.resolved_broker_url,
        # Passed to the redis client; `retry_period` makes beat ride out a short Redis restart.
        redbeat_redis_options={"socket_timeout": 5, "socket_connect_timeout": 5, "retry_period": 30},
        redbeat_key_prefix=prefix,
        redbeat_lock_key=prefix + "lock",
        redbeat_lock_timeout=settings.beat_lock_timeout,
    )
    # Connect RedBeat's `beat_init` handler (it takes the lock, blocking) before workers.signals
    # connects its own: receivers run in connection order, so a beat announces itself ready
    # (FIVESTAR_BEAT_READY_FILE) only once it holds the lock.
    import redbeat.schedulers  # noqa: F401


def create_celery(settings: Settings | None = None) -> Celery:
    """A configured Celery app; `app` below is the one `celery -A workers` finds."""
    settings = settings or load_settings()
    settings.install_holidays()
    connect_receivers()  # a worker reacts to domain events exactly as the web app does (fivestar.features)
    celery = Celery(
        "fivestar",
        include=["workers.tasks", "workers.reports", "workers.exports"],
        task_cls="workers.base:FivestarTask",
        set_as_current=True,
    )
    configure(celery, settings)
    celery.fivestar_settings = settings  # type: ignore[attr-defined]
    return celery


app = create_celery()

# Imported for their side effect: the signal handlers that give every task a clean context.
import workers.signals  # noqa: E402, F401
