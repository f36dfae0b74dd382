#!/usr/bin/env python3
"""The article's second program: a few headers of every originate and answer.

Written for the C ESL module; runs unchanged on eslkit's pure one.  The port comes
from ESL_PORT (default 8021) so that a test can point it at a simulated switch.
"""
import os

import ESL


def display(e):
    print("Event: %s" % e.getHeader("Event-Name"))
    print("  Unique-ID:    %s" % e.getHeader("Unique-ID"))
    print("  Direction:    %s" % e.getHeader("Call-Direction"))
    print("  Caller:       %s <%s>" % (e.getHeader("Caller-Caller-ID-Name"), e.getHeader("Caller-Caller-ID-Number")))
    print("  Destination:  %s" % e.getHeader("Caller-Destination-Number"))
    print("  Channel:      %s" % e.getHeader("Channel-Name"))
    print("  Answer-State: %s" % e.getHeader("Answer-State"))


con = ESL.ESLconnection("127.0.0.1", os.environ.get("ESL_PORT", "8021"), "ClueCon")
if con.connected():
    con.events("plain", "CHANNEL_ORIGINATE CHANNEL_ANSWER")
    while 1:
        e = con.recvEvent()
        if e:
            display(e)
