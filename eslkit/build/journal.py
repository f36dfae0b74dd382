"""The build's journal in libs/esl/.eslkit: what existed, what changed, what was built.

Written (temp + rename) *before* each change, so an interrupted build can be
rerun or restored: ``restore`` puts back every backed-up file, deletes every
file that was not there before the first build, and removes .eslkit itself.
"""

from __future__ import annotations

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

    def snapshot(self) -> None:
        """Remember every file and folder of libs/esl once, before the first change."""
        if "files" in self.data:
            return
        files, dirs = [], []
        for top, dirnames, filenames in os.walk(self.esl):
            rel_top = Path(top).relative_to(self.esl)
            if rel_top == Path("."):
                dirnames[:] = [d for d in dirnames if d != self.dir.name]
            dirs.extend((rel_top / d).as_posix() for d in dirnames)
            files.extend((rel_top / f).as_posix() for f in filenames)
        self.data["files"], self.data["dirs"] = sorted(files), sorted(dirs)
        self.save()

    def backup(self, path: Path) -> None:
        """Keep the original of ``path`` (first time only), then record it."""
        rel = path.relative_to(self.esl).as_posix()
        modified = self.data.setdefault("modified", {})
        if rel in modified:
            return
        if path.exists():
            copy = self.dir / BACKUP / rel
            if not copy.exists():  # an interrupted earlier run may have made it already
                copy.parent.mkdir(parents=True, exist_ok=True)
                tmp = copy.with_name(copy.name + ".tmp")
                shutil.copy2(path, tmp)
                os.replace(tmp, copy)
        modified[rel] = path.exists()
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

    # --- undoing ---------------------------------------------------------
    def restore(self) -> list:
        """Put libs/esl back as the snapshot found it; returns what was done."""
        done = []
        for rel, existed in sorted(self.data.get("modified", {}).items()):
            path, copy = self.esl / rel, self.dir / BACKUP / rel
            if existed and copy.exists():
                tmp = path.with_name(path.name + ".eslkit-restore")
                shutil.copy2(copy, tmp)  # copy2 keeps the mtime: make sees no change
                os.replace(tmp, path)
                done.append(f"restored {rel}")
        known_files = set(self.data.get("files", []))
        known_dirs = set(self.data.get("dirs", []))
        if "files" in self.data:
            for top, dirnames, filenames in os.walk(self.esl, topdown=False):
                rel_top = Path(top).relative_to(self.esl)
                if rel_top.parts and rel_top.parts[0] == self.dir.name:
                    continue
                for name in filenames:
                    rel = (rel_top / name).as_posix()
                    if rel not in known_files:
                        (Path(top) / name).unlink()
                        done.append(f"removed {rel}")
                rel = rel_top.as_posix()
                if rel != "." and rel not in known_dirs:
                    shutil.rmtree(top, ignore_errors=True)
                    done.append(f"removed {rel}/")
        if self.dir.exists():
            shutil.rmtree(self.dir)
            done.append(f"removed {self.dir.name}/")
        self.data = {}
        return done
