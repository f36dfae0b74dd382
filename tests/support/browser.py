"""A real Chromium for the web tests: Debian's ``chromium`` driven through its matching
``chromium-driver`` by selenium (both installed by ``scripts/setup --test``).

    from tests.support.browser import chromium

    with chromium() as browser:                 # headless, a fresh profile, no network but loopback
        browser.get("http://127.0.0.1:8080/login")
        ...

A missing browser, driver or selenium is a failure, not a skip: the browser tests are
part of the suite CI runs.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless as root, with nothing that phones home or updates itself during a test.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=900,900")


@contextlib.contextmanager
def chromium(*, notifications: bool = False, width: int = 900, height: int = 900) -> Iterator:
    """A headless Chromium (selenium ``WebDriver``) with a fresh profile, closed at the end.
    ``notifications=True`` pre-grants the page's notification permission."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            raise RuntimeError(f"{path} is missing: run scripts/setup --test (it installs chromium and "
                               "chromium-driver)")
    profile = tempfile.mkdtemp(prefix="eslkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    if notifications:
        options.add_experimental_option("prefs", {"profile.default_content_setting_values.notifications": 1})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
