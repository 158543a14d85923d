"""Audit trail: who changed what, when, from what to what, and why.

Every service that changes state calls `record` (or `record_many` for set-based work) with the
session it is using, so the event commits or rolls back with the change itself.
"""

from fivestar.audit.recording import Actor, acting_as, current_actor, record, record_many, snapshot

__all__ = ["Actor", "acting_as", "current_actor", "record", "record_many", "snapshot"]
