"""Inspect a FreeSWITCH source tree: version, binding folders, configured state.

Reads files only; never writes.  The facts end up in a frozen ``Tree`` that
the planner and ``eslkit doctor`` share.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from eslkit.errors import EslSourcesMissing, NotAFreeSwitchTree

_AC_INIT = re.compile(r"AC_INIT\(\s*\[?freeswitch\]?\s*,\s*\[?([0-9][^\],)\s]*)", re.I)
_MAKE_VAR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", re.M)


@dataclass(frozen=True)
class Tree:
    root: Path                      # the FreeSWITCH tree (what --src names)
    esl: Path                       # root/libs/esl
    version: Optional[str]          # "1.10.12" (release suffixes like -release dropped)
    bindings: tuple                 # ("python",), ("python", "python3") or ("python3",)
    c_sources: tuple                # libs/esl/src/*.c, relative to esl
    include_dir: Path               # libs/esl/src/include
    configured: bool                # libs/esl/Makefile and root/libtool exist
    makefile_vars: dict = field(default_factory=dict, compare=False)
    has_py3mod_target: bool = False

    @property
    def version_tuple(self) -> tuple:
        if not self.version:
            return ()
        return tuple(int(p) for p in re.findall(r"\d+", self.version)[:3])

    @property
    def switch_srcdir(self) -> Optional[str]:
        """Where configure ran (recorded in libs/esl/Makefile)."""
        return self.makefile_vars.get("switch_srcdir")

    @property
    def recorded_python3(self) -> Optional[str]:
        return self.makefile_vars.get("PYTHON3") or None

    @property
    def moved(self) -> bool:
        """Configured somewhere else: the Makefile's absolute paths point elsewhere."""
        recorded = self.switch_srcdir
        if not self.configured or not recorded:
            return False
        try:
            return not Path(recorded).exists() or not Path(recorded).samefile(self.root)
        except OSError:
            return True

    @property
    def makefile(self) -> Path:
        return self.esl / "Makefile"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def find_version(root: Path) -> Optional[str]:
    """The release from configure.ac, else build/next-release.txt or .version."""
    match = _AC_INIT.search(_read(root / "configure.ac"))
    if match:
        return match.group(1).split("-")[0]
    for name in (".version", "build/next-release.txt"):
        text = _read(root / name).strip()
        if re.match(r"\d+\.\d+", text):
            return text.split("-")[0]
    return None


def makefile_vars(text: str) -> dict:
    """Plain `NAME = value` assignments of a configure-written Makefile."""
    return {m.group(1): m.group(2) for m in _MAKE_VAR.finditer(text)}


def inspect_tree(src: os.PathLike | str) -> Tree:
    root = Path(src).expanduser().absolute()
    if not root.is_dir():
        raise NotAFreeSwitchTree(f"{root} is not a directory.")
    esl = root / "libs" / "esl"
    looks_like_fs = (
        (root / "src" / "switch.c").exists()
        or "freeswitch" in _read(root / "configure.ac").lower()
        or (root / "libs").is_dir() and (root / "bootstrap.sh").exists()
    )
    if not esl.is_dir():
        if (root / "ESL.i").is_file() and root.name == "esl":
            raise NotAFreeSwitchTree(f"{root} is libs/esl itself; --src wants the top of the FreeSWITCH tree.",
                                     fix=f"Use --src {root.parent.parent}.")
        if looks_like_fs or (root / "libs").is_dir():
            raise EslSourcesMissing(f"{root} has no libs/esl folder, so there is nothing to build.")
        raise NotAFreeSwitchTree(
            f"{root} is not a FreeSWITCH source tree (no configure.ac naming freeswitch, no libs/esl)."
        )
    if not (esl / "ESL.i").is_file() or not (esl / "src" / "include" / "esl.h").is_file():
        raise EslSourcesMissing(f"{esl} lacks ESL.i or src/include/esl.h; the ESL sources are incomplete.")
    c_sources = tuple(sorted(p.relative_to(esl).as_posix() for p in (esl / "src").glob("*.c")))
    if not c_sources or not (esl / "src" / "esl_oop.cpp").is_file():
        raise EslSourcesMissing(f"{esl / 'src'} lacks the libesl C sources or esl_oop.cpp.")
    bindings = tuple(name for name in ("python", "python3") if (esl / name).is_dir())
    mk_text = _read(esl / "Makefile")
    configured = bool(mk_text) and (root / "libtool").exists()
    return Tree(
        root=root,
        esl=esl,
        version=find_version(root),
        bindings=bindings,
        c_sources=c_sources,
        include_dir=esl / "src" / "include",
        configured=configured,
        makefile_vars=makefile_vars(mk_text) if mk_text else {},
        has_py3mod_target=bool(re.search(r"^py3mod\s*:", mk_text, re.M)),
    )
