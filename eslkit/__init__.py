"""eslkit: a toolkit for FreeSWITCH's event socket."""

__version__ = "0.1.0"
