"""eslkit's asyncio `Connection`, used directly: the client-level figure.

Reads `Event-Name` and `Unique-ID` of every event, as target 1 asks of watch.
"""

from __future__ import annotations

import asyncio

from _common import Checker, parse_args

from eslkit.client import Connection


async def run(args) -> None:
    check = Checker(args.expected, args.count)
    conn = Connection(args.host, args.port, "ClueCon")
    await conn.connect()
    await conn.subscribe(["ALL"], format="plain")
    async for event in conn.events():
        if check.check(event.get("Event-Name"), event.get("Unique-ID")):
            break
    check.result(dropped=conn.dropped)
    await conn.close()


if __name__ == "__main__":
    asyncio.run(run(parse_args(__doc__)))
