"""The build's journal in libs/esl/.eslkit: what existed, what changed, what was built.

Written (temp + rename) *before* each change, so an interrupted build can be
rerun or restored: ``restore`` puts back every backed-up file, deletes every
file that was not there before the first build, and removes .eslkit itself.

A command whose writes cannot be named in advance (``make py3mod`` rewrites
configure's ``src/.deps/*.Plo`` placeholders, and may rewrite more) runs
between ``begin(step, unknown_writes=True)`` and ``end()``: every file of
libs/esl is first copied aside (the stash, ~2 MB), and each one the command
changed or removed becomes a backed-up original.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

STATE = "state.json"
BACKUP = "backup"
STASH = "stash"  # copies taken before a command that may change any file


class Journal:
    def __init__(self, esl: Path, state_dir_name: str = ".eslkit"):
        self.esl = esl
        self.dir = esl / state_dir_name
        self.data = self._load()

    # --- reading ---------------------------------------------------------
    def _load(self) -> dict:
        try:
            return json.loads((self.dir / STATE).read_text())
        except (OSError, ValueError):
            return {}

    @property
    def exists(self) -> bool:
        return self.dir.exists()

    @property
    def last(self) -> dict:
        return self.data.get("last") or {}

    # --- writing ---------------------------------------------------------
    def save(self) -> None:
        self.dir.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.dir / STATE)

    def _walk(self) -> tuple:
        """(files, dirs) of libs/esl, relative, leaving out the journal itself."""
        files, dirs = [], []
        for top, dirnames, filenames in os.walk(self.esl):
            rel_top = Path(top).relative_to(self.esl)
            if rel_top == Path("."):
                dirnames[:] = [d for d in dirnames if d != self.dir.name]
            dirs.extend((rel_top / d).as_posix() for d in dirnames)
            files.extend((rel_top / f).as_posix() for f in filenames)
        return files, dirs

    def snapshot(self) -> None:
        """Remember every file and folder of libs/esl once, before the first change."""
        if "files" in self.data:
            return
        files, dirs = self._walk()
        self.data["files"], self.data["dirs"] = sorted(files), sorted(dirs)
        self.save()

    def begin(self, step: str, unknown_writes: bool = False) -> None:
        """A command is about to create files we cannot name in advance
        (and, with ``unknown_writes``, perhaps change any file of libs/esl)."""
        self._settle()  # an interrupted earlier command's stash
        self.data["pending"] = step
        if unknown_writes:
            self._stash()
        self.save()

    def end(self) -> None:
        """Record what the build created or changed so far (so --restore undoes exactly that)."""
        self._settle()
        files, _ = self._walk()
        known_files = set(self.data.get("files", []))
        created = set(self.data.get("created", [])) | {f for f in files if f not in known_files}
        self.data["created"] = sorted(created)  # (new folders go when empty: see restore)
        self.data.pop("pending", None)
        self.save()

    def _stash(self) -> None:
        """Copy every file eslkit has not backed up yet, with its stat, before the command runs."""
        modified = self.data.get("modified", {})
        stash = self.dir / STASH
        shutil.rmtree(stash, ignore_errors=True)
        taken = {}
        files, _ = self._walk()
        for rel in files:
            if rel in modified:
                continue
            copy = stash / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.esl / rel, copy)  # a copy, not a link: compilers write in place
            taken[rel] = _stat(self.esl / rel)
        self.data["stash"] = taken

    def _settle(self) -> None:
        """Keep the stashed copy of every file the command changed or removed; drop the rest."""
        taken = self.data.pop("stash", None)
        if taken is None:
            return
        stash = self.dir / STASH
        modified = self.data.setdefault("modified", {})
        for rel, before in sorted(taken.items()):
            if _stat(self.esl / rel) == before or rel in modified:
                continue
            copy = self.dir / BACKUP / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stash / rel, copy)
            modified[rel] = True
        shutil.rmtree(stash, ignore_errors=True)
        self.save()

    def backup(self, path: Path) -> None:
        """Keep the original of ``path`` (first time only, or again if someone changed it since), then record it."""
        rel = path.relative_to(self.esl).as_posix()
        modified = self.data.setdefault("modified", {})
        written = self.data.setdefault("written", {})
        copy = self.dir / BACKUP / rel
        if rel in modified:
            if not (path.exists() and rel in written and _digest(path) != written[rel]):
                return
            # Changed by someone else since eslkit wrote it (say, configure ran
            # again): that is the version --restore must bring back now.
            copy.unlink(missing_ok=True)
        if path.exists() and not copy.exists():  # an interrupted earlier run may have made it already
            copy.parent.mkdir(parents=True, exist_ok=True)
            tmp = copy.with_name(copy.name + ".tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, copy)
        modified[rel] = path.exists() or modified.get(rel, False)
        written.pop(rel, None)
        self.save()

    def remember(self, path: Path) -> None:
        """Note the bytes eslkit (or its command) left in ``path``."""
        if path.exists():
            self.data.setdefault("written", {})[path.relative_to(self.esl).as_posix()] = _digest(path)
            self.save()

    def write(self, path: Path, content: str, mode: Optional[int]) -> None:
        self.backup(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".eslkit-tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(content)
            os.chmod(tmp, mode if mode is not None else (path.stat().st_mode & 0o7777 if path.exists() else 0o644))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.remember(path)

    # --- undoing ---------------------------------------------------------
    def restore(self) -> list:
        """Put back every original and remove what the builds created; returns what was done.

        Files that appeared in libs/esl after the build (say, a later `make`)
        are left alone - unless a command was interrupted, when every file
        the snapshot did not have is removed, since nobody recorded them.
        """
        done = []
        self._settle()  # a command was interrupted after the stash was taken
        modified = self.data.get("modified", {})
        for rel, existed in sorted(modified.items()):
            path, copy = self.esl / rel, self.dir / BACKUP / rel
            if existed and copy.exists():
                tmp = path.with_name(".eslkit-tmp-restore-" + path.name)  # a leftover is removed next time
                shutil.copy2(copy, tmp)  # copy2 keeps the mtime: make sees no change
                os.replace(tmp, path)
                done.append(f"restored {rel}")
        if "files" in self.data:
            known_files, known_dirs = set(self.data["files"]), set(self.data.get("dirs", []))
            files, dirs = self._walk()
            interrupted = "pending" in self.data
            remove = set(self.data.get("created", [])) | {r for r, existed in modified.items() if not existed}
            for rel in sorted(files):
                if rel in known_files:
                    continue
                if interrupted or rel in remove or Path(rel).name.startswith(".eslkit-tmp-"):
                    (self.esl / rel).unlink()
                    done.append(f"removed {rel}")
            for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):  # deepest first
                if rel in known_dirs:
                    continue
                try:
                    os.rmdir(self.esl / rel)  # only if empty: never someone else's files
                    done.append(f"removed {rel}/")
                except OSError:
                    pass
        if self.dir.exists():
            shutil.rmtree(self.dir)
            done.append(f"removed {self.dir.name}/")
        self.data = {}
        return done


def _stat(path: Path) -> Optional[list]:
    """Size, mtime and inode: a command that rewrites or replaces a file changes one of them."""
    try:
        st = path.stat()
    except OSError:
        return None  # removed
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
