"""The C ESL module (SWIG): recvEvent + getHeader, the anchor every ratio is taken against.

    PYTHONPATH=<dir with ESL.py and _ESL*.so> python c_esl.py PORT COUNT expected.json [--json]
    python c_esl.py PORT COUNT expected.json --pure [--json]

With ``--json`` it does what the usual Python examples do instead:
``json.loads(event.serialize("json"))`` and reads the dict.  With ``--pure`` the very
same loop runs on eslkit's pure-Python ESL module (`eslkit.ESL`).
"""

from __future__ import annotations

import json
import sys

if "--pure" in sys.argv:
    from eslkit import ESL
else:
    import ESL

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import Checker  # noqa: E402


def main() -> None:
    as_json = "--json" in sys.argv
    argv = [a for a in sys.argv[1:] if a not in ("--json", "--pure")]
    port, count, expected = argv[0], int(argv[1]), argv[2]
    check = Checker(expected, count)
    con = ESL.ESLconnection("127.0.0.1", port, "ClueCon")
    if not con.connected():
        sys.exit(f"{ESL.__name__} module: cannot connect")
    con.events("plain", "ALL")
    done = False
    while not done:
        event = con.recvEvent()
        if event is None:
            break
        if as_json:
            d = json.loads(event.serialize("json"))
            done = check.check(d.get("Event-Name"), d.get("Unique-ID"))
        else:
            done = check.check(event.getHeader("Event-Name"), event.getHeader("Unique-ID"))
    check.result()
    con.disconnect()


if __name__ == "__main__":
    main()
