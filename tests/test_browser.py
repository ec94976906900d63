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
#: The open popup once its content is filled in (Leaflet may add the element a tick earlier)
#: and its fade-in has finished: WebDriver reports no text for an element at opacity 0.
POPUP = (
    "const p = document.querySelector('.leaflet-popup-content');"
    " if (!p || !p.textContent.trim()) return null;"
    " const box = p.closest('.leaflet-popup');"
    " return box && getComputedStyle(box).opacity === '1' ? p : null"
)


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
    popup = _wait(driver, POPUP)
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


def test_report_opens_with_the_target_table(driver, tmp_path, artifacts_dir):
    """The first page a leader sees (A4-like viewport) is the planning-target table."""
    result = make_result()
    files = write_report(result, tmp_path / "report_targets.html")
    # an A4-like viewport, exactly (a window size would include the browser's own frame)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1240, "height": 1754, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        _open(driver, files.html)
        _wait(driver, "return document.readyState === 'complete'")
        first = driver.execute_script(
            "const t = document.querySelector('table');"
            "return [t.id, t.querySelector('caption').textContent,"
            " t.querySelectorAll('tbody tr[data-target]').length,"
            " t.getBoundingClientRect().top, t.getBoundingClientRect().right,"
            " document.querySelector('h2').textContent,"
            " document.body.getBoundingClientRect().right, window.innerHeight];"
        )
        table_id, caption, rows, top, right, heading, body_right, height = first
        assert table_id == "t-targets"
        assert caption == f"逐项核对（{len(result.targets)}项）"
        assert rows == len(result.targets)  # one row per target
        assert heading == "一、规划目标完成情况"
        assert top < height / 3  # at the top of the first page
        assert right <= body_right + 1  # the table fits the page width
        colours = driver.execute_script(
            "return [...document.querySelectorAll('#t-targets td.met, #t-targets td.unmet')]"
            ".map(td => [td.textContent, getComputedStyle(td).color])"
        )
        assert {t for t, _ in colours} == {"达标", "未达标"}
        assert {c for t, c in colours if t == "达标"} == {"rgb(26, 127, 55)"}
        assert {c for t, c in colours if t == "未达标"} == {"rgb(178, 24, 43)"}
        driver.save_screenshot(str(artifacts_dir / "report_targets.png"))
        assert _errors(driver) == []
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_map_target_layer_toggles_coloured_units(driver, tmp_path, artifacts_dir):
    result = make_result()
    path = render_map(result, tmp_path / "map_targets.html", basemap="none")
    _open(driver, path)
    _wait(driver, PATHS)
    areas = "return document.querySelectorAll('.leaflet-sc-areas-pane path.leaflet-interactive')"
    assert driver.execute_script(areas + ".length") == 0  # area layers are off at start
    i, target = next(
        (i, r)
        for i, r in enumerate(result.targets.to_dict("records"))
        if r["scope"] == "street" and r["status"] == "not met"
    )
    units = result.target_units[result.target_units["target"] == i]
    labels = driver.find_elements("css selector", ".leaflet-control-layers-overlays label")
    name = f"规划目标：{target['label']}"
    label = next(lb for lb in labels if lb.text.strip() == name)
    label.find_element("css selector", "input").click()
    assert _wait(driver, areas + ".length") == len(units)
    fills = driver.execute_script(f"return [...{areas[7:]}].map(p => p.getAttribute('fill'))")
    want = ["#1a9641" if met else "#d7191c" for met in units["met"]]
    assert sorted(fills) == sorted(want)  # met green, not met red
    driver.save_screenshot(str(artifacts_dir / "map_targets.png"))
    # with the other layers off, a unit's popup names the target, status, value and shortfall
    for lb in labels:
        box = lb.find_element("css selector", "input")
        if box.is_selected() and lb.text.strip() != name:
            box.click()
    from selenium.webdriver.common.action_chains import ActionChains

    red = driver.execute_script(
        f"return [...{areas[7:]}].find(p => p.getAttribute('fill') === '#d7191c')"
    )
    ActionChains(driver).move_to_element(red).click().perform()
    popup = _wait(driver, POPUP)
    worst = units[~units["met"]].iloc[0]
    assert target["label"] in popup.text and "未达标" in popup.text
    assert f"{worst['shortfall_population']:,.0f}" in popup.text
    assert f"{worst['value'] * 100:.1f}%" in popup.text
    driver.save_screenshot(str(artifacts_dir / "map_targets_popup.png"))
    assert _errors(driver) == []
