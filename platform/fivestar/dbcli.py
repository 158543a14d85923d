"""`fivestar db …`: schema migrations with Alembic, from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from fivestar.db import make_engine
from fivestar.dbroles import apply_grants
from fivestar.migrations.env_support import render_item
from fivestar.models import Base
from fivestar.paths import migrations_dir


def alembic_config(database_url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(database_url: str, revision: str = "head", connection: Connection | None = None) -> None:
    command.upgrade(alembic_config(database_url, connection), revision)


def grant(database_url: str, role: str) -> dict[str, tuple[str, ...]]:
    """(Re)apply the application role's privileges as the owner (PostgreSQL; fivestar.dbroles)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            return apply_grants(connection, role)
    finally:
        engine.dispose()


def downgrade(database_url: str, revision: str, connection: Connection | None = None) -> None:
    command.downgrade(alembic_config(database_url, connection), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=False)


def revision(database_url: str, message: str, autogenerate: bool = True) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=autogenerate)


def regenerate_initial() -> Path:
    """Rewrite migrations/versions/0001_initial_schema.py from the models (development only).

    Until the first release the initial migration is regenerated rather than stacked; after it,
    every schema change is a new revision made with `fivestar db revision -m …`.
    """
    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    engine = make_engine("sqlite://")
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True, "target_metadata": Base.metadata}
        )
        script = produce_migrations(context, Base.metadata)
    options = {
        "render_item": render_item,
        "render_as_batch": True,
        "alembic_module_prefix": "op.",
        "sqlalchemy_module_prefix": "sa.",
    }
    upgrade = render_python_code(script.upgrade_ops, **options)  # type: ignore[arg-type]
    downgrade = render_python_code(script.downgrade_ops, **options)  # type: ignore[arg-type]
    target = migrations_dir() / "versions" / "0001_initial_schema.py"
    target.write_text(INITIAL_TEMPLATE.format(upgrade=_indent(upgrade), downgrade=_indent(downgrade)), encoding="utf-8")
    return target


def _indent(code: str) -> str:
    lines = [
        line for line in code.strip("\n").splitlines() if "### commands" not in line and "please adjust" not in line
    ]
    return "\n".join(
        ("    " + line.strip("\n")[4:] if line.startswith("    ") else "    " + line) for line in lines if line.strip()
    )


INITIAL_TEMPLATE = '''"""Initial schema (generated from the models by fivestar.dbcli.regenerate_initial).

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


if __name__ == "__main__":
    print(regenerate_initial())
