"""Domain events: how one feature reacts to another without importing it.

Packages import one way only (features above, kernel below; the contracts in `pyproject.toml`). When a
lower feature changes something a higher one must follow — a member moves branch, so their evaluation
in an open member round moves with them — the lower feature *sends* a signal declared here and the
higher one *connects* a receiver in its own `reactions` module. The sender knows nothing of who
listens.

Rules for every signal here:

* The sender is the changed object; the keyword arguments are the payload written beside each signal.
  Every payload carries the caller's `session`: receivers write in the same transaction, flush like any
  service and never commit, so the change and its reactions land (or are refused) together.
* Receivers run synchronously, in connection order, inside the sender's call. A receiver that refuses
  raises a `ServiceError` like any service; the sender's caller sees it.
* A signal whose name starts with `count_` asks a question instead of announcing a change: every
  receiver returns an int and the sender adds them up (`answers_total`).
* Receivers are connected once per process by `fivestar.features.connect_receivers()`, which the web
  app factory, the worker start, the command line and the tests call. A signal nobody listens to does
  nothing, so a process that forgot to connect would silently skip reactions — hence one entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blinker import Namespace

_signals = Namespace()

# --- people ------------------------------------------------------------------------------------

member_joined = _signals.signal(
    "member-joined",
    doc="""A member was added to the roll, or put back on it (sender: the `Member`, already flushed).

    Payload: `session`.""",
)

member_moved = _signals.signal(
    "member-moved",
    doc="""An active member moved to another branch (sender: the `Member`, `branch_id` already the new one).

    Payload: `session`, `old_branch_id` (int), `reason` (str, as recorded in the audit event).""",
)

member_left = _signals.signal(
    "member-left",
    doc="""A member was transferred out (sender: the `Member`, status already `transferred_out`).

    Payload: `session`, `reason` (str).""",
)

# --- organisations -----------------------------------------------------------------------------

count_members_in_org = _signals.signal(
    "count-members-in-org",
    doc="""Question: how many member records stand in this organisation? (sender: the `Organisation`)

    Payload: `session`, `active_only` (bool: count only members on the roll). Each receiver returns an int.
    The organisations package asks before it closes a branch or changes its kind, without knowing members.""",
)

# --- tenants -----------------------------------------------------------------------------------

tenant_created = _signals.signal(
    "tenant-created",
    doc="""A tenant was created (sender: the `Tenant`, flushed; the tenant context is set to it).

    Payload: `session`, `committee_name` (str: the name of its root committee, 工委).""",
)

tenant_suspended = _signals.signal(
    "tenant-suspended",
    doc="""A tenant was suspended (sender: the `Tenant`). Every login of it must end at once.

    Payload: `session`. Each receiver returns how many logins it ended (an int, recorded in the audit event).""",
)


# --- branch rounds --------------------------------------------------------------------------------

branch_round_finalised = _signals.signal(
    "branch-round-finalised",
    doc="""A branch round was finalised in the committee meeting (定星并公布; sender: the `BranchRound`,
    state already FINALISED and flushed). Every rating of it is decided.

    Payload: `session`. The rectification plans (improvement) are created in reaction.""",
)

ask_dossier_sections = _signals.signal(
    "ask-dossier-sections",
    doc="""Question: what else should the committee's dossier of this branch rating show? (sender: the
    `BranchRating`, its `branch` loaded)

    Payload: `session`, `branch_round` (the rating's `BranchRound`). Each receiver returns a list of
    `Section` (or None); the dossier renders them after its own parts (`answers_sections`). The
    acceptance review of last year's rectification plan (improvement) answers here.""",
)

ask_public_branch_links = _signals.signal(
    "ask-public-branch-links",
    doc="""Question: which public pages (no login) does a branch have beside its stars? (sender: the
    `Organisation`, a branch)

    Payload: `session`. Each receiver returns a list of `PublicLink` (or None): the public stars
    page links them. The published rectification plans (improvement) answer here.""",
)


@dataclass(frozen=True)
class Section:
    """A block one feature adds to a page another owns, without the owner importing it: a title,
    rows of (label, text), and a note under them. Text only: the page escapes it."""

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    note: str = ""


@dataclass(frozen=True)
class PublicLink:
    """A link to a public page: its endpoint and arguments (the web layer builds the URL) and text."""

    text: str
    endpoint: str
    params: tuple[tuple[str, Any], ...] = ()


def answers_sections(answers: list[tuple[Any, Any]]) -> list[Section]:
    """The sections every receiver of `ask_dossier_sections` returned, in connection order."""
    return [section for _receiver, value in answers for section in (value or ())]


def answers_links(answers: list[tuple[Any, Any]]) -> list[PublicLink]:
    """The links every receiver of `ask_public_branch_links` returned, in connection order."""
    return [link for _receiver, value in answers for link in (value or ())]


def answers_total(answers: list[tuple[Any, Any]]) -> int:
    """Add up what the receivers of a question signal (`signal.send(...)`) returned."""
    return sum(int(value or 0) for _receiver, value in answers)


__all__ = [
    "PublicLink",
    "Section",
    "answers_links",
    "answers_sections",
    "answers_total",
    "ask_dossier_sections",
    "ask_public_branch_links",
    "branch_round_finalised",
    "count_members_in_org",
    "member_joined",
    "member_left",
    "member_moved",
    "tenant_created",
    "tenant_suspended",
]
