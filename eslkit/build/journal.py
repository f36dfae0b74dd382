"""The build's journal in libs/esl/.eslkit: what existed, what changed, what was built.

Written (temp + rename) *before* each change, so an interrupted build can be
rerun or restored: ``restore`` puts back every backed-up file, deletes every
file that was not there before the first build, and removes .eslkit itself.
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

    def begin(self, step: str) -> None:
        """A command is about to create files we cannot name in advance."""
        self.data["pending"] = step
        self.save()

    def end(self) -> None:
        """Record what the build created so far (so --restore removes exactly that)."""
        files, _ = self._walk()
        known_files = set(self.data.get("files", []))
        created = set(self.data.get("created", [])) | {f for f in files if f not in known_files}
        self.data["created"] = sorted(created)  # (new folders go when empty: see restore)
        self.data.pop("pending", None)
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


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
