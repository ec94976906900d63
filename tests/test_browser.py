"""The map and the report in a real browser: headless Debian Chromium, network disabled.

Skipped with a reason when ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing
(``scripts/ensure-browser`` installs them).  The driver path is given explicitly so that
selenium-manager never downloads anything.  Screenshots go to ``tests/_artifacts/``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from maps.coverage_map import render_map
from maps.report import write_report
from tests.fixtures_result import HOSTILE, make_result

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _missing() -> str | None:
    for p in (CHROMIUM, CHROMEDRIVER):
        if not p.exists():
            return f"{p} not installed (run scripts/ensure-browser)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed"
    return None


@pytest.fixture(scope="module")
def driver():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-test-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
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
        "--window-size=1400,900",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: no request can leave
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    drv.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(drv, script: str, timeout_s: float = 30.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = drv.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def _no_alert(drv) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        text = drv.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"an alert dialog opened: {text!r}")


def _errors(drv) -> list[dict]:
    return [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def _open(drv, path: Path) -> None:
    drv.get_log("browser")  # drop earlier messages
    drv.get(path.resolve().as_uri())


PATHS = "return document.querySelectorAll('path.leaflet-interactive').length"


def test_map_offline_layers_toggle_and_popup(driver, tmp_path, artifacts_dir):
    hostile = make_result(hostile=True)
    path = render_map(hostile, tmp_path / "map.html", basemap="none")
    _open(driver, path)
    assert _wait(driver, "return typeof window.L !== 'undefined' && window.L.version") == "1.9.4"
    start = _wait(driver, PATHS)
    assert start > 0
    _no_alert(driver)

    # the layer control toggles a layer: the first kind's service-area rings are on at start
    labels = driver.find_elements("css selector", ".leaflet-control-layers-overlays label")
    assert len(labels) >= 6 * len(hostile.specs) - 2
    rings = next(lb for lb in labels if "步行服务范围" in lb.text)
    assert HOSTILE in rings.text  # the hostile layer label is shown as text
    box = rings.find_element("css selector", "input")
    assert box.is_selected()
    box.click()
    off = driver.execute_script(PATHS)
    assert off < start
    box.click()
    assert driver.execute_script(PATHS) == start

    # a facility popup opens and shows the hostile name as text
    target = driver.execute_script(
        """
        const paths = document.querySelectorAll('.leaflet-sc-facilities-pane path.leaflet-interactive');
        for (const p of paths) {
            const r = p.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            if (hit === p) { return p; }
        }
        return null;
        """
    )
    assert target is not None, "no facility marker is clickable"
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).move_to_element(target).click().perform()
    popup = _wait(driver, "return document.querySelector('.leaflet-popup-content')")
    names = set(hostile.facilities["name"])
    assert any(n in popup.text for n in names), popup.text
    assert "<script>alert(1)</script>" in popup.text
    injected = "return document.querySelectorAll('.leaflet-popup-content script, .leaflet-popup-content img').length"
    assert driver.execute_script(injected) == 0
    _no_alert(driver)
    assert driver.execute_script("return document.title") == hostile.title
    driver.save_screenshot(str(artifacts_dir / "map_hostile_popup.png"))
    assert _errors(driver) == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_map_screenshots(driver, tmp_path, artifacts_dir, lang):
    result = make_result()
    path = render_map(result, tmp_path / f"map_{lang}.html", basemap="none", lang=lang)
    _open(driver, path)
    _wait(driver, PATHS)
    legend = driver.find_element("id", "sc-legend").text
    assert ("居民点步行时间" if lang == "zh" else "walking minutes") in legend
    banner = driver.find_element("id", "sc-synthetic").text
    assert banner == "合成数据 / SYNTHETIC DATA"
    # residents of the first kind are drawn, one circle each
    n = driver.execute_script(
        "return document.querySelectorAll('.leaflet-sc-residents-pane path.leaflet-interactive').length"
    )
    assert n == len(result.residents)
    driver.save_screenshot(str(artifacts_dir / f"map_{lang}.png"))
    assert _errors(driver) == []


def test_report_opens_offline_without_alert(driver, tmp_path, artifacts_dir):
    hostile = make_result(hostile=True)
    files = write_report(hostile, tmp_path / "report_hostile.html")
    _open(driver, files.html)
    _wait(driver, "return document.readyState === 'complete'")
    _no_alert(driver)
    assert driver.find_element("id", "title").text == hostile.title
    assert (
        driver.execute_script("return document.querySelectorAll('table img, table script').length")
        == 0
    )
    assert _errors(driver) == []

    files = write_report(make_result(), tmp_path / "report.html")
    _open(driver, files.html)
    _wait(driver, "return document.readyState === 'complete'")
    assert driver.execute_script("return document.querySelectorAll('figure svg').length") == 3
    assert driver.execute_script("return document.querySelectorAll('table').length") >= 8
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1000, min(int(height) + 100, 6000))
    driver.save_screenshot(str(artifacts_dir / "report_zh.png"))
    driver.set_window_size(1400, 900)
    assert _errors(driver) == []
