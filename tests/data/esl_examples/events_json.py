#!/usr/bin/env python3
"""The article's first program: print every event the switch sends, as JSON.

Written for the C ESL module; runs unchanged on eslkit's pure one.  The port comes
from ESL_PORT (default 8021) so that a test can point it at a simulated switch.
"""
import os

import ESL

con = ESL.ESLconnection('127.0.0.1', os.environ.get('ESL_PORT', '8021'), 'ClueCon')
con.events('json', 'all')
while 1:
    e = con.recvEvent()
    if e:
        print(e.serialize('json'))
