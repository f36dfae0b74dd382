"""Turn a failing step's output into the known cause and its fix.

Each pattern is a failure people meet on today's toolchains (see docs/build.md).
"""

from __future__ import annotations

import re

KNOWN = (
    (r"No module name specified using %module or -module",
     "swig was run without -module ESL, and FreeSWITCH's libs/esl/ESL.i has no %module line",
     "Give swig -module ESL as FreeSWITCH's Makefiles do (eslkit's own steps always do)."),
    (r"Python\.h: No such file",
     "the target Python's headers (Python.h) are missing",
     "Install them: apt-get install python3.X-dev (X = the target's minor version), or dnf install python3-devel."),
    (r"esl\.h: No such file",
     "libesl's headers are not where the Makefile looks: the tree was probably moved after ./configure",
     "Re-run ./configure in the tree's current place, or use --mode standalone."),
    (r"Deprecated command line option: -classic|-classic.*no longer available",
     "a FreeSWITCH Makefile passed -classic, which swig 4 rejects",
     "Let eslkit render libs/esl/python3/Makefile (--mode py3mod), or use --mode standalone."),
    (r"No module named '?distutils'?",
     "a script imports distutils, which Python 3.12 removed",
     "Let eslkit render libs/esl/python3/python-config (sysconfig based), or use --mode standalone."),
    (r"cannot find -lpython",
     "the link asked for libpython, which static and 'm'-ABI Pythons do not ship",
     "Do not link libpython into an extension module; eslkit's templates and standalone mode never do."),
    (r"swig3\.0: (command )?not found|swig3\.0: No such file",
     "the Makefile calls swig3.0, which current distributions no longer ship",
     "Use eslkit's rendered Makefile (swig >= 4, no -classic), or --mode standalone."),
    (r"No rule to make target '?py3mod'?",
     "libs/esl/Makefile has no py3mod target",
     "Run eslkit build --mode py3mod (it adds the target) or --mode standalone."),
    (r"No rule to make target .*libesl",
     "libesl could not be built by the configured Makefile (libtool or configure state is missing)",
     "Run ./configure && make in the tree first, or use --mode standalone."),
    (r"Permission denied",
     "a file could not be written",
     "Run eslkit as the tree's owner or make the tree writable."),
    (r"(error|Error):",
     "the compiler reported an error",
     "Read the error lines above; `eslkit doctor` checks the compilers and headers."),
)


def diagnose(output: str) -> tuple:
    """(cause, fix) for the first known pattern in ``output``, else (None, None)."""
    for pattern, cause, fix in KNOWN:
        if re.search(pattern, output):
            return cause, fix
    return None, None
