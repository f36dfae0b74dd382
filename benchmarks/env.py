"""What the benchmarks need besides eslkit, set up once and cached.

* the C ESL module (SWIG ``ESL.py`` + ``_ESL*.so``) built from the python-ESL
  sdist with today's swig, by ``tests/support/esl_sdist.build_esl_module``;
* greenswitch and genesis in their own virtualenv under the cache directory
  (``~/.cache/eslkit-bench``, or ``ESLKIT_BENCH_CACHE``), never the project's .venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OTHERS = ("greenswitch", "genesis")


class Unavailable(RuntimeError):
    """An anchor cannot be set up on this machine; the message says why."""


def cache_dir() -> Path:
    path = Path(os.environ.get("ESLKIT_BENCH_CACHE", Path.home() / ".cache" / "eslkit-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def c_module_dir() -> Path:
    """Directory to put on PYTHONPATH for ``import ESL`` (built on first use)."""
    sys.path.insert(0, str(ROOT))
    from tests.support.esl_sdist import EslSdistUnavailable, build_esl_module

    try:
        return build_esl_module(sys.executable)
    except (EslSdistUnavailable, RuntimeError) as exc:
        raise Unavailable(f"C ESL module: {exc}") from None


def others_python() -> Path:
    """The interpreter of the virtualenv holding greenswitch and genesis."""
    venv = cache_dir() / "venv"
    python = venv / "bin" / "python"
    marker = venv / ".eslkit-bench-ok"
    if marker.exists():
        return python
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *OTHERS], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        raise Unavailable(f"cannot install {', '.join(OTHERS)}: {out.decode(errors='replace')[-300:]}") from None
    marker.write_text("ok\n")
    return python
