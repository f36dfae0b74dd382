"""Deliver the built pair (install, wheel, or plain copy) and verify it imports.

``ESL.py`` and ``_ESL<EXT_SUFFIX>`` always travel together: they come from the
same swig run.  Every file lands by write-to-temp + rename, so Ctrl-C never
leaves half a module behind.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

from eslkit import __version__
from eslkit.build.interpreter import Target
from eslkit.errors import TreeNotWritable, VerifyFailed

DIST = "freeswitch_esl"


def atomic_copy(src: Path, dest: Path, mode: int = 0o644) -> None:
    atomic_write(dest, src.read_bytes(), mode)


def atomic_write(dest: Path, data: bytes, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".eslkit-tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_pair(products: tuple, dest: Path) -> list:
    """Module first, ESL.py last: an interrupted copy never leaves a new ESL.py with an old _ESL."""
    esl_py, module = products
    atomic_copy(module, dest / module.name, 0o755)
    atomic_copy(esl_py, dest / "ESL.py", 0o644)
    return [dest / module.name, dest / "ESL.py"]


def wheel_tags(target: Target, abi3: bool = False) -> str:
    platform = re.sub(r"[-.]", "_", target.platform)
    if abi3:
        return f"cp37-abi3-{platform}"
    impl = {"cpython": "cp", "pypy": "pp"}.get(target.implementation, "py")
    version = impl + target.version.replace(".", "")
    match = re.match(r"cpython-(\d+t?)", target.soabi)
    abi = f"cp{match.group(1)}" if match else "none"
    return f"{version}-{abi}-{platform}"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(products: tuple, dest: Path, target: Target, version: Optional[str]) -> Path:
    """An installable wheel pip can uninstall: ESL.py + _ESL at the top level."""
    esl_py, module = products
    abi3 = module.name == "_ESL.abi3.so"
    tags = wheel_tags(target, abi3)
    version = version or "0"
    name = f"{DIST}-{version}-{tags}.whl"
    info = f"{DIST}-{version}.dist-info"
    files = {
        "ESL.py": esl_py.read_bytes(),
        module.name: module.read_bytes(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {DIST.replace('_', '-')}\nVersion: {version}\n"
            f"Summary: FreeSWITCH Event Socket Library (ESL) Python binding, built by eslkit {__version__}\n"
            + ("Requires-Python: >=3.7\n" if abi3 else f"Requires-Python: =={target.version}.*\n")
        ).encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: eslkit {__version__}\nRoot-Is-Purelib: false\n"
            f"Tag: {tags}\n"
        ).encode(),
        f"{info}/top_level.txt": b"ESL\n_ESL\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{info}/RECORD,,\n"
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".eslkit-tmp-", suffix=".whl")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, data in files.items():
                zi = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
                zi.external_attr = (0o755 if path == module.name else 0o644) << 16
                zf.writestr(zi, data, zipfile.ZIP_DEFLATED)
            zf.writestr(f"{info}/RECORD", record)
        os.replace(tmp, dest / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest / name


def check_writable_dir(path: Path, what: str) -> None:
    """Fail before writing anything; the nearest existing parent decides."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK) or not probe.stat().st_mode & 0o200:
        raise TreeNotWritable(f"Cannot write {what} {path}: {probe} is not writable.",
                              fix="Choose a writable destination, run as its owner, or use a virtualenv.")


_VERIFY = r"""
import json, os, sys
where = os.environ.get("ESLKIT_VERIFY_PATH")
if where:
    sys.path.insert(0, where)
import ESL
out = {"file": ESL.__file__, "module": getattr(getattr(ESL, "_ESL", None), "__file__", None),
       "has_connection": hasattr(ESL, "ESLconnection")}
check = os.environ.get("ESLKIT_CHECK")
if check:
    host, _, port = check.rpartition(":")
    con = ESL.ESLconnection(host, port, os.environ.get("ESLKIT_CHECK_PASSWORD", "ClueCon"))
    out["connected"] = bool(con.connected())
    if out["connected"]:
        reply = con.api("status")
        out["status"] = reply.getBody() if reply else None
        con.disconnect()
print("ESLKIT-VERIFY " + json.dumps(out))
"""


def target_env(where: Optional[Path] = None) -> dict:
    """The environment the target interpreter is asked questions in: its own sys.path
    (no PYTHON* variables, ``where`` first if given), no secrets, no bytecode written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("ESLKIT_CHECK", None)
    env.pop("ESL_PASSWORD", None)  # only --check gets it, as ESLKIT_CHECK_PASSWORD
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ beside the module
    if where:
        env["ESLKIT_VERIFY_PATH"] = str(where)
    return env


def verify(target: Target, where: Optional[Path], check: Optional[str] = None, timeout: float = 30,
           expect: Optional[Path] = None) -> dict:
    """Import ESL in the target interpreter (from ``where``, or its own sys.path).

    ``expect``: the ESL.py just delivered; another one found first (say in the
    user's site-packages) would shadow it, and `import ESL` would not get the new build.
    """
    env = target_env(where)
    if check:
        env["ESLKIT_CHECK"] = check
        # The password goes through the environment, never the argument list.
        env["ESLKIT_CHECK_PASSWORD"] = os.environ.get("ESL_PASSWORD", "ClueCon")
    try:
        proc = subprocess.run([target.executable, "-c", _VERIFY], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        raise VerifyFailed(f"Verifying the module timed out after {timeout:.0f} s"
                           f"{' (connecting to ' + check + ')' if check else ''}.",
                           fix="Check that the switch at --check answers, or drop --check.") from None
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ESLKIT-VERIFY ")), None)
    if proc.returncode != 0 or line is None:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise VerifyFailed(f"`import ESL` failed in {target.executable}: {tail}")
    result = json.loads(line[len("ESLKIT-VERIFY "):])
    if expect is not None and Path(result["file"]).resolve() != Path(expect).resolve():
        raise VerifyFailed(f"Python {target.version} imports another ESL module first: {result['file']} "
                           f"shadows the new {expect}.",
                           fix=f"Remove {result['file']} (and the _ESL module beside it), then run the build again.")
    if not result.get("has_connection"):
        raise VerifyFailed(f"The built ESL module ({result['file']}) has no ESLconnection class.")
    if check and not result.get("connected"):
        raise VerifyFailed(f"The built module imports, but could not connect and log in to {check}.",
                           fix="Check the address, that mod_event_socket listens there, and ESL_PASSWORD.")
    return result
