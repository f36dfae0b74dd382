"""The board behind the agent pages: cards, the day's calls, and a stream per reader that
never holds up the tracker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime

from eslkit.calls import LegView, popup_record
from eslkit.status import ConnectionStatus
from eslkit.web.board import CLOCK_EVERY, QUEUE_SIZE, CallBoard, encode

NOON = datetime(2026, 3, 2, 12, 0, 0).timestamp()


def leg(ext="1001", state="ringing", uuid="leg-1", at=NOON, **kw) -> LegView:
    extra = {"ended_at": at, "outcome": "answered"} if state == "ended" else {}
    return LegView(ext=ext, state=state, leg_uuid=uuid, call_uuid="call-" + uuid, time=at, created=at - 5,
                   caller_number="6208", caller_name="Caller 6208", **{**extra, **kw})


def test_cards_are_the_calls_up_and_those_ended_in_the_last_30_seconds():
    now = [NOON]
    board = CallBoard(["1001"], now=lambda: now[0])
    board.publish(leg(uuid="a", state="ended", at=NOON - 40))
    board.publish(leg(uuid="b", state="ended", at=NOON - 10))
    board.publish(leg(uuid="c", state="answered"))
    assert [x.leg_uuid for x in board.calls("1001")] == ["c", "b"]
    now[0] += 25
    assert [x.leg_uuid for x in board.calls("1001")] == ["c"]
    assert [x["leg_uuid"] for x in board.day("1001")] == ["b", "a"]
    board.publish(leg(uuid="b", state="ended", at=NOON - 10))  # told twice: still one call
    assert [x["leg_uuid"] for x in board.day("1001")] == ["b", "a"]


def test_the_day_starts_at_midnight():
    now = [NOON]
    board = CallBoard(["1001"], now=lambda: now[0])
    board.publish(leg(uuid="yesterday", state="ended", at=NOON - 13 * 3600))
    board.publish(leg(uuid="today", state="ended", at=NOON - 3600))
    assert [x["leg_uuid"] for x in board.day("1001")] == ["today"]


def test_extensions_nobody_may_see_are_not_kept():
    board = CallBoard(["1001"], now=lambda: NOON)
    board.publish(leg(ext="1002"))
    assert board.calls("1002") == [] and board.published == 0


def test_each_stream_gets_a_snapshot_then_only_its_extensions():
    async def main():
        board = CallBoard(["1001", "1002"], now=lambda: NOON, crm_url=lambda x: f"https://crm/{x.caller_number}")
        async with board.subscribe(["1001"]) as one, board.subscribe(["1002"]) as two:
            board.publish(leg(ext="1001"))
            board.publish(ConnectionStatus("disconnected", "switch gone"))
            board.close()
            got_one = [(name, json.loads(data)) async for name, data in one]
            got_two = [(name, json.loads(data)) async for name, data in two]
        assert [name for name, _ in got_one] == ["snapshot", "crm", "since", "leg", "link"]
        assert got_one[1][1] == {"leg_uuid": "leg-1", "url": "https://crm/6208"}
        assert got_one[2][1] == {"leg_uuid": "leg-1", "since": NOON - 5}
        assert got_one[3][1] == popup_record(leg(ext="1001"))
        assert got_one[4][1] == {"connected": False, "text": "switch gone"}
        assert [name for name, _ in got_two] == ["snapshot", "link"]
    asyncio.run(main())


def test_a_cards_timer_starts_at_the_ring_then_at_the_answer_and_runs_on_through_a_hold():
    async def main():
        board = CallBoard(["1001"], now=lambda: NOON + 60)
        async with board.subscribe(["1001"]) as reader:
            board.publish(leg())  # rang at NOON - 5
            board.publish(leg(state="answered", at=NOON + 3, answered_at=NOON + 3))
            board.publish(leg(state="answered", at=NOON + 20, answered_at=NOON + 3, on_hold=True))
            board.publish(leg(state="answered", at=NOON + 30, answered_at=NOON + 3, on_hold=False))
            assert board.snapshot(["1001"])["since"] == {"leg-1": NOON + 3}
            board.publish(leg(state="ended", at=NOON + 40, answered_at=NOON + 3))
            assert board.snapshot(["1001"])["since"] == {}
            board.close()
            got = [(name, json.loads(data)) async for name, data in reader]
        assert [data["since"] for name, data in got if name == "since"] == [NOON - 5, NOON + 3]
        assert [name for name, _ in got].count("leg") == 5
    asyncio.run(main())


def test_a_reader_that_falls_behind_gets_a_fresh_snapshot_not_a_growing_queue():
    async def main():
        board = CallBoard(["1001"], now=lambda: NOON)
        async with board.subscribe(["1001"]) as slow:
            for i in range(QUEUE_SIZE * 3):
                board.publish(leg(uuid=f"leg-{i}", state="answered"))
            assert slow.queue.qsize() <= QUEUE_SIZE and slow.resyncs >= 2
            board.close()
            got = [(name, json.loads(data)) async for name, data in slow]
        snapshots = [data for name, data in got if name == "snapshot"]
        assert len(snapshots[-1]["calls"]) == QUEUE_SIZE * 3 - 0  # the whole state, once
    asyncio.run(main())


def test_the_json_carries_no_markup_and_no_raw_control_character():
    text = encode({"caller_name": "<script>x</script>&\u202e\x1b[2J"})
    assert text.isascii() and "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"caller_name": "<script>x</script>&\u202e\x1b[2J"}


def test_the_day_lists_are_bounded_on_the_whole_board_oldest_first():
    # A thousand agents' day must not grow without end: day_bytes in all, the board's
    # oldest going first, each extension's newest kept.
    one = CallBoard(["1001"], now=lambda: NOON)
    one.publish(leg(uuid="c00", state="ended", at=NOON - 100))
    cost = one.day_bytes  # one call's entry (all the calls below take the same)
    now = [NOON]
    board = CallBoard(["1001", "1002", "1003"], now=lambda: now[0], day_size=4, day_bytes=6 * cost + cost // 2)
    for i in range(30):
        ext = ("1001", "1002", "1003")[i % 3] if i < 20 else "1001"
        board.publish(leg(ext=ext, uuid=f"c{i:02}", state="ended", at=NOON - 100 + i))
    days = {ext: [x["leg_uuid"] for x in board.day(ext)] for ext in board.exts}
    assert sum(map(len, days.values())) == 6 and board.day_bytes == 6 * cost
    assert days["1001"] == ["c29", "c28", "c27", "c26"]  # its own bound: day_size
    assert days["1002"] == ["c19"] and days["1003"] == ["c17"]  # the board's oldest went first
    for i in range(100):  # one busy extension, past its own bound again and again
        board.publish(leg(ext="1001", uuid=f"d{i:03}", state="ended", at=NOON - 50 + i * 0.1))
    assert [len(board.day(ext)) for ext in board.exts] == [4, 1, 1]
    assert len(board._ended_order) <= 2 * 6 + 64  # what remembers the order is bounded too


def test_a_day_entry_is_compact_and_gives_back_the_record():
    # 20,000 calls a day on a board: each kept as its record's values in JSON (~500 bytes with
    # what holds them), not as a LegView and its strings (~800); the record comes back whole.
    board = CallBoard(["1001"], now=lambda: NOON)
    ended = leg(uuid="6b1c1f5e-0d33-4f39-9a4e-3f0f2a1b9c77", state="ended", at=NOON - 60, answered_at=NOON - 58,
                queue="support@default", hangup_cause="NORMAL_CLEARING", other_name="Zoë <b>&",
                contact={"name": "Zoë", "url": "https://crm/1"})
    board.publish(ended)
    assert board.day("1001") == [popup_record(ended)]
    assert board.snapshot(["1001"])["day"] == [popup_record(ended)]
    assert board.day_held == 1 and board.day_bytes < 600


def test_a_closed_stream_is_forgotten_by_every_extension_it_read():
    async def main():
        board = CallBoard([str(1001 + i) for i in range(100)], now=lambda: NOON)
        for i in range(3):
            async with board.subscribe(board.exts) as stream:
                board.publish(leg(ext="1050", uuid=f"leg-{i}"))
                assert stream.queue.qsize() == 3  # snapshot, since, leg
        assert board.streams == 0
        assert sum(len(readers) for readers in board._readers.values()) == 0

    asyncio.run(main())


def test_streams_opened_together_get_their_clocks_spread_out_not_all_at_once():
    async def main():
        board = CallBoard(["1001"], now=lambda: NOON)
        async with contextlib.AsyncExitStack() as opened:
            streams = [await opened.enter_async_context(board.subscribe(["1001"])) for _ in range(300)]
            starts = sorted(s.clock_at for s in streams)
            assert starts[-1] - starts[0] > CLOCK_EVERY / 2  # a thousand browsers back after a restart
            board.tick()
            assert all(s.queue.qsize() == 1 for s in streams)  # nothing due yet: the snapshot only
            due = streams[:7]
            for s in due:
                s.clock_at = time.monotonic() - 1
            board.tick()
            clocked = [s for s in streams if s.queue.qsize() == 2]
            assert clocked == due
            assert all(s.clock_at > time.monotonic() + CLOCK_EVERY - 1 for s in due)  # next in 15 s
            board.tick()
            assert sum(s.queue.qsize() for s in streams) == 300 + 7

    asyncio.run(main())
