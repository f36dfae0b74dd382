"""Skips, and the one kind CI allows.

A test that cannot run here because something is missing calls ``missing()``:
on a developer's machine that is a skip, under ``CI=true`` a failure.  The
conftest hook does the same to every other skip (``pytest.skip``,
``skipif``, ``importorskip``), so CI can never be green with a whole area
skipped because ``scripts/setup`` did not install something.

The one skip CI allows is ``needs_switch()``'s: a real FreeSWITCH is not
something a script can install (docs/build.md, "Against a real switch").

    from tests.support.prerequisites import missing
    if shutil.which("tmux") is None:
        missing("tmux is not installed (scripts/setup --test installs it)")
"""

from __future__ import annotations

import os
from typing import NoReturn, Optional

import pytest

MISSING = "missing prerequisite: "
SWITCH_VAR = "ESLKIT_TEST_SWITCH"
SWITCH_REASON = f"{SWITCH_VAR} is not set"  # the only skip allowed under CI
CI_FAILURE = "skipped under CI=true"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> NoReturn:
    """Skip locally, fail under CI: ``what`` says what is missing and how to get it."""
    if in_ci():
        pytest.fail(f"{CI_FAILURE}: {MISSING}{what}", pytrace=False)
    pytest.skip(MISSING + what)


def allowed_in_ci(reason: str) -> bool:
    return reason.startswith(SWITCH_REASON)


def needs_switch() -> tuple:
    """(host, port) of the real switch in ESLKIT_TEST_SWITCH; otherwise skip (allowed under CI)."""
    value = os.environ.get(SWITCH_VAR, "").strip()
    if not value:
        pytest.skip(f"{SWITCH_REASON}: give a real FreeSWITCH as {SWITCH_VAR}=host:port "
                    "(password in ESL_PASSWORD) to run these tests")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        pytest.fail(f"{SWITCH_VAR}={value!r} is not host:port (e.g. 10.0.0.5:8021)", pytrace=False)
    return host, int(port)


def skip_reason(longrepr) -> Optional[str]:
    """The reason of a skipped report (pytest keeps it as (path, line, 'Skipped: reason'))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return None if longrepr is None else str(longrepr)
