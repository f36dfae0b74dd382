"""genesis (asyncio): a coroutine handler on every event; runs in the benchmark virtualenv."""

from __future__ import annotations

import asyncio

from _common import Checker, parse_args

from genesis import Inbound


async def run(args) -> None:
    check = Checker(args.expected, args.count)
    done = asyncio.Event()

    async def on_event(event):
        if not done.is_set() and check.check(event.get("Event-Name"), event.get("Unique-ID")):
            done.set()

    client = Inbound(args.host, args.port, "ClueCon")
    await client.start()
    client.on("*", on_event)
    await client.send("event plain ALL")
    await done.wait()
    check.result()
    client.writer.close()


if __name__ == "__main__":
    asyncio.run(run(parse_args(__doc__)))
