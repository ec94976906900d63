"""Headless Debian Chromium for the browser tests: one setup for the map, report and studio.

Skipped with a reason when ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing
(``scripts/ensure-browser`` installs them).  The driver path is given explicitly so that
selenium-manager never downloads anything, and no host name resolves, so no request can leave.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for p in (CHROMIUM, CHROMEDRIVER):
        if not p.exists():
            return f"{p} not installed (run scripts/ensure-browser)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed"
    return None


@contextmanager
def chromium(
    *, window: tuple[int, int], loopback: bool = False, offline: bool = False, logs: bool = False
) -> Iterator[Any]:
    """A headless Chromium driver; ``loopback`` lets it reach 127.0.0.1 (a local server)."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-test-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    rules = "MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if loopback else "")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        f"--host-resolver-rules={rules}",
    ):
        opts.add_argument(arg)
    if logs:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    if offline:
        drv.set_network_conditions(
            offline=True, latency=0, download_throughput=0, upload_throughput=0
        )
    drv.set_window_size(*window)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(drv: Any, script: str, timeout_s: float = 30.0) -> Any:
    """Run ``script`` until it returns something truthy."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = drv.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")
