"""The floor for the popup latency figure: a bare blocking socket that prints a
line (call number, Event-Sequence) the moment it has read each event of a
watched call, parsing nothing else.  What it measures is this machine and its
scheduler.

    python latency_anchor.py PORT
"""

from __future__ import annotations

import json
import socket
import sys


def main() -> None:
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    state = 0  # 0 greeting, 1 auth reply, 2 event reply, 3 events
    pos = 0
    while True:
        end = buf.find(b"\n\n", pos)
        if end < 0:
            data = sock.recv(65536)
            if not data:
                return
            del buf[:pos]
            pos = 0
            buf += data
            continue
        head = bytes(buf[pos:end])
        i = head.find(b"Content-Length: ")
        length = int(head[i + 16:].split(b"\n", 1)[0]) if i >= 0 else 0
        while len(buf) < end + 2 + length:
            data = sock.recv(65536)
            if not data:
                return
            buf += data
        body = bytes(buf[end + 2:end + 2 + length])
        pos = end + 2 + length
        if state == 0:
            sock.sendall(b"auth ClueCon\n\n")
        elif state == 1:
            sock.sendall(b"event plain ALL\n\n")
        state = min(state + 1, 3)
        if state < 3 or not body:
            continue
        # The call number is in every UUID, Core-UUID included (see benchmarks/scenario.py).
        j = body.find(b"Core-UUID: ")
        q = body.find(b"\nEvent-Sequence: ")
        if j < 0 or q < 0:
            continue
        k = int(body[j + 11:j + 19], 16)
        if k < 0x80000000:  # a watched call, not background
            seq = int(body[q + 17:body.find(b"\n", q + 17)])
            sys.stdout.write(json.dumps({"call": k, "seq": seq}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
