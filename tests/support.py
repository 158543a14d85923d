"""Helpers shared by test modules (import as `from tests.support import …`)."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("FIVESTAR_REQUIRE_SERVICES") == "1"


def service_unavailable(what: str) -> None:
    """Skip (a developer's laptop) or fail (CI, FIVESTAR_REQUIRE_SERVICES=1) when a service is missing."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (FIVESTAR_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable")
