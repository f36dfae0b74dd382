"""greenswitch (gevent): a handler on every event; runs in the benchmark virtualenv."""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import greenswitch  # noqa: E402

from _common import Checker, parse_args  # noqa: E402


def main() -> None:
    args = parse_args(__doc__)
    check = Checker(args.expected, args.count)
    done = gevent.event.Event()

    def on_event(event):
        if check.check(event.headers.get("Event-Name"), event.headers.get("Unique-ID")):
            done.set()

    fs = greenswitch.InboundESL(host=args.host, port=args.port, password="ClueCon")
    fs.connect()
    fs.register_handle("*", on_event)
    fs.send("event plain ALL")
    done.wait()
    check.result()
    fs._run = False
    fs.sock.close()


if __name__ == "__main__":
    main()
