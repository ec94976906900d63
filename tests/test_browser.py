"""The map and the report in a real browser: headless Debian Chromium, network disabled.

Skipped with a reason when ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing
(``scripts/ensure-browser`` installs them).  The driver path is given explicitly so that
selenium-manager never downloads anything.  Screenshots go to ``tests/_artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.coverage_map import render_map, street_classes
from maps.report import write_report
from tests.chromium import chromium, wait_for
from tests.fixtures_result import HOSTILE, make_result

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver():
    with chromium(window=(1400, 900), offline=True, logs=True) as drv:
        yield drv


def _wait(drv, script: str, timeout_s: float = 30.0):
    return wait_for(drv, script, timeout_s)


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

    # the layer panel toggles a layer: the first kind's service-area rings are on at start
    labels = driver.find_elements("css selector", "#sc-layers label.sc-layer")
    assert len(labels) >= 6 * len(hostile.specs) - 2
    first = driver.find_element("css selector", "#sc-layers details[open] > summary")
    assert HOSTILE in first.text  # the hostile kind label is shown as text
    rings = next(lb for lb in labels if "步行服务范围" in lb.text)
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
    assert "· 设施（" in popup.text.splitlines()[0]  # the popup names its layer
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
    """The first page a leader sees (A4-like viewport): the conclusions, then the targets."""
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
        assert heading == "一、结论"
        lines = driver.execute_script(
            "return [...document.querySelectorAll('#conclusions li')].map(li => li.textContent)"
        )
        assert len(lines) == len(result.specs) and all("分钟步行范围内" in x for x in lines)
        assert top < height / 2  # on the first page, right under the conclusions
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
    # the targets sit in the shared section of the layer panel, closed at start
    driver.find_elements("css selector", "#sc-layers details.sc-group > summary")[-1].click()
    labels = driver.find_elements("css selector", "#sc-layers label.sc-layer")
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
        if box.is_selected() and lb.get_attribute("textContent").strip() != name:
            driver.execute_script("arguments[0].click()", box)  # also in closed sections
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


# ------------------------------------------------------------------ laptop screen, offline network

STREETS = "return document.querySelectorAll('.leaflet-sc-streets-pane path').length"
LAPTOP = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}


def _rect(drv, selector: str) -> dict:
    return drv.execute_script(
        f"const r = document.querySelector({selector!r}).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};"
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_map_fits_a_laptop_offline_with_the_walk_network(driver, tmp_path, artifacts_dir, lang):
    """1366x768, no tiles: grouped panel fits, kinds expand and collapse, streets are drawn."""
    from tests.fixtures_streets import with_streets

    result = with_streets(make_result())
    kinds = list(result.specs.values())
    path = render_map(result, tmp_path / f"map_laptop_{lang}.html", basemap="none", lang=lang)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", LAPTOP)
    try:
        _open(driver, path)
        _wait(driver, PATHS)
        # the network of the first kind is drawn below the points: one path per minute class
        first = result.streets[f"minutes_{kinds[0].kind}"]
        n_classes = len(set(street_classes(first.to_numpy(), kinds[0])))
        assert _wait(driver, STREETS) == n_classes
        strokes = driver.execute_script(
            "return [...document.querySelectorAll('.leaflet-sc-streets-pane path')]"
            ".map(p => [p.getAttribute('stroke'), (p.getAttribute('d').match(/M/g) || []).length])"
        )
        assert sum(n for _, n in strokes) == len(result.streets)  # every street, one subpath
        assert "#7b3294" in {s for s, _ in strokes}  # the unreachable island
        # the panel: one section per kind plus the shared one, only the first open, on screen
        sections = driver.find_elements("css selector", "#sc-layers details.sc-group")
        assert len(sections) == len(kinds) + 1
        assert [s.get_attribute("open") is not None for s in sections] == [True] + [False] * len(
            kinds
        )
        panel = _rect(driver, "#sc-layers")
        assert panel["top"] >= 0 and panel["bottom"] <= 768 and panel["right"] <= 1366
        legend = _rect(driver, "#sc-legend")
        assert legend["bottom"] <= 768 and legend["right"] < panel["left"]  # no overlap
        title = driver.find_element("id", "sc-title").text
        assert result.title in title

        # open the second kind: its rows show, the legend follows it
        second = sections[1]
        second.find_element("css selector", "summary").click()
        assert second.get_attribute("open") is not None
        visible = driver.execute_script(
            "return [...document.querySelectorAll('#sc-legend [data-legend]')]"
            ".filter(e => !e.hidden).map(e => e.getAttribute('data-legend'))"
        )
        assert visible == ["k1"]
        assert kinds[1].label(lang) in driver.find_element("id", "sc-legend").text
        rows = second.find_elements("css selector", "label.sc-layer")
        want = "步行网络" if lang == "zh" else "walk network"
        net = next(r for r in rows if want in r.text)
        box = net.find_element("css selector", "input")
        assert not box.is_selected()
        box.click()  # the second kind's network is built and drawn
        second_classes = set(street_classes(result.streets[f"minutes_{kinds[1].kind}"], kinds[1]))
        assert _wait(driver, STREETS) == n_classes + len(second_classes)
        driver.save_screenshot(str(artifacts_dir / f"map_laptop_{lang}_second_kind.png"))
        box.click()
        assert driver.execute_script(STREETS) == n_classes
        # collapse it again: its rows are hidden, the layers stay as they are
        second.find_element("css selector", "summary").click()
        assert second.get_attribute("open") is None
        assert not rows[0].is_displayed()
        # the whole panel folds away for a small screen
        driver.find_element("css selector", ".sc-layers-fold").click()
        assert not driver.find_element("css selector", ".sc-layers-body").is_displayed()
        driver.find_element("css selector", ".sc-layers-fold").click()
        driver.find_element("css selector", "#sc-layers details > summary").click()  # 1st closes
        driver.find_element("css selector", "#sc-layers details > summary").click()  # reopens
        driver.save_screenshot(str(artifacts_dir / f"map_laptop_{lang}.png"))
        assert _errors(driver) == []
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_map_draws_the_network_when_tiles_fail(driver, tmp_path, artifacts_dir):
    """OSM tiles on an intranet: every tile fails, the walk network is switched on instead."""
    from tests.fixtures_streets import with_streets

    result = with_streets(make_result())
    path = render_map(result, tmp_path / "map_tiles_fail.html", basemap="osm")
    _open(driver, path)
    _wait(driver, PATHS)
    assert _wait(driver, STREETS) > 0
    net = driver.execute_script(
        "return [...document.querySelectorAll('#sc-layers details[open] label.sc-layer')]"
        ".find(l => l.textContent.includes('步行网络')).querySelector('input').checked"
    )
    assert net is True
    driver.save_screenshot(str(artifacts_dir / "map_tiles_fail.png"))
