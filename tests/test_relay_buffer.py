"""The relay's outbox: bounded, ordered, drops the oldest and counts it."""

from __future__ import annotations

import threading
import time

import pytest

from eslkit.brokers.buffer import Buffer, Message, message_size


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


# --- the byte bound (--buffer-bytes) -------------------------------------------------------


def msg(n: int, size: int) -> Message:
    """A message of exactly ``size`` bytes as the outbox counts them (payload and address)."""
    address = f"t/{n}"
    return Message(address, b"x" * (size - len(address)))


def test_message_size_is_its_payload_and_its_address():
    assert message_size(Message("freeswitch/vm/events/CHANNEL_ANSWER/1001", b"{}" * 100)) == 40 + 200
    assert message_size(msg(7, 1000)) == 1000


def test_the_byte_bound_drops_the_oldest_counts_and_keeps_a_running_total():
    buf: Buffer[Message] = Buffer(100, max_bytes=3000)
    put = [msg(i, 1000) for i in range(5)]
    dropped = [buf.put(m) for m in put]
    assert dropped == [None, None, None, put[0], put[1]]
    assert buf.peek_all() == put[2:] and buf.bytes == 3000 and buf.dropped == 2 and buf.added == 5
    # One big message can push out several: all counted, the oldest first.
    big = msg(5, 2500)
    assert buf.put(big) is put[2]
    assert buf.peek_all() == [big] and buf.bytes == 2500 and buf.dropped == 5
    assert buf.take(0) is big and buf.bytes == 0
    for m in put[:3]:
        buf.put(m)
    assert buf.take_many(2) == put[:2] and buf.bytes == 1000


def test_whichever_bound_is_reached_first_drops():
    by_count: Buffer[Message] = Buffer(3, max_bytes=1_000_000)
    by_bytes: Buffer[Message] = Buffer(1000, max_bytes=2500)
    for i in range(6):
        by_count.put(msg(i, 100))
        by_bytes.put(msg(i, 1000))
    assert [m.address for m in by_count.peek_all()] == ["t/3", "t/4", "t/5"] and by_count.dropped == 3
    assert [m.address for m in by_bytes.peek_all()] == ["t/4", "t/5"] and by_bytes.dropped == 4
    assert by_count.bytes == 300 and by_bytes.bytes == 2000


def test_put_back_respects_the_byte_bound_oldest_first_counted():
    buf: Buffer[Message] = Buffer(100, max_bytes=4000)
    first = [msg(i, 1000) for i in range(4)]
    for m in first:
        buf.put(m)
    taken = buf.take_many(3)  # in flight
    assert buf.bytes == 1000
    later = [msg(i, 1000) for i in range(4, 6)]
    for m in later:
        buf.put(m)
    # The broker went away before confirming 0, 1 and 2: back in front; 6000 bytes > 4000.
    buf.put_back(taken)
    assert buf.peek_all() == [first[2], first[3], *later]
    assert buf.bytes == 4000 and buf.dropped == 2


def test_a_message_larger_than_the_bound_is_kept_alone_and_sent():
    """Every message passes through the outbox, also while the broker is up: the bound drops
    the older ones for it, but never refuses the newest, or a healthy broker would lose it."""
    buf: Buffer[Message] = Buffer(100, max_bytes=1000)
    small = msg(0, 400)
    huge = msg(1, 5000)
    buf.put(small)
    assert buf.put(huge) is small
    assert buf.peek_all() == [huge] and buf.bytes == 5000 and buf.dropped == 1
    # The next message makes it the oldest over the bound: it goes, counted.
    after = msg(2, 400)
    assert buf.put(after) is huge and buf.peek_all() == [after] and buf.dropped == 2
    # Taken as any other message.
    assert buf.take(0) is after
    buf.put(huge)
    assert buf.take_many(5) == [huge] and buf.bytes == 0 and buf.dropped == 2


def test_each_message_is_sized_once_on_the_way_in_and_once_out():
    """A running total, not a recount: O(1) a put and a take, however full the outbox is."""
    sized = []

    def size(m: Message) -> int:
        sized.append(m)
        return message_size(m)

    buf: Buffer[Message] = Buffer(1000, max_bytes=50_000, size=size)
    for i in range(200):
        buf.put(msg(i, 500))
    assert len(sized) == 200 + 100  # 200 in, 100 dropped
    sized.clear()
    buf.take(0)
    buf.take_many(10)
    assert len(sized) == 11 and buf.bytes == 89 * 500


def test_the_running_total_stays_exact_across_threads():
    buf: Buffer[Message] = Buffer(10_000, max_bytes=5_000)  # ~9 messages: it drops
    taken: list[Message] = []
    done = threading.Event()

    def publisher():
        while not done.is_set() or len(buf):
            got = buf.take_many(7, timeout=0.01)
            # Like a broker loss: every fifth batch comes back to the front once.
            if got and len(taken) % 5 == 0 and got[0].kind == "event":
                buf.put_back([Message(m.address, m.payload, "again") for m in got])
                continue
            taken.extend(got)

    reader = threading.Thread(target=publisher)
    reader.start()
    for i in range(20_000):
        buf.put(msg(i, 100 + i % 900))
    done.set()
    reader.join(30)
    assert not reader.is_alive()
    assert buf.bytes == 0 and len(buf) == 0
    assert len({m.address for m in taken}) == len(taken)  # none twice
    assert len(taken) + buf.dropped == 20_000 == buf.added and buf.dropped > 0


def test_byte_bound_must_be_positive():
    with pytest.raises(ValueError):
        Buffer(10, max_bytes=0)
