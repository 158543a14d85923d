"""What every benchmark here needs: a throwaway database and a stopwatch."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fivestar.features import connect_receivers

# A benchmark is a process like the web app or a worker: the features react to each other's domain events
# (a tenant gets its root committee, a member's move reaches the open rounds) only once connected.
connect_receivers()

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def database(kind: str, folder: Path, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A fresh SQLite file in `folder`, or a PostgreSQL database created and dropped around the block."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.sqlite3'}"
        return
    import psycopg

    name = f"fivestar_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable at {admin_url}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result
