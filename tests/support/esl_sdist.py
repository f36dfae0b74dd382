"""The python-ESL sdist from the package index: FreeSWITCH's real ESL C sources.

Two jobs for the tests and benchmarks:

* ``esl_sources()`` — download (once, cached) and unpack the sdist; it ships
  libesl's C sources flat (esl.c, esl_*.c/h, esl_oop.cpp/h, ESL.i).
* ``build_esl_module(python=...)`` — build the C ESL Python module (``ESL.py`` +
  ``_ESL<EXT_SUFFIX>``) for an interpreter with today's swig, and return the
  directory to put on ``sys.path``.  The sdist's own setup.py passes
  ``-classic``, which swig 4 rejects, so this runs swig and g++ directly.

Usage::

    from tests.support.esl_sdist import build_esl_module
    path = build_esl_module()                 # for sys.executable
    sys.path.insert(0, str(path)); import ESL
    path = build_esl_module(python="/root/.pyenv/versions/3.13.0/bin/python3")

Results are cached under ``~/.cache/eslkit-tests`` (override with
``ESLKIT_TEST_CACHE``) keyed by interpreter, swig version and source hash, so a
second call costs a few stat() calls.  Raises ``EslSdistUnavailable`` with the
reason when the download, swig or the compiler is missing, so callers can
say what is missing (``tests.support.prerequisites.missing``: a skip, a failure under CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST_NAME = "python-ESL"
SDIST_VERSION = "1.4.18"
SDIST_FILE = f"python-ESL-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "0e4d8dc636bcbe8e764f9f3b4a0533c356c0bcce551a37ad8f5f2658d5b7d4a4"

# libesl's C sources in this sdist (it predates cJSON: JSON lives in esl_json.c).
C_SOURCES = (
    "esl.c",
    "esl_buffer.c",
    "esl_config.c",
    "esl_event.c",
    "esl_json.c",
    "esl_threadmutex.c",
)


class EslSdistUnavailable(RuntimeError):
    """The sdist, swig or a compiler is not available on this machine."""


def cache_dir() -> Path:
    path = Path(os.environ.get("ESLKIT_TEST_CACHE", Path.home() / ".cache" / "eslkit-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise EslSdistUnavailable(f"{argv[0]} not found: {exc}") from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )
    return proc.stdout


def sdist_path() -> Path:
    """The cached sdist tarball, downloaded with pip the first time (hash pinned).

    pip prepares an sdist's metadata even for `pip download`; it does so in an
    isolated build environment that it fills from the index.  That isolation is
    kept on purpose: without it pip would use this venv's setuptools, which without
    `wheel` fails with "invalid command 'bdist_wheel'" on a fresh machine.
    """
    target = cache_dir() / SDIST_FILE
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        pinned = Path(tmp) / "requirements.txt"
        pinned.write_text(f"{SDIST_NAME}=={SDIST_VERSION} --hash=sha256:{SDIST_SHA256}\n")
        try:
            _run(
                [
                    sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "--require-hashes", "-d", tmp, "-r", str(pinned),
                ],
                timeout=300,
            )
        except RuntimeError as exc:
            raise EslSdistUnavailable(f"cannot download {SDIST_FILE}: {exc}") from None
        found = list(Path(tmp).glob("python*ESL*.tar.gz"))
        if not found:
            raise EslSdistUnavailable(f"pip download produced no {SDIST_FILE}")
        os.replace(found[0], target)  # atomic: parallel test runs never see half a file
    return target


def esl_sources() -> Path:
    """Directory holding the unpacked sdist (esl.c, esl.h, esl_oop.cpp, ESL.i, ...)."""
    root = cache_dir() / f"python-ESL-{SDIST_VERSION}-src"
    marker = root / ".complete"
    if marker.exists():
        return root / f"python-ESL-{SDIST_VERSION}"
    tarball = sdist_path()  # first: a failed download leaves no temporary folder behind
    tmp = Path(tempfile.mkdtemp(dir=cache_dir()))
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():  # refuse path tricks in a downloaded archive
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise EslSdistUnavailable(f"unsafe path in {SDIST_FILE}: {member.name}")
            if not (member.isfile() or member.isdir()):
                raise EslSdistUnavailable(f"unexpected member in {SDIST_FILE}: {member.name}")
        tar.extractall(tmp)
    (tmp / ".complete").write_text("ok\n")
    try:
        os.rename(tmp, root)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return root / f"python-ESL-{SDIST_VERSION}"


def _interpreter_facts(python: str) -> dict:
    code = (
        "import sys, sysconfig, json;"
        "print(json.dumps({'include': sysconfig.get_paths()['include'],"
        "'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'),"
        "'version': '%d.%d' % sys.version_info[:2], 'executable': sys.executable}))"
    )
    return json.loads(_run([python, "-c", code], timeout=60))


def _swig_version(swig: str) -> str:
    out = _run([swig, "-version"], timeout=30)
    for line in out.splitlines():
        if line.startswith("SWIG Version"):
            return line.split()[-1]
    raise EslSdistUnavailable(f"cannot read the version of {swig}")


def build_commands(src: Path, out: Path, facts: dict, swig: str = "swig") -> list[list[str]]:
    """The exact argv list that builds ESL.py + _ESL<EXT_SUFFIX> into ``out``."""
    include = facts["include"]
    cmds = [
        [swig, "-python", "-c++", "-DMULTIPLICITY", "-threads", f"-I{src}",
         "-outdir", str(out), "-o", str(out / "esl_wrap.cpp"), str(src / "ESL.i")],
    ]
    objects = []
    for name in C_SOURCES + ("esl_oop.cpp",):
        obj = out / (Path(name).stem + ".o")
        compiler = "g++" if name.endswith(".cpp") else "gcc"
        cmds.append([compiler, "-fPIC", "-O2", "-w", f"-I{src}", "-c", str(src / name), "-o", str(obj)])
        objects.append(str(obj))
    wrap_obj = out / "esl_wrap.o"
    cmds.append(["g++", "-fPIC", "-O2", "-w", f"-I{src}", f"-I{include}", "-c",
                 str(out / "esl_wrap.cpp"), "-o", str(wrap_obj)])
    objects.append(str(wrap_obj))
    # No -lpython: an extension module resolves Python symbols from the interpreter.
    cmds.append(["g++", "-shared", "-o", str(out / f"_ESL{facts['ext_suffix']}"), *objects, "-lpthread"])
    return cmds


def build_esl_module(python: str | None = None, swig: str = "swig") -> Path:
    """Build the C ESL module for ``python`` (default: this interpreter); return its directory.

    The directory holds only ``ESL.py`` and ``_ESL<EXT_SUFFIX>``; put it on
    ``sys.path`` (or PYTHONPATH for a subprocess) and ``import ESL``.
    """
    python = python or sys.executable
    if shutil.which(swig) is None:
        raise EslSdistUnavailable(f"{swig} is not installed (apt-get install swig, or pip install swig)")
    for tool in ("gcc", "g++"):
        if shutil.which(tool) is None:
            raise EslSdistUnavailable(f"{tool} is not installed (apt-get install build-essential)")
    src = esl_sources()
    facts = _interpreter_facts(python)
    key = hashlib.sha256(
        json.dumps([facts, _swig_version(swig), SDIST_VERSION]).encode()
    ).hexdigest()[:16]
    final = cache_dir() / f"esl-module-{facts['version']}-{key}"
    module = final / f"_ESL{facts['ext_suffix']}"
    if module.exists() and (final / "ESL.py").exists():
        return final
    work = Path(tempfile.mkdtemp(dir=cache_dir(), prefix="esl-build-"))
    try:
        for argv in build_commands(src, work, facts, swig):
            _run(argv, cwd=work)
        result = Path(tempfile.mkdtemp(dir=cache_dir(), prefix="esl-module-tmp-"))
        shutil.copy2(work / "ESL.py", result / "ESL.py")
        shutil.copy2(work / module.name, result / module.name)
        try:
            os.rename(result, final)
        except OSError:  # built concurrently by another process: keep theirs
            shutil.rmtree(result, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


if __name__ == "__main__":  # python -m tests.support.esl_sdist [PYTHON]
    print(build_esl_module(sys.argv[1] if len(sys.argv) > 1 else None))
