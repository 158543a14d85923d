"""The whole rule set: its parts together, the normalised document and its content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from ..labels import level_label
from .branch import BranchRules
from .common import Json, Meta
from .improvement import ImprovementRules
from .member import MemberRules
from .schedule import Schedule


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A tenant's validated rules.  Build with ``load_rules``; store ``canonical_json()``."""

    meta: Meta
    branch: BranchRules
    member: MemberRules
    schedule: Schedule
    #: After the rating: programmes, plans, acceptance review (the notice's defaults when not written).
    improvement: ImprovementRules = field(default_factory=ImprovementRules)

    def to_document(self) -> dict[str, Json]:
        """The normalised document (every default filled in, numbers as strings); loads back equal."""
        doc: dict[str, Json] = {
            "meta": self.meta.to_document(),
            "branch": self.branch.to_document(),
            "member": self.member.to_document(),
            "schedule": self.schedule.to_document(),
        }
        if not self.improvement.is_default:  # rules that say nothing keep their document and hash
            doc["improvement"] = self.improvement.to_document()
        return doc

    def canonical_json(self) -> str:
        """Stable JSON for storage and hashing: sorted keys, no spaces, UTF-8 text kept readable."""
        return json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON: equal rules, equal hash (a round pins this version)."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def level_label(self, level: int | None, kind: Literal["branch", "member"] = "branch") -> str:
        """Level name using this rule set's name for members below the lowest band."""
        return level_label(level, kind, self.member.below_label if kind == "member" else None)
