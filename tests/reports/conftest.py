"""A real headless Chromium (Debian `chromium` + `chromium-driver`) driven with selenium, for the
dashboard tests; skipped with the reason when any part is missing. Nothing leaves the machine:
the page is a file:// URL whose Content-Security-Policy forbids every request, and the browser
runs with its background networking off and a fresh profile."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
PAGE_LOAD_TIMEOUT = 60


def _find(names: tuple[str, ...], env: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium; a test dependency)")
    chromium = _find(CHROMIUM_NAMES, "KUBEHARDEN_CHROMIUM")
    driver_path = _find(DRIVER_NAMES, "KUBEHARDEN_CHROMEDRIVER")
    if chromium is None or driver_path is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium chromium-driver; "
                    "or set KUBEHARDEN_CHROMIUM and KUBEHARDEN_CHROMEDRIVER)")
    # an explicit driver path: selenium-manager (which would download drivers) never runs
    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tempfile.mkdtemp(prefix="kh-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-extensions", "--disable-default-apps", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    driver.set_script_timeout(PAGE_LOAD_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
