"""Reading the next batch of a streaming export while the current one is being written.

A large workbook spends most of its time in XlsxWriter (Python, on the worker's thread) and a
fair part waiting for the database: the next batch of the streaming query and that batch's pivoted
scores. Those waits are the database server's work and the driver's socket reads, both of which run
without Python's global interpreter lock; done on a second thread they overlap with the writing
instead of adding to it (bench/export.py measures the difference). That holds for PostgreSQL, not
for SQLite: `worth_reading_ahead` says when to use it.

`read_ahead` (a context manager) keeps at most `depth` batches in hand, so memory stays flat
whatever the row count. The producing thread is the only one that touches the session until the consumer has finished or
given up: the consumer must not use it meanwhile. When the consumer stops early (an error while
writing, a lost claim, Celery's soft time limit), the producer is told to stop and is joined
before `read_ahead` returns, so the session is never used by two threads at once. An error in the
producer is raised again in the consumer.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

T = TypeVar("T")

_PUT_WAIT_SECONDS = 0.1  # how often a producer blocked on a full queue looks for the stop signal


class _Failed:
    """The producer's error, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Finished:
    """The producer has no more batches."""


_FINISHED = _Finished()


class _Producer(Generic[T]):
    def __init__(self, batches: Iterable[T], depth: int) -> None:
        self.batches = batches
        self.handed: queue.Queue[T | _Failed | _Finished] = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        # The consumer's context variables (the current tenant above all) hold on the producing
        # thread too: the tenant scoping of every query reads them.
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self.run,), name="fivestar-read-ahead", daemon=True)

    def hand_over(self, item: T | _Failed | _Finished) -> bool:
        while not self.stop.is_set():
            try:
                self.handed.put(item, timeout=_PUT_WAIT_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        source = iter(self.batches)
        try:
            for batch in source:
                if not self.hand_over(batch):
                    break
            else:
                self.hand_over(_FINISHED)
        except BaseException as error:  # noqa: BLE001 - every error is the consumer's to raise
            self.hand_over(_Failed(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's cleanup (closing its result) on the thread that used it

    def items(self) -> Iterator[T]:
        while True:
            item = self.handed.get()
            if isinstance(item, _Finished):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()


@contextmanager
def read_ahead(batches: Iterable[T], *, depth: int = 2) -> Iterator[Iterator[T]]:
    """Within the block, an iterator over what `batches` yields, produced on a thread of its own up
    to `depth` items ahead. Leaving the block, however early, stops and joins that thread (a context
    manager rather than a generator for this reason: an abandoned generator's cleanup would wait for
    the garbage collector, while the producer still held the session)."""
    producer = _Producer(batches, depth)
    producer.thread.start()
    try:
        yield producer.items()
    finally:
        producer.finish()


def worth_reading_ahead(session: Session) -> bool:
    """Whether the session's reads should move to a second thread: only for PostgreSQL, and only
    for a session bound to an engine.

    - psycopg fetches a whole batch in one call to libpq, without the GIL, so the server's work and
      the transfer overlap with the writing. Python's sqlite3 releases the GIL around every row's
      step and must take it back from a writer that only yields it every switch interval (5 ms):
      the reader makes no headway while the writer runs, and the export got slower (bench/README.md).
    - A session bound to one `Connection` shares it with every other session of its factory (the
      tests' transaction per test): the caller's progress writes would meet the reads on it.
    """
    bind = session.get_bind()
    return isinstance(bind, Engine) and bind.url.get_backend_name() == "postgresql"


__all__ = ["read_ahead", "worth_reading_ahead"]
