"""Many agents' pages at once: one Server-Sent Events stream per extension from `eslkit serve`.

    python agents.py URL TOKENS.json --seconds 20

TOKENS.json maps each extension to its API token (sent as ``Authorization: Bearer``, as a
CRM does).  Every stream is opened at once; when all are connected (their first
``snapshot`` read) the client prints ``{"ready": ...}`` and then, ``--seconds`` later, one
JSON line: when (``time.monotonic()``, shared with the other processes of the benchmark)
each leg first showed ``ringing`` on its extension's stream, and how many snapshots came
after the first (a stream that fell behind is sent a fresh snapshot: what it lost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp


class Agent:
    def __init__(self, ext: str):
        self.ext = ext
        self.snapshots = 0
        self.messages = 0
        self.ringing: dict[str, float] = {}  # leg uuid -> when its ringing card arrived

    async def run(self, session: aiohttp.ClientSession, url: str, token: str, connected: asyncio.Event,
                  ready: list) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        async with session.get(f"{url}/api/agent/{self.ext}/events", headers=headers) as response:
            response.raise_for_status()
            name = ""
            async for line in response.content:
                now = time.monotonic()
                if line.startswith(b"event: "):
                    name = line[7:].strip().decode()
                elif line.startswith(b"data: "):
                    self.messages += 1
                    if name == "snapshot":
                        self.snapshots += 1
                        if self.snapshots == 1:
                            ready.append(self.ext)
                            if len(ready) - 1 == ready[0]:
                                connected.set()
                    elif name == "leg" and b'"state":"ringing"' in line:
                        record = json.loads(line[6:])
                        self.ringing.setdefault(record["leg_uuid"], now)


async def main(url: str, tokens: dict, seconds: float) -> dict:
    agents = [Agent(ext) for ext in tokens]
    connected = asyncio.Event()
    ready: list = [len(agents)]  # the count wanted, then the extensions connected
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        t0 = time.monotonic()
        tasks = [asyncio.ensure_future(a.run(session, url, tokens[a.ext], connected, ready)) for a in agents]
        try:
            await asyncio.wait_for(connected.wait(), 120)
        except asyncio.TimeoutError:
            pass
        print(json.dumps({"ready": len(ready) - 1, "seconds": time.monotonic() - t0}), flush=True)
        await asyncio.sleep(seconds)
        errors = [repr(t.exception())[:200] for t in tasks if t.done() and t.exception()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": len(agents), "connected": len(ready) - 1, "errors": errors[:5], "failed": len(errors),
        "messages": sum(a.messages for a in agents),
        "resyncs": sum(max(0, a.snapshots - 1) for a in agents),
        "ringing": [[a.ext, uuid, t] for a in agents for uuid, t in a.ringing.items()],
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("tokens")
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    with open(args.tokens) as f:
        result = asyncio.run(main(args.url, json.load(f), args.seconds))
    print(json.dumps(result))
    sys.exit(0)
