"""Errors of the rule engine.

Every problem is reported with the exact place it was found (a dotted path such as
``branch.indicators[2].criteria[0].points``) and a reason in Chinese followed by English, because the
people who fix a rule file or a score sheet are committee staff who read Chinese first.  Loaders and
evaluators collect *all* problems before raising, so one run of ``fivestar rules check`` shows every
mistake in a file instead of making the user fix them one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["InputError", "RuleError", "RuleSetError", "bilingual"]


def bilingual(zh: str, en: str) -> str:
    """Join a Chinese and an English message in the house style ``中文 (English)``."""
    return f"{zh} ({en})"


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem: where (``path``) and why (``message``, Chinese then English in brackets)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _render(errors: Iterable[RuleError]) -> str:
    return "\n".join(str(e) for e in errors)


class RuleSetError(ValueError):
    """A rule-set document is invalid; ``errors`` lists every problem found, in document order."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors: list[RuleError] = list(errors)
        super().__init__(_render(self.errors))


class InputError(ValueError):
    """Scores or answers given to an evaluator do not fit the rules (unknown key, out of range, a float…).

    A ``ValueError`` so that web forms can catch it generically; ``errors`` carries one entry per bad
    field with a path such as ``scores.leadership.secretary``.
    """

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors: list[RuleError] = list(errors)
        super().__init__(_render(self.errors))
