"""Where features meet: the one place that connects every domain-event receiver.

Features never import the features above them; they announce changes through the signals of
`fivestar.kernel.events`, and the feature that reacts keeps its receivers in its own `reactions`
module. This module imports those modules and connects them. Every process calls
`connect_receivers()` once at start — the web app factory (`fivestar.web.app.create_app`), the Celery
worker (`workers/app.py`), the command line (`fivestar.cli`) and the tests — so a member moved from a
page, a worker, an import on the command line or a test changes the open rounds the same way.

Connecting again changes nothing (blinker keeps one connection per receiver), so callers need not care
who connected first.
"""

from __future__ import annotations

from fivestar.accounts import reactions as accounts_reactions
from fivestar.improvement import reactions as improvement_reactions
from fivestar.member_rounds import reactions as member_round_reactions
from fivestar.orgs import reactions as org_reactions
from fivestar.people import reactions as people_reactions


def connect_receivers() -> None:
    """Connect every feature's receivers to the domain events (idempotent)."""
    member_round_reactions.connect()
    people_reactions.connect()
    org_reactions.connect()
    accounts_reactions.connect()
    improvement_reactions.connect()


__all__ = ["connect_receivers"]
