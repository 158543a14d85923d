"""The Celery side of Fivestar: the app, its beat schedule and thin tasks.

`celery -A workers worker` and `celery -A workers beat` find the app here as `workers.celery`
(Celery looks for `workers.app`, finds the module of that name and falls back to `celery`). In
code, import it as `from workers.app import app`: `workers.app` is always the module. The app is
created on first access, not when the package is imported, so `workers.base` can be imported (by
tests, by other task modules) without reading settings or touching the broker folders.

Workers import `fivestar`; `fivestar` never imports `workers` (web code sends tasks by name through
`fivestar.broker.enqueue`).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from workers.app import app as celery_app

        return celery_app
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
