"""The read-ahead thread of the streaming exports: order, errors, early stops, context, bounds."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from fivestar.read_ahead import read_ahead

current = contextvars.ContextVar("current", default="unset")


def test_items_arrive_in_order_from_another_thread() -> None:
    consumer = threading.get_ident()
    seen_on: set[int] = set()

    def batches() -> Iterator[int]:
        for number in range(50):
            seen_on.add(threading.get_ident())
            yield number

    with read_ahead(batches(), depth=3) as items:
        assert list(items) == list(range(50))
    assert seen_on and consumer not in seen_on


def test_the_producers_error_is_raised_in_the_consumer_after_what_came_before() -> None:
    def batches() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("the database went away")

    got: list[int] = []
    with pytest.raises(LookupError, match="went away"), read_ahead(batches()) as items:
        for item in items:
            got.append(item)
    assert got == [1, 2]


def test_leaving_early_stops_the_producer_and_closes_its_generator_on_its_thread() -> None:
    closed_on: list[int] = []
    produced: list[int] = []

    def batches() -> Iterator[int]:
        try:
            for number in range(10_000):
                produced.append(number)
                yield number
        finally:
            closed_on.append(threading.get_ident())

    with pytest.raises(RuntimeError), read_ahead(batches(), depth=2) as items:
        for item in items:
            if item == 3:
                raise RuntimeError("the writer failed")
    # The block has returned: the thread is joined and the generator's cleanup ran there.
    assert closed_on and closed_on[0] != threading.get_ident()
    assert not any(thread.name == "fivestar-read-ahead" for thread in threading.enumerate())
    # Never more than `depth` (+ the one being handed over, + the one taken) ahead of the consumer.
    assert len(produced) <= 4 + 3


def test_the_producer_stays_at_most_depth_ahead_of_a_slow_consumer() -> None:
    produced: list[int] = []

    def batches() -> Iterator[int]:
        for number in range(100):
            produced.append(number)
            yield number

    with read_ahead(batches(), depth=2) as items:
        first = next(items)
        time.sleep(0.3)  # plenty of time to run ahead, were it unbounded
        assert first == 0
        assert len(produced) <= 1 + 2 + 1
        assert list(items) == list(range(1, 100))


def test_context_variables_of_the_consumer_hold_on_the_producing_thread() -> None:
    def batches() -> Iterator[str]:
        yield current.get()

    token = current.set("tenant 7")
    try:
        with read_ahead(batches()) as items:
            assert list(items) == ["tenant 7"]
    finally:
        current.reset(token)


def test_an_empty_source_ends_at_once() -> None:
    with read_ahead(iter(())) as items:
        assert list(items) == []
