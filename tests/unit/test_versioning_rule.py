"""The one optimistic-locking rule (fivestar.kernel.versioning), without a database: what a form sent
is checked strictly — nothing, garbage or an old number is stale — and only a caller that answers no
form (UNCHECKED) skips the check."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fivestar.errors import ConflictError
from fivestar.kernel.versioning import UNCHECKED, StaleEditError, expect_version, parse_version


@dataclass
class Record:
    version: int = 3


@pytest.mark.parametrize("sent", [3, "3", " 3 "])
def test_the_current_version_passes(sent: object) -> None:
    expect_version(Record(), sent)


@pytest.mark.parametrize("sent", [2, "4", None, "", "abc", "+3", "3_0", "３", True, 3.0, "-3"])
def test_anything_else_a_form_sent_is_stale(sent: object) -> None:
    with pytest.raises(StaleEditError) as refused:
        expect_version(Record(), sent)
    assert isinstance(refused.value, ConflictError) and refused.value.status == 409
    assert "已被他人修改" in refused.value.message


def test_only_a_caller_without_a_form_skips_the_check() -> None:
    expect_version(Record(), UNCHECKED)
    with pytest.raises(StaleEditError, match="另一条消息"):
        expect_version(Record(), 1, message="另一条消息")


def test_parse_version_reads_plain_digits_only() -> None:
    assert parse_version("12") == 12 and parse_version(7) == 7
    assert parse_version("1e3") is None and parse_version(False) is None
