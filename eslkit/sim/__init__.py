"""The simulated switch (`eslkit sim`): a FreeSWITCH-shaped event socket with recorded calls.

    from eslkit.sim import SimServer

    async with SimServer(port=0, scenario="queue", speed=None) as server:
        ...  # connect to server.host, server.port with password "ClueCon"
"""

from __future__ import annotations

from eslkit.sim.scenarios import LoadSpec, Scenario, load_scenario
from eslkit.sim.server import SimServer

__all__ = ["SimServer", "Scenario", "LoadSpec", "load_scenario"]
