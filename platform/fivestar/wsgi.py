"""The WSGI entry point: `gunicorn fivestar.wsgi:app`.

Settings come from the `FIVESTAR_*` environment when the module is imported, once per worker.
"""

from fivestar.web.app import create_app

app = create_app()
