"""How the rectification plans follow the rating (receivers of `fivestar.kernel.events`).

* `branch_round_finalised` — 定星 is final: every decided branch gets its plan (services).
* `ask_dossier_sections` — the committee's dossier of a branch rating shows the acceptance review of
  the plan the branch worked on during the rated year (acceptance.dossier_sections).
* `ask_public_branch_links` — a branch's public stars page links its published plans (public).

Connected once per process by `fivestar.features.connect_receivers()`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fivestar.improvement import acceptance, public, services
from fivestar.kernel import events


def on_round_finalised(branch_round: Any, *, session: Session, **_: Any) -> None:
    services.create_plans_for_round(session, branch_round)


def on_dossier(rating: Any, *, session: Session, branch_round: Any, **_: Any) -> list[events.Section]:
    return acceptance.dossier_sections(session, rating, branch_round)


def on_public_links(branch: Any, *, session: Session, **_: Any) -> list[events.PublicLink]:
    return public.public_links(session, branch)


def connect() -> None:
    """Connect the receivers (strong references: they live as long as the process)."""
    events.branch_round_finalised.connect(on_round_finalised, weak=False)
    events.ask_dossier_sections.connect(on_dossier, weak=False)
    events.ask_public_branch_links.connect(on_public_links, weak=False)
