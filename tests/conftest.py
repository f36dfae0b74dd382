"""Shared test fixtures.  Helpers for one area live in tests/support/<area>.py."""

from __future__ import annotations

from pathlib import Path

import pytest

# The simulated switch fixtures (`sim`: in a thread; `sim_process`: `eslkit sim` as a process).
from tests.support.sim import sim, sim_process  # noqa: F401
# Real brokers started by the tests (session-wide: one Mosquitto, one RabbitMQ for the whole run).
from tests.support.brokers import amqp_env, fresh_mosquitto, mosquitto, rabbitmq, tls_files  # noqa: F401
# The C ESL module and eslkit.ESL side by side, for the difference suite (tests/test_esl_*.py).
from tests.support.esl_pair import esl_modules  # noqa: F401

CAPTURES = Path(__file__).parent / "data" / "fs-captures" / "1.10.12"


@pytest.fixture(scope="session")
def captures() -> Path:
    """The real FreeSWITCH 1.10.12 transcripts (copied from shared/fs-captures, bytes unchanged)."""
    return CAPTURES


# --- under CI=true, a skip is a failure (but ESLKIT_TEST_SWITCH's): tests/support/prerequisites.py ---

def _fail_skip_in_ci(report) -> None:
    from tests.support.prerequisites import CI_FAILURE, SWITCH_REASON, allowed_in_ci, in_ci, skip_reason

    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report.longrepr) or "no reason given"
    if allowed_in_ci(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"{CI_FAILURE}: {reason}\n(CI allows no skip but '{SWITCH_REASON}': install what is "
                       "missing in scripts/setup, or fix the test so that it runs)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield  # a whole module skipped (importorskip, allow_module_level)
    _fail_skip_in_ci(outcome.get_result())
