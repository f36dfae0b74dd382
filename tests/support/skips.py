"""Print what a pytest run skipped, from its JUnit XML report (.ci/run calls this last).

    python -m tests.support.skips report.xml

Every skipped test with its reason, and how many skips (or, under CI=true,
failures) were for a missing prerequisite: on CI that number must be 0.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

from tests.support.prerequisites import CI_FAILURE, allowed_in_ci


def read(report: str) -> tuple:
    """(skipped, prerequisite failures, counts): lists of (test id, reason), and the totals."""
    skipped, failed = [], []
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    for case in ET.parse(report).getroot().iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        for child in case:
            message = (child.get("message") or "").strip()
            if child.tag == "skipped":
                skipped.append((test, message))
            elif child.tag in ("failure", "error") and CI_FAILURE in message:
                failed.append((test, message[message.index(CI_FAILURE):].split("\n")[0]))
    return skipped, failed, counts


def main(report: str) -> int:
    skipped, failed, counts = read(report)
    print(f"skipped: {len(skipped)}")
    for test, reason in skipped:
        print(f"  {test}: {reason}")
    missing = [s for s in skipped if not allowed_in_ci(s[1])] + failed
    print(f"skipped for a missing prerequisite (under CI=true each is a failure): {len(missing)}")
    for test, reason in failed:
        print(f"  {test}: {reason}")
    bad = counts["failures"] + counts["errors"]
    # pytest's own closing line is above; this one is the last line of .ci/run
    print(f"ci: {counts['tests'] - bad - counts['skipped']} passed, {bad} failed, {counts['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
