"""A bare Python socket reading the same bytes and counting frames: the ceiling.

It finds each header block, reads Content-Length and skips the body; it
decodes nothing, so it only says how fast bytes can cross into Python.
"""

from __future__ import annotations

import json
import socket
import sys
import time

from _common import parse_args


def main() -> None:
    args = parse_args(__doc__)
    sock = socket.create_connection((args.host, args.port))
    buf = bytearray()

    def frames():
        """Yield (header block, body) of each frame as bytes arrive."""
        pos = 0
        while True:
            end = buf.find(b"\n\n", pos)
            if end < 0:
                chunk = sock.recv(262144)
                if not chunk:
                    return
                del buf[:pos]
                pos = 0
                buf.extend(chunk)
                continue
            head = bytes(buf[pos:end])
            i = head.find(b"Content-Length: ")
            length = int(head[i + 16:head.find(b"\n", i) if head.find(b"\n", i) > 0 else None]) if i >= 0 else 0
            while len(buf) < end + 2 + length:
                chunk = sock.recv(262144)
                if not chunk:
                    return
                buf.extend(chunk)
            yield head, end + 2 + length
            pos = end + 2 + length

    it = frames()
    next(it)  # auth/request
    sock.sendall(b"auth ClueCon\n\n")
    next(it)
    sock.sendall(b"event plain ALL\n\n")
    next(it)
    count = 0
    t0 = None
    for head, _ in it:
        if t0 is None:
            t0 = time.perf_counter()
        count += 1
        if count >= args.count:
            break
    seconds = time.perf_counter() - t0 if t0 else None
    sys.stdout.write(json.dumps({"events": count, "errors": 0, "first_error": None,
                                 "client_seconds": seconds, "checked": False}) + "\n")
    sock.close()


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    main()
