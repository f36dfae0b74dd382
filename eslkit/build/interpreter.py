"""The target interpreter: the Python that will `import ESL`.

It may differ from the one running eslkit, so everything comes from its own
sysconfig, asked in a subprocess.  Never distutils (gone in 3.12).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

from eslkit.build.identity import binary_key, pyenv_shim_key, stat_key
from eslkit.errors import PythonHeadersMissing

# -I: ignore PYTHON* variables and the user site; the answer must describe
# the interpreter as `import ESL` will later see it.  Not -S: site.py is what
# sets a virtualenv's sys.prefix, and with it platlib.
_PROBE = r"""
import sys, sysconfig, json
paths = sysconfig.get_paths()
v = sysconfig.get_config_var
print(json.dumps({
    "executable": sys.executable,
    "version": "%d.%d" % sys.version_info[:2],
    "version_full": "%d.%d.%d" % sys.version_info[:3],
    "include": paths["include"],
    "platinclude": paths.get("platinclude") or paths["include"],
    "platlib": paths["platlib"],
    "ext_suffix": v("EXT_SUFFIX") or ".so",
    "soabi": v("SOABI") or "",
    "platform": sysconfig.get_platform(),
    "in_venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
    "implementation": sys.implementation.name,
}))
"""


@dataclass(frozen=True)
class Target:
    executable: str
    version: str
    version_full: str
    include: str
    platinclude: str
    platlib: str
    ext_suffix: str
    soabi: str
    platform: str
    in_venv: bool
    implementation: str
    # What the facts depend on (see identity()), kept with them in the journal; not a fact.
    identity: Optional[list] = field(default=None, compare=False, repr=False)

    @property
    def module_name(self) -> str:
        return "_ESL" + self.ext_suffix

    @property
    def has_headers(self) -> bool:
        return (Path(self.include) / "Python.h").is_file()

    @property
    def dev_package(self) -> str:
        return f"python{self.version}-dev"

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in FACTS}


FACTS = tuple(f.name for f in fields(Target) if f.name != "identity")


def default_python() -> str:
    """The active virtualenv's python, else python3 on PATH."""
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and (Path(venv) / "bin" / "python").exists():
        return str(Path(venv) / "bin" / "python")
    found = shutil.which("python3")
    if not found:
        raise PythonHeadersMissing("No python3 on PATH and no --python given.",
                                   fix="Give the interpreter to build for with --python PATH.")
    return found


def resolve(python: Optional[str] = None) -> str:
    """The interpreter's absolute path (venv symlinks kept: they decide sys.prefix)."""
    python = python or default_python()
    exe = shutil.which(python) if os.sep not in python else python
    if not exe or not os.access(exe, os.X_OK):
        raise PythonHeadersMissing(f"The target interpreter {python} does not exist or is not executable.",
                                   fix="Give an existing interpreter with --python PATH (e.g. $(pyenv prefix 3.12.1)/bin/python3).")
    return str(Path(exe).absolute())


def identity(exe: str, executable: Optional[str] = None) -> Optional[list]:
    """What the probe's answer depends on, when stat() can tell; else None (always ask).

    A binary, or a venv's symlink to one: the file it runs and the venv's
    pyvenv.cfg.  A pyenv shim: what pyenv reads to choose a version, plus the
    binary it chose (``executable``, the probe's sys.executable).  Any other
    script may pick another Python at every call.
    """
    binary = binary_key(exe)
    if binary is not None:
        return [exe, binary, stat_key(Path(exe).parent.parent / "pyvenv.cfg")]
    shim = pyenv_shim_key(exe)
    chosen = binary_key(executable) if executable else None
    if shim is not None and chosen is not None:
        return [exe, shim, executable, chosen]
    return None


def _target(facts: dict, key: Optional[list]) -> Target:
    return Target(**{k: facts[k] for k in FACTS}, identity=key)


def probe(python: Optional[str] = None, known: Optional[dict] = None) -> Target:
    """Ask the interpreter about itself (a 20-60 ms subprocess, ~150 ms through a pyenv shim).

    ``known``: ``{"identity": ..., "facts": ...}`` from an earlier probe (the build
    journal keeps one); reused while the interpreter's identity is unchanged, so an
    up-to-date build need not start the interpreter at all.
    """
    exe = resolve(python)
    if known and known.get("identity") is not None:
        try:
            if known["identity"] == identity(exe, known["facts"]["executable"]):
                return _target(known["facts"], known["identity"])
        except (KeyError, TypeError):
            pass  # an older journal: ask again
    before = binary_key(exe) or pyenv_shim_key(exe)
    try:
        proc = subprocess.run([exe, "-I", "-c", _PROBE], capture_output=True, text=True,
                              timeout=30, check=False)
        facts = json.loads(proc.stdout)
        # The interpreter's own sys.executable: a pyenv shim resolves to the real
        # python (a shim may pick another version later), a venv keeps its bin/python.
        facts["executable"] = facts.get("executable") or exe
        key = identity(exe, facts["executable"])
        if key is not None and key[1] != before:  # it changed while we asked: ask again next time
            key = None
        return _target(facts, key)
    except (OSError, ValueError, KeyError, TypeError, subprocess.TimeoutExpired) as exc:
        raise PythonHeadersMissing(
            f"Cannot ask {exe} about itself ({exc.__class__.__name__}); it is not a working Python 3.",
            fix="Give a working Python 3 interpreter with --python PATH.",
        ) from None


def require_headers(target: Target) -> None:
    if not target.has_headers:
        raise PythonHeadersMissing(
            f"Python.h for Python {target.version} is missing (looked in {target.include}).",
            fix=f"Install the headers: apt-get install {target.dev_package} (or dnf install python3-devel).",
        )
