"""Where the shared folders live, from a checkout and from an installed wheel.

`templates/` sits at the top of the repository so the web app and the workers share one set of
pages, e-mails and report layouts, and `tenants/` holds the sample rule sets. In a checkout
(editable install) both are found next to the `platform/` source root; a wheel carries them inside
the package as `fivestar/_templates` and `fivestar/_tenants`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """Return the folder holding the Jinja templates."""
    checkout = PACKAGE_DIR.parent.parent / "templates"
    if (checkout / "base.html").is_file():
        return checkout
    bundled = Path(str(resources.files("fivestar") / "_templates"))
    if (bundled / "base.html").is_file():
        return bundled
    raise RuntimeError(f"Fivestar templates not found (looked in {checkout} and {bundled})")


def tenants_dir() -> Path | None:
    """The sample rule sets: `tenants/` of a checkout, or the copy a wheel carries as `_tenants`."""
    for folder in (PACKAGE_DIR.parent.parent / "tenants", PACKAGE_DIR / "_tenants"):
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    return None


def static_dir() -> Path:
    return PACKAGE_DIR / "static"


def migrations_dir() -> Path:
    return PACKAGE_DIR / "migrations"


def translations_dir() -> Path:
    return PACKAGE_DIR / "translations"
