"""`fivestar demo` (everything in one command) and `fivestar serve` (the web app alone)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fivestar.demo.runner import port_problem, run_demo
from fivestar.kernel.commandline import settings_or_exit
from fivestar.web.access_log import VoteBlindRequestHandler
from fivestar.web.app import create_app


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Web port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web app listens on.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data folder (database, broker, mail, logs). Default: $FIVESTAR_DATA_DIR or ./fivestar-data.",
)
def demo_command(port: int, host: str, data_dir: Path | None) -> None:
    """Run a complete demo: web app, worker, beat and a mail catcher, with demo districts.

    Nothing to install: SQLite and a file-system broker in the data folder. A second run reuses
    the data. DEMO ONLY — every demo login shares one printed password.
    """
    sys.exit(run_demo(port=port, host=host, data_dir=data_dir))


@click.command("serve")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
def serve_command(port: int, host: str) -> None:
    """Run the web app alone on the built-in server (development; start worker and beat yourself).

    Production runs gunicorn on `fivestar.wsgi:app` instead.
    """
    from werkzeug.serving import run_simple

    problem = port_problem(host, port)
    if problem:
        click.echo(problem, err=True)
        sys.exit(1)
    app = create_app(settings_or_exit())
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False,
               request_handler=VoteBlindRequestHandler)


__all__ = ["demo_command", "serve_command"]
