"""What a remembered answer about a program depends on, told with stat() calls.

The build journal remembers the target interpreter's sysconfig and swig's
version.  Asking again costs a process each (through a pyenv shim about 20
bash processes, ~0.15 s), so an up-to-date build reuses an answer while its
key is unchanged.  Every key holds whatever would change the answer; a key
of None means "cannot tell cheaply": then the program is asked every time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

# The line `pyenv rehash` writes into every shim.
_PYENV_EXEC = re.compile(rb'^exec "([^"\n]+)/libexec/pyenv" exec ', re.M)
_PYENV_ROOT = re.compile(rb'^export PYENV_ROOT="([^"\n]+)"', re.M)

# Keys are compared with what the journal's JSON gives back: lists, never tuples.


def stat_key(path) -> Optional[list]:
    """inode, size and mtime: a replaced or rewritten file changes at least one."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def binary_key(path: str) -> Optional[list]:
    """A compiled program (or a symlink to one, as in a venv): the file it runs and its stat."""
    real = os.path.realpath(path)
    try:
        with open(real, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                return None  # a script may run something else at every call
    except OSError:
        return None
    return [real, stat_key(real)]


def _version_files(start: str) -> list:
    """The .python-version files pyenv looks at from ``start`` up to /."""
    found, here = [], Path(start)
    for folder in (here, *here.parents):
        key = stat_key(folder / ".python-version")
        if key is not None:
            found.append([str(folder), key])
    return found


def pyenv_shim_key(path: str) -> Optional[list]:
    """A pyenv shim: everything pyenv reads to choose the version it runs.

    That is PYENV_VERSION (`pyenv shell`), the .python-version files above
    PYENV_DIR and the working directory (`pyenv local`), $PYENV_ROOT/version
    (`pyenv global`), the installed versions and plugins, and PATH (the
    "system" version).  None if ``path`` is not a pyenv shim.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if not _PYENV_EXEC.search(head):
        return None
    root_line = _PYENV_ROOT.search(head)  # the shim sets it, whatever the environment says
    root = Path(os.fsdecode(root_line.group(1))) if root_line else Path(path).resolve().parent.parent
    env = sorted([k, v] for k, v in os.environ.items() if k.startswith("PYENV_") or k == "PATH")
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed: pyenv would fail too
        return None
    places = {os.environ.get("PYENV_DIR") or cwd, cwd}
    return [stat_key(path), str(root), env, sorted(f for p in places for f in _version_files(p)),
            stat_key(root / "version"), stat_key(root / "versions"), stat_key(root / "plugins")]
