#!/bin/sh
# The container's entry point: the first argument names the process (ops/Dockerfile, ops/compose.yaml).
#
#   web [gunicorn options]            gunicorn, configured by /app/gunicorn.conf.py (or $GUNICORN_CONFIG)
#   worker [QUEUE] [celery options]   a Celery worker for QUEUE (default, reports, or both: default,reports)
#   beat [celery options]             Celery beat; with a Redis broker RedBeat lets only one beat tick
#   migrate                           apply database migrations (`fivestar db upgrade`, as the owner of
#                                     FIVESTAR_MIGRATION_DATABASE_URL; it grants the application role) and exit
#   anything else                     run as given, e.g. `fivestar tenant list`
#
# Every process is exec'd, so it receives the container's SIGTERM itself and stops gracefully.
set -eu

command="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$command" in
  web)
    exec gunicorn --config "${GUNICORN_CONFIG:-/app/gunicorn.conf.py}" "$@" fivestar.wsgi:app
    ;;
  worker)
    queue="default,reports"
    case "${1:-}" in
      ""|-*) ;;
      *) queue="$1"; shift ;;
    esac
    # One node name per queue and host, so `celery inspect ping --destination` can find it.
    node="$(printf '%s' "$queue" | tr ',' '+')@%h"
    exec celery -A workers worker --queues "$queue" --hostname "$node" --loglevel "${CELERY_LOG_LEVEL:-INFO}" "$@"
    ;;
  beat)
    # RedBeat keeps its schedule in Redis; the file only matters for the stock scheduler (no Redis).
    exec celery -A workers beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --schedule "${FIVESTAR_DATA_DIR:-/var/lib/fivestar}/celerybeat-schedule" "$@"
    ;;
  migrate)
    exec fivestar db upgrade "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
