"""The relay's outbox: bounded, ordered, drops the oldest and counts it."""

from __future__ import annotations

import threading
import time

import pytest

from eslkit.brokers.buffer import Buffer


def test_full_buffer_drops_the_oldest_and_counts():
    buf: Buffer[int] = Buffer(3)
    assert [buf.put(i) for i in range(5)] == [None, None, None, 0, 1]
    assert buf.dropped == 2 and buf.added == 5 and len(buf) == 3 and buf.high_water == 3
    assert [buf.take(0) for _ in range(4)] == [2, 3, 4, None]


def test_put_back_keeps_order_and_the_bound():
    buf: Buffer[int] = Buffer(4)
    for i in range(4):
        buf.put(i)
    taken = buf.take_many(2)
    assert taken == [0, 1]
    buf.put(4)
    buf.put(5)
    # The broker did not confirm 0 and 1: they go back in front, and the bound drops the oldest.
    buf.put_back(taken)
    assert buf.peek_all() == [2, 3, 4, 5] and buf.dropped == 2


def test_take_waits_for_a_put_from_another_thread_and_close_wakes_it():
    buf: Buffer[str] = Buffer(10)
    threading.Timer(0.05, buf.put, args=("x",)).start()
    start = time.monotonic()
    assert buf.take(5) == "x" and time.monotonic() - start < 2
    threading.Timer(0.05, buf.close).start()
    start = time.monotonic()
    assert buf.take(5) is None and time.monotonic() - start < 2


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        Buffer(0)
