"""What a level belongs to: a branch (党支部) or a member (党员), named by kind and id.

Pages, queries and services pass a `Subject` so that one function serves both kinds; the URL
segment (`branches` / `members`) maps to the kind in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["branch", "member"]
KINDS: tuple[Kind, ...] = ("branch", "member")


class _HasSubject(Protocol):
    branch_id: int | None
    member_id: int | None


@dataclass(frozen=True)
class Subject:
    kind: Kind
    id: int

    @property
    def is_branch(self) -> bool:
        return self.kind == "branch"

    @classmethod
    def branch(cls, branch_id: int) -> Subject:
        return cls("branch", branch_id)

    @classmethod
    def member(cls, member_id: int) -> Subject:
        return cls("member", member_id)

    @classmethod
    def of_event(cls, row: _HasSubject) -> Subject:
        """The subject of a history row, adjustment or event (whichever of its two columns is set)."""
        if row.branch_id is not None:
            return cls("branch", row.branch_id)
        assert row.member_id is not None
        return cls("member", row.member_id)


__all__ = ["KINDS", "Kind", "Subject"]
