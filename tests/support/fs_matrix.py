"""Run `eslkit doctor` and `eslkit build` on real FreeSWITCH trees, by hand; print the matrix.

    python -m tests.support.fs_matrix TREE [TREE...] --python 3.11 3.12 3.13

Each TREE is a FreeSWITCH source tree (e.g. `git archive v1.10.12 | tar -x`; a
configured one builds with py3mod).  For every tree and Python: doctor's
verdict, the build (mode, exit code, seconds), that the module imports (the
build verifies it), the second build (must be "up to date"), --restore, and
whether the checksum list of the whole tree after --restore equals the one
from before.  docs/build.md holds the table this printed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from tests.support.fstree import checksums, pyenv_python, run_eslkit


def one(tree: Path, python: str, out: Path) -> dict:
    before = checksums(tree)
    doctor = run_eslkit("doctor", "--src", tree, "--python", python, "--out", out)
    started = time.monotonic()
    build = run_eslkit("build", "--src", tree, "--python", python, "--out", out, timeout=900)
    seconds = time.monotonic() - started
    mode = re.search(r"building with (\w+)", build.stdout)
    started = time.monotonic()
    again = run_eslkit("build", "--src", tree, "--python", python, "--out", out)
    second = time.monotonic() - started
    restore = run_eslkit("build", "--src", tree, "--restore")
    failed = (build.stderr.strip().splitlines() or [""])[-2 if build.returncode else -1]
    return {
        "doctor": "ok" if doctor.returncode == 0 else "fail",
        "mode": mode.group(1) if mode else "?",
        "build": "ok" if build.returncode == 0 else f"exit {build.returncode}: {failed.strip()[:80]}",
        "seconds": seconds,
        "second": f"{second:.2f} s up to date" if "up to date" in again.stdout else f"rebuilt ({again.returncode})",
        "restored": restore.returncode == 0 and checksums(tree) == before,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--python", nargs="+", default=["3.11", "3.12", "3.13"])
    args = parser.parse_args(argv)
    print("| tree | Python | doctor | mode | build | s | second build | --restore byte-identical |")
    print("|---|---|---|---|---|---|---|---|")
    bad = 0
    for tree in args.trees:
        for version in args.python:
            python = pyenv_python(version) or version
            with tempfile.TemporaryDirectory() as out:
                r = one(tree.absolute(), python, Path(out))
            agree = (r["doctor"] == "ok") == (r["build"] == "ok")
            bad += not (agree and r["build"] == "ok" and r["restored"])
            print(f"| {tree.name} | {version} | {r['doctor']} | {r['mode']} | {r['build']} | {r['seconds']:.1f} "
                  f"| {r['second']} | {'yes' if r['restored'] else 'NO'} |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
