"""The toolchain: swig (>= 4), gcc, g++ and make, found on PATH or given."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from eslkit.build.identity import binary_key
from eslkit.errors import ToolMissing

MIN_SWIG = (4, 0)
ABI3_SWIG = (4, 2)  # first swig whose Python wrappers build against the limited API
# FreeSWITCH's libs/esl/ESL.i has no %module line (1.6 to master): its Makefiles
# name the module on swig's command line, and so does every swig eslkit runs.
SWIG_ARGS = ("-module", "ESL", "-python", "-c++", "-DMULTIPLICITY", "-threads")


@dataclass(frozen=True)
class Swig:
    path: str
    version: str
    # What the version depends on (identity.binary_key), kept with it in the journal.
    identity: Optional[list] = field(default=None, compare=False, repr=False)

    @property
    def version_tuple(self) -> tuple:
        return tuple(int(p) for p in re.findall(r"\d+", self.version)[:3])


def swig_version(path: str) -> Optional[str]:
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"SWIG Version\s+(\S+)", out)
    return match.group(1) if match else None


def find_swig(given: Optional[str] = None, known: Optional[dict] = None) -> Swig:
    """swig >= 4 (``--swig`` first, then swig, swig4.0 on PATH).

    ``known``: ``{"path", "version", "identity"}`` from an earlier run (the build
    journal keeps one); its version is reused while that swig binary is unchanged.
    """
    candidates = [given] if given else ["swig", "swig4.0"]
    seen = []
    for name in candidates:
        path = shutil.which(name) if os.sep not in name else (name if os.access(name, os.X_OK) else None)
        if not path:
            continue
        path = str(Path(path).absolute())
        key = binary_key(path)
        if key is not None and known and known.get("path") == path and known.get("identity") == key:
            version = known.get("version")
        else:
            version = swig_version(path)
        seen.append((path, version))
        if version and Swig(path, version).version_tuple >= MIN_SWIG:
            return Swig(path, version, identity=key)
    if seen:
        path, version = seen[0]
        raise ToolMissing(
            f"{path} is SWIG {version or 'of unknown version'}; the Python 3 wrapper needs SWIG 4 or newer.",
            fix="apt-get install swig (4.x on current distros) or pip install swig, then give --swig PATH if needed.",
        )
    raise ToolMissing(
        f"swig was not found{' at ' + given if given else ' on PATH'}.",
        fix="apt-get install swig, or pip install swig (then --swig $(python3 -m site --user-base)/bin/swig).",
    )


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        package = "make" if name == "make" else "build-essential (gcc and g++)"
        raise ToolMissing(f"{name} was not found on PATH.", fix=f"apt-get install {package} (or dnf install gcc gcc-c++ make).")
    return path
