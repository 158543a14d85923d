"""gunicorn configuration for Fivestar: `gunicorn --config ops/gunicorn.conf.py fivestar.wsgi:app`.

Every value can be overridden without editing this file: by the environment variables named below,
or on the command line (command-line options win over this file; so does `GUNICORN_CMD_ARGS`).
The container image carries this file as /app/gunicorn.conf.py.

Reverse proxy and client addresses
----------------------------------
Run gunicorn behind a reverse proxy (nginx, a load balancer) that terminates TLS. Two settings
concern the proxy, and they are not the same thing:

* `forwarded_allow_ips` (env `FORWARDED_ALLOW_IPS`, gunicorn's own; default `127.0.0.1,::1`): the
  addresses whose `X-Forwarded-Proto` gunicorn believes when it decides the request came over
  https. Set it to the proxy's address (or network, e.g. `172.16.0.0/12` for a compose network).
  Never `*` unless nothing but the proxy can reach gunicorn.
* `FIVESTAR_PROXY_HOPS` (Fivestar's, read by `fivestar.wsgi`): how many proxies append to
  `X-Forwarded-For`. With 1, the app takes the client's address from the last entry the proxy
  added, so login throttling and the ballot's limits count people rather than the proxy. Leave it
  0 when gunicorn is reached directly — then the header is anyone's to forge.

Access log
----------
One line per request on standard output, without query strings or the referrer: the path is
logged as `%(U)s` (path only), never `%(r)s` (which carries `?…`). Ballot codes never travel in a
URL (they are posted, and the QR code carries them after `#`, which browsers never send), but a
`next=` or a future query parameter must not end up in log files either. On the voting path the
client's address and user agent are not written at all (`logger_class` below): a line with a time,
an address and a browser would say who voted when.
"""

from __future__ import annotations

import os


def _cores() -> int:
    """CPUs this process may run on (respects a container's or systemd's CPU set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# --- where and how many -----------------------------------------------------------------------

# Loopback by default: the reverse proxy on the same host connects here. The container image
# binds 0.0.0.0:8000 on the command line (ops/Dockerfile), where the network is private.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Threaded workers: requests mostly wait on PostgreSQL, so a few threads per process serve more
# people than more processes would, at far less memory. Processes = cores + 1 (one extra to cover
# the moments a process spends in Python rather than waiting), threads = 4 each: a 2-core host
# serves 12 requests at once. `WEB_CONCURRENCY` (the common convention) sets the process count.
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", _cores() + 1)
threads = _int("GUNICORN_THREADS", 4)
# Each process keeps its own SQLAlchemy pool (5 connections + 10 overflow by default): plan
# PostgreSQL's max_connections for processes × (threads + a margin) × hosts (ops/README.md).

# Not preloaded: the app opens its database engine when imported, and a connection pool must not
# be shared across fork. Each worker imports the app itself (a second or two at start).
preload_app = False

# --- time ------------------------------------------------------------------------------------

# A worker that has not reported to the arbiter for this long is killed and replaced. With gthread
# the main loop reports while requests run in threads, so this catches hung processes, not slow
# requests; Excel and PDF downloads stream and may take longer.
timeout = _int("GUNICORN_TIMEOUT", 60)
# On SIGTERM (a deploy, `docker compose stop`) requests in flight get this long to finish.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Keep-alive with the proxy: longer than a browser needs, shorter than the proxy's own idle timeout.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle each process after about this many requests (jittered so they do not all restart at
# once): bounds the memory a slow leak in any library could take.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10

# The heartbeat file each worker touches: in memory, because a container's /tmp can be an overlay
# file system whose writes stall (gunicorn's own advice for Docker).
if os.path.isdir("/dev/shm"):  # noqa: S108 - gunicorn's own recommendation; files are per worker, 0600
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# --- requests --------------------------------------------------------------------------------

limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# See the module docstring: the proxy's address, never "*" unless only the proxy reaches us.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# --- logs ------------------------------------------------------------------------------------

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# client, time, "METHOD /path PROTOCOL", status, bytes, milliseconds, user agent, worker pid.
# No %(r)s / %(q)s (query strings), no %(f)s (the referrer carries other pages' queries).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s" %(p)s'
# On the voting path (/t/<district>/vote/…) and for /static/ files (the voting page's script follows it)
# the client's address, user agent, referrer and every request header are written as "-", whatever the
# format above asks for (fivestar/web/access_log.py).
logger_class = "fivestar.web.gunicorn_log.AccessLogger"
proc_name = "fivestar-web"

# gunicorn 25.1+ opens a control socket by default at $XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl: one fixed path per user, which a second instance on the host would
# take over, and which a read-only container home cannot hold. Off unless asked for.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
