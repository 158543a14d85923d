"""`python -m workers.health beat`: is a beat holding the RedBeat lock? (exit 0 yes, 1 no).

Container health checks use it (ops/compose.yaml). Workers have Celery's own check
(`celery -A workers inspect ping --destination NODE`); beat has none, but with RedBeat a running
beat renews its lock in Redis on every loop, so "the lock exists" means "a beat is alive and
scheduling". A beat that hung stops renewing and the lock expires after FIVESTAR_BEAT_LOCK_TIMEOUT.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def beat_lock_holder_alive() -> tuple[bool, str]:
    """Whether the RedBeat lock of this instance exists, and a line saying what was found."""
    import redis

    from workers.app import app

    key = app.conf.get("redbeat_lock_key")
    if not key:
        return False, "beat does not use RedBeat here (the broker is not Redis): nothing to check"
    client = redis.Redis.from_url(app.conf.redbeat_redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        ttl = int(client.pttl(key))
    except redis.RedisError as exc:
        return False, f"Redis did not answer: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    if ttl == -2:
        return False, f"no beat holds the lock {key!r}"
    return True, f"a beat holds the lock {key!r} (expires in {ttl / 1000:.0f} s unless renewed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["beat"]:
        print("usage: python -m workers.health beat", file=sys.stderr)
        return 2
    ok, message = beat_lock_holder_alive()
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
