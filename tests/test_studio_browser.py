"""The studio as a planner uses it: headless Debian Chromium on ``app.py serve --demo``.

Open the demo, add a canteen by clicking the map, see the panel's coverage change to the batch
value, drag it, remove it, undo, switch language, save and reopen a scenario, suggest sites
and accept one, compare two scenarios.  Names from the data are shown as text (a hostile name
runs no script).  Skipped without ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (as
``tests/test_browser.py``); screenshots (1366x768) go to ``tests/_artifacts/studio_*.png``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

import app as cli
from tests.chromium import chromium, missing, wait_for
from tests.test_studio import batch_summary

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.hacked=1">&amp;"\'食堂'


def _missing() -> str | None:
    reason = missing()
    if reason:
        return reason
    for mod in ("uvicorn", "starlette"):
        try:
            __import__(mod)
        except ImportError:
            return f"{mod} not installed"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path_factory.mktemp("studio")
    args = cli._parser().parse_args(
        ["serve", "--demo", "--study", str(folder), "--port", str(port)]
    )
    guard, url, _ = cli.studio_app(args, cli.Progress(False))
    srv = uvicorn.Server(uvicorn.Config(guard, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not srv.started and time.monotonic() < end:
        time.sleep(0.05)
    try:
        yield url, guard.session
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def driver():
    with chromium(window=(1366, 768), loopback=True) as drv:
        yield drv


def _wait(drv, script: str, timeout_s: float = 60.0):
    return wait_for(drv, script, timeout_s)


def _batch_rate(session, kind: str = "canteen") -> str:
    """The batch run's headline rate of the session's current facility set, as the panel shows it."""
    rate = batch_summary(session)["layers"][kind]["coverage_rate"]
    return f"{rate * 100:.1f}%"


def _edit_done(drv, n: int) -> None:
    _wait(drv, f"return window.studio.lastEdit === {n} && !window.studio.busy")


def _panel_rate(drv) -> str:
    return drv.find_element("id", "headline-rate").text


def test_a_planner_session(server, driver, artifacts_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, session = server
    # a facility with a hostile name, placed before the page opens
    c = session.study.net.extent_wgs84().centroid
    session.add("canteen", lon=float(c.x) - 0.006, lat=float(c.y) + 0.004, name=HOSTILE)

    driver.get(url)
    _wait(driver, "return window.studio && window.studio.ready")
    assert not driver.find_element(By.ID, "busy").is_displayed()
    assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
    assert driver.find_element(By.ID, "mode-add").text == "点击地图新增设施"
    assert driver.execute_script("return window.hacked") is None
    titles = [e.get_attribute("title") for e in driver.find_elements(By.CSS_SELECTOR, ".fac-icon")]
    assert HOSTILE in titles
    start = _panel_rate(driver)
    assert start == _batch_rate(session)
    rows = driver.find_elements(By.CSS_SELECTOR, "#streets tr")
    assert len(rows) == 1 + 4  # header + the demo's four 街道
    assert driver.find_elements(By.CSS_SELECTOR, "#targets td.notmet")
    driver.save_screenshot(str(artifacts_dir / "studio_zh.png"))

    # add a canteen by clicking the middle of the map
    driver.find_element(By.ID, "mode-add").click()
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "map")).click().perform()
    _edit_done(driver, 1)
    added = _panel_rate(driver)
    assert added == _batch_rate(session) and added != start
    driver.find_element(By.ID, "mode-add").click()  # back to viewing
    driver.save_screenshot(str(artifacts_dir / "studio_added.png"))

    # drag it 80 px to the right
    marker = driver.find_element(By.CSS_SELECTOR, '.fac-icon[title="新设施"]')
    ActionChains(driver).drag_and_drop_by_offset(marker, 80, 30).perform()
    _edit_done(driver, 2)
    assert _panel_rate(driver) == _batch_rate(session)

    # remove it from its popup
    driver.find_element(By.CSS_SELECTOR, '.fac-icon[title="新设施"]').click()
    _wait(driver, "return document.querySelector('.leaflet-popup button.remove')")
    driver.find_element(By.CSS_SELECTOR, ".leaflet-popup button.remove").click()
    _edit_done(driver, 3)
    assert _panel_rate(driver) == start == _batch_rate(session)

    # undo brings it back
    driver.find_element(By.ID, "undo").click()
    _edit_done(driver, 4)
    assert driver.find_elements(By.CSS_SELECTOR, '.fac-icon[title="新设施"]')
    assert _panel_rate(driver) == _batch_rate(session) != start

    # English on the switch
    driver.find_element(By.ID, "lang").click()
    _wait(driver, "return document.documentElement.lang === 'en'")
    assert driver.find_element(By.ID, "mode-add").text == "Click the map to add a site"
    driver.save_screenshot(str(artifacts_dir / "studio_en.png"))
    driver.find_element(By.ID, "lang").click()
    _wait(driver, "return document.documentElement.lang === 'zh-CN'")

    # save, change, reopen
    box = driver.find_element(By.ID, "scenario-name")
    box.clear()
    box.send_keys("方案甲")
    driver.find_element(By.ID, "save").click()
    _wait(driver, "return document.querySelector('#scenario-list button.open')")
    saved = _panel_rate(driver)
    driver.find_element(By.ID, "undo").click()  # back to before the drag
    _edit_done(driver, 5)
    assert _panel_rate(driver) == added
    driver.find_element(By.CSS_SELECTOR, "#scenario-list button.open").click()
    _edit_done(driver, 6)
    assert _panel_rate(driver) == saved == _batch_rate(session)

    # suggest two sites (MCLP) and accept the first
    driver.find_element(By.ID, "p").clear()
    driver.find_element(By.ID, "p").send_keys("2")
    driver.find_element(By.ID, "suggest").click()
    _wait(driver, "return document.querySelectorAll('#sites button.accept').length === 2", 120)
    assert "完成" in driver.find_element(By.ID, "progress").text
    driver.find_element(By.CSS_SELECTOR, "#sites button.accept").click()
    _edit_done(driver, 7)
    assert _panel_rate(driver) == _batch_rate(session) != saved
    driver.save_screenshot(str(artifacts_dir / "studio_suggest.png"))

    # compare the saved scenario with the current one: who gains access
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "cmp-a")).select_by_value("方案甲")
    driver.find_element(By.ID, "compare").click()
    _wait(driver, "return document.querySelectorAll('#cmp-table tr').length > 1")
    assert driver.find_element(By.CSS_SELECTOR, "#cmp-table td.met").text.startswith("+")
    driver.save_screenshot(str(artifacts_dir / "studio_compare.png"))
    assert driver.execute_script("return window.hacked") is None


def test_a_new_study_uploaded_through_the_page(server, driver, artifacts_dir, tmp_path):
    """Upload the demo's own files through the page's form: a bad column first (the CLI's one
    line, shown as text, the study unchanged), then the good files (the page switches)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from data.demo import generate_demo, write_demo

    url, session = server
    demo = write_demo(generate_demo(seed=2026), tmp_path / "in", force=True)
    hostile = tmp_path / '<img src=x onerror="window.hacked=2">居民.gpkg'
    shutil.copy(demo.residents_gpkg, hostile)
    driver.get(url)
    _wait(driver, "return window.studio && window.studio.ready")
    before = driver.execute_script("return JSON.stringify(window.studio.summary)")
    driver.find_element(By.CSS_SELECTOR, "#upload-box summary").click()

    def field(name: str):
        return driver.find_element(By.CSS_SELECTOR, f'#upload-form [name="{name}"]')

    field("title").send_keys("上传的研究")
    field("residents").send_keys(str(hostile))
    field("residents_columns").send_keys("population=常住人口")
    for i, (kind, path) in enumerate(demo.facilities.items(), start=1):
        if i > 1:
            driver.find_element(By.ID, "upload-add").click()
        Select(field(f"layer{i}_kind")).select_by_value(kind)
        field(f"layer{i}").send_keys(str(path))
        if path.suffix == ".csv":
            Select(field(f"layer{i}_coords")).select_by_value("gcj02")
    field("areas").send_keys(str(demo.areas_gpkg))
    field("areas_layer").send_keys("streets_areas")
    field("network").send_keys(str(demo.streets_osm))
    driver.find_element(By.ID, "upload-go").click()
    _wait(driver, "return document.getElementById('upload-msg').textContent.includes('常住人口')")
    msg = driver.find_element(By.ID, "upload-msg").text
    assert "<img" in msg and "window.hacked" in msg  # the file's name, as text
    assert driver.execute_script("return window.hacked") is None
    assert driver.execute_script("return JSON.stringify(window.studio.summary)") == before
    driver.save_screenshot(str(artifacts_dir / "studio_upload_error.png"))

    field("residents_columns").clear()
    driver.find_element(By.ID, "upload-go").click()
    _wait(driver, "return window.studio && window.studio.ready && "
          "document.getElementById('title').textContent === '上传的研究'", 120)  # fmt: skip
    assert session.title == "上传的研究" and session.folder.parent.name == "uploads"
    assert _panel_rate(driver) == _batch_rate(session)
    assert driver.execute_script("return window.hacked") is None
    driver.save_screenshot(str(artifacts_dir / "studio_uploaded.png"))
